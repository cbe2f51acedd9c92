#!/usr/bin/env bash
# The start of the ingest soak's load, side by side with Postfix (issue #19): the load of
# bench/ingest-soak.sh (10 KiB messages, each with a header of its own, from
# `gannet-bench smtp` at 20 sessions with one connection per message) sent COUNT times
# (default 20,000) in ROUNDS interleaved rounds (default 3) to
#   gannet          `gannet serve` on its defaults (the stock SpamAssassin rules where
#                   installed, as on this machine; the trace on), a fresh data directory
#   gannet-builtin  the same with the built-in rules only (`rules_dirs = []`: what an
#                   appliance without SpamAssassin's rules installed runs)
#   postfix         a stock Debian Postfix 3.7 (bench/peers/setup/postfix.sh: durable
#                   queue, local(8) to a Maildir, no content filter), a fresh queue and
#                   Maildir; its 250 comes once the message is queued, so its line adds
#                   the rate until the Maildir holds every message (delivered_mps)
#   pf+amavis+sa    the same Postfix with amavisd-new running SpamAssassin (its stock
#                   rules, local tests only) as its after-queue content filter
#                   (bench/peers/setup/amavis.sh, AMAVIS_CHECKS=spam): the peers doing
#                   gannet's work; FILTERED_COUNT messages (default 500: it is slow)
# and prints each run's `result` line, then the medians and the ratios to Postfix.
#
# usage: [COUNT=20000] [FILTERED_COUNT=500] [ROUNDS=3] bench/ingest-compare.sh
# Needs a release build; installs postfix and amavisd-new when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
COUNT=${COUNT:-20000}
FILTERED_COUNT=${FILTERED_COUNT:-500}
ROUNDS=${ROUNDS:-3}
GP=${GANNET_PORT:-3920}
BENCH=target/release/gannet-bench
WORK=$(mktemp -d /tmp/gannet-ingest-compare.XXXXXX)
chmod 711 "$WORK"
export PEER_WORK=$WORK/peer
# amavisd-new runs SpamAssassin (not clamd): the peers' way of doing gannet's scan.
export AMAVIS_CHECKS=spam
cleanup() {
    bench/peers/setup/amavis.sh stop >/dev/null 2>&1 || true
    bench/peers/setup/postfix.sh stop >/dev/null 2>&1 || true
    kill $(jobs -p) 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
bench/peers/setup/amavis.sh install
bench/peers/setup/amavis.sh stop >/dev/null 2>&1 || true
LOAD=(--size 10240 --concurrency 20 --distinct --from load@bench.example)
RESULTS=$WORK/results
: >"$RESULTS"

gannet_run() {  # gannet_run NAME EXTRA_TOML
    local name=$1 extra=$2 dir="$WORK/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    {
        gannet_config_head "$GP"
        printf '[dns]\nnameservers = ["127.0.0.1:9"]\n%s\n' "$extra"
    } >"$dir/gannet.toml"
    local g="target/release/gannet --config $dir/gannet.toml --data $dir/data"
    $g domain add example.test >/dev/null
    $g account add bench@example.test --password Benchpass1 >/dev/null
    $g account set bench@example.test --quota 100GB >/dev/null
    $g serve 2>"$dir/log" &
    local pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.1; done
    local line
    line=$("$BENCH" smtp --target "127.0.0.1:$GP" --count "$COUNT" "${LOAD[@]}" --to bench@example.test \
        2>"$dir/bench.err" | grep "^result") || line="result failed: $(tail -n 1 "$dir/bench.err")"
    printf '%-15s %s\n' "$name" "$line" | tee -a "$RESULTS"
    kill -TERM $pid
    wait $pid || true
}

peer_run() {  # peer_run NAME SETUP_SCRIPT COUNT
    local name=$1 setup=$2 count=$3
    local new=$PEER_WORK/home/rcpt/Maildir/new log=$WORK/$1.log
    mkdir -p "$PEER_WORK"
    bench/peers/setup/postfix.sh reset-maildir >/dev/null
    if ! "$setup" start >"$log" 2>&1; then
        echo "$name did not start: $(tail -n 1 "$log")"
        "$setup" stop >/dev/null 2>&1 || true
        return
    fi
    local start line
    start=$(date +%s.%N)
    line=$("$BENCH" smtp --target 127.0.0.1:2528 --count "$count" "${LOAD[@]}" --to rcpt@example.test \
        2>>"$log" | grep "^result") || line="result failed: $(tail -n 1 "$log")"
    # Postfix's 250 came before delivery: wait for the Maildir to hold every message.
    python3 bench/peers/wait-maildir.py "$new" "$start" "$(printf '%-15s %s' "$name" "$line")" |
        tee -a "$RESULTS"
    "$setup" stop >/dev/null 2>&1 || true
}

echo "ingest compare: $COUNT messages of 10 KiB per run ($FILTERED_COUNT for pf+amavis+sa), c=20, one connection per message, $ROUNDS rounds; $(nproc) cores"
for r in $(seq "$ROUNDS"); do
    echo "== round $r"
    gannet_run gannet ""
    gannet_run gannet-builtin "[spam]
rules_dirs = []"
    peer_run postfix bench/peers/setup/postfix.sh "$COUNT"
    peer_run pf+amavis+sa bench/peers/setup/amavis.sh "$FILTERED_COUNT"
done

python3 - "$RESULTS" <<'PY'
import re, statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name = line.split()[0]
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    runs.setdefault(name, []).append(fields)
def median(name, key):
    values = [float(f[key]) for f in runs.get(name, []) if key in f]
    return statistics.median(values) if values else None
pf = median("postfix", "delivered_mps")
pf250 = median("postfix", "mps")
filtered = median("pf+amavis+sa", "delivered_mps")
print(f"postfix: median {pf250 or 0:.0f} msgs/s at the 250, {pf or 0:.0f} delivered")
print(f"pf+amavis+sa: median {filtered or 0:.1f} msgs/s delivered")
for name in ("gannet", "gannet-builtin"):
    g = median(name, "mps")
    p99 = median(name, "p99_ms")
    if g is None:
        continue
    ratio = f"{g / pf:.2f}x Postfix delivered, {g / pf250:.2f}x its 250s" if pf and pf250 else ""
    if filtered:
        ratio += f", {g / filtered:.0f}x Postfix + amavis + SpamAssassin delivered"
    print(f"{name}: median {g:.0f} msgs/s (p99 {p99} ms): {ratio}")
PY
