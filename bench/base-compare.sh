#!/usr/bin/env bash
# Two builds of gannet side by side in one run (for example before and after a change),
# in interleaved rounds because this shared machine's speed drifts within minutes: each
# round starts both servers on fresh data directories, ingests the same load into each
# with gannet-bench smtp (10 KiB messages, c=20, one connection per message), then
# measures IMAP FETCH and POP3 RETR over what was stored with gannet-bench imap.
#
# usage: bench/base-compare.sh BASE_GANNET NEW_GANNET [ROUNDS=3] [COUNT=3000]
# Prints each run's result lines; the medians are for the reader (or the docs) to take.
set -euo pipefail
cd "$(dirname "$0")/.."
BASE=$1
NEW=$2
ROUNDS=${3:-3}
COUNT=${4:-3000}
BENCH=target/release/gannet-bench
WORK=$(mktemp -d /tmp/gannet-base-compare.XXXXXX)
# `|| true`: under set -e a kill with no job left (the normal end) would stop the trap
# before the rm; wait: gannet still writes its store while it stops.
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT

one() {  # one NAME BINARY PORTBASE
    local name=$1 bin=$2 p=$3 dir="$WORK/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/gannet.toml" <<CONF
[server]
hostname = "mx.example.test"
[listen]
smtp = "127.0.0.1:${p}25"
submission = "127.0.0.1:${p}87"
submissions = "127.0.0.1:${p}65"
pop3 = "127.0.0.1:${p}10"
pop3s = "127.0.0.1:${p}95"
imap = "127.0.0.1:${p}43"
imaps = "127.0.0.1:${p}93"
admin = "127.0.0.1:${p}80"
[auth]
plaintext_on_loopback = true
[dns]
nameservers = ["127.0.0.1:9"]
CONF
    local g="$bin --config $dir/gannet.toml --data $dir/data"
    $g domain add example.test >/dev/null
    $g account add bench@example.test --password Benchpass1 >/dev/null
    $g serve 2>"$dir/log" &
    local pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/${p}25) 2>/dev/null && break; sleep 0.1; done
    echo "-- $name: ingest"
    "$BENCH" smtp --target "127.0.0.1:${p}25" --count "$COUNT" --size 10240 --concurrency 20 \
        --from load@bench.example --to bench@example.test 2>/dev/null | grep '^result'
    echo "-- $name: imap"
    "$BENCH" imap --imap "127.0.0.1:${p}43" --pop3 "127.0.0.1:${p}10" --user bench@example.test \
        --password Benchpass1 --runs 5 --logins 5 2>/dev/null
    kill -TERM $pid
    wait $pid || true
}

for r in $(seq "$ROUNDS"); do
    echo "== round $r"
    one base "$BASE" 41
    one new "$NEW" 42
done
