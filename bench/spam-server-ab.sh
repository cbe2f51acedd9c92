#!/usr/bin/env bash
# Two builds' `gannet spam scan` through their running servers, side by side (issue #19):
# each binary serves its own data directory (stock SpamAssassin rules, ports from
# GANNET_PORT and GANNET_PORT+10), both are warmed by two untimed runs, then RUNS runs of
# each over the benchmark's 1,000-message sample alternate (A, B, A, B...). Prints each
# side's rates, the ratio of the medians and the median of the paired ratios (B over A):
# alternating runs see the same machine, which the rate of a shared one does not stay.
#
# usage: bench/spam-server-ab.sh BIN_A BIN_B   (environment: RUNS=10, GANNET_PORT=3960)
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 BIN_A BIN_B" >&2; exit 2; }
A=$(realpath "$1")
B=$(realpath "$2")
RUNS=${RUNS:-10}
PORT=${GANNET_PORT:-3960}
CORPUS=$(scripts/unpack-corpus.sh)
WORK=$(mktemp -d /tmp/gannet-spam-ab.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
SAMPLE=$WORK/sample
python3 bench/peers/sample.py "$CORPUS" "$SAMPLE"
. bench/lib.sh
for side in A B; do
    mkdir -p "$WORK/$side/data"
    {
        gannet_config_head "$([ "$side" = A ] && echo "$PORT" || echo $((PORT + 10)))"
        printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n'
    } > "$WORK/$side/gannet.toml"
done
"$A" --config "$WORK/A/gannet.toml" --data "$WORK/A/data" serve > "$WORK/A/serve.log" 2>&1 &
"$B" --config "$WORK/B/gannet.toml" --data "$WORK/B/data" serve > "$WORK/B/serve.log" 2>&1 &
sleep 4
# run BIN SIDE: one scan through SIDE's server, its rate in messages/s.
run() {
    "$1" --config "$WORK/$2/gannet.toml" --data "$WORK/$2/data" spam scan "$SAMPLE/ham" "$SAMPLE/spam" \
        2>&1 >/dev/null | tail -1 | grep -o '[0-9]* messages/s' | cut -d' ' -f1
}
for _ in 1 2; do run "$A" A >/dev/null; run "$B" B >/dev/null; done
a=()
b=()
for _ in $(seq "$RUNS"); do
    a+=("$(run "$A" A)")
    b+=("$(run "$B" B)")
done
echo "A ($A): ${a[*]}"
echo "B ($B): ${b[*]}"
python3 - "${a[*]}" "${b[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
b = [float(x) for x in sys.argv[2].split()]
ma, mb = statistics.median(a), statistics.median(b)
paired = statistics.median(y / x for x, y in zip(a, b))
print(f"median msgs/s A {ma:.0f}, B {mb:.0f}: B/A {mb / ma:.3f}; paired runs' B/A median {paired:.3f}")
PY
