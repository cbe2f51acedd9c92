#!/usr/bin/env bash
# Ingest with the message trace on and off, side by side in interleaved rounds (this
# shared machine's speed drifts within minutes): each round starts gannet on a fresh data
# directory with `trace.enabled` true, then false, and sends the same load with
# gannet-bench smtp (10 KiB messages, 20 sessions, one connection per message).
#
# usage: bench/trace-compare.sh [ROUNDS=5] [COUNT=5000]
# Prints each run's result lines and the medians of msgs/s and p99 for each setting.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-5}
COUNT=${2:-5000}
GANNET=${GANNET:-target/release/gannet}
BENCH=${BENCH:-target/release/gannet-bench}
WORK=$(mktemp -d /tmp/gannet-trace-compare.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT

one() {  # one on|off PORTBASE
    local name=$1 p=$2 dir="$WORK/$1"
    local enabled=true
    [ "$name" = off ] && enabled=false
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
web = "127.0.0.1:${p}44"
[dns]
nameservers = ["127.0.0.1:9"]
[trace]
enabled = $enabled
CONF
    local g="$GANNET --config $dir/gannet.toml --data $dir/data"
    $g domain add example.test >/dev/null
    $g account add bench@example.test --password Benchpass1 >/dev/null
    $g serve 2>"$dir/log" &
    local pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/${p}25) 2>/dev/null && break; sleep 0.1; done
    "$BENCH" smtp --target "127.0.0.1:${p}25" --count "$COUNT" --size 10240 --concurrency 20 \
        --from load@bench.example --to bench@example.test 2>/dev/null | grep '^result' \
        | sed "s/^/$name /" | tee -a "$WORK/results"
    kill -TERM $pid
    wait $pid || true
}

for r in $(seq "$ROUNDS"); do
    echo "== round $r"
    one on 43
    one off 44
done
python3 - "$WORK/results" <<'PY'
import re, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    setting = line.split()[0]
    for key, value in re.findall(r"(\w+)=([\d.]+)", line):
        rows.setdefault((setting, key), []).append(float(value))
for key in ["mps", "p50_ms", "p99_ms", "p999_ms"]:
    on, off = rows.get(("on", key)), rows.get(("off", key))
    if on and off:
        a, b = statistics.median(on), statistics.median(off)
        print(f"median {key}: trace on {a:.2f}, off {b:.2f}, on/off {a / b:.3f}")
PY
