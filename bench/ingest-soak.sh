#!/usr/bin/env bash
# Ingest that stays fast as the store grows (issue #19): COUNT messages of 10 KiB
# (default 1,000,000, about 10 GB) into one gannet, flat out, with gannet-bench smtp at
# CONCURRENCY sessions (default 20, one connection per message), one line per INTERVAL
# seconds (default 10): the rate, the final reply's p50/p99/p999, gannet's RSS and its data
# directory's size. Writes OUT/ingest.csv and OUT/ingest.png (a plot of each over time,
# made with matplotlib in a venv under target/), and prints the first and last 10 %.
#
# usage: [COUNT=1000000] [CONCURRENCY=20] [MAX_SECONDS=3600] [RULES=stock|builtin] bench/ingest-soak.sh [OUT=docs/images]
# gannet runs as `gannet serve` on its defaults but for ports (spam filtering on, the
# stock rules where installed): the appliance as shipped. RULES=builtin loads the
# built-in rules only (`rules_dirs = []`, what runs where SpamAssassin's rules are not
# installed). Needs a release build and the
# disk space (COUNT x 10 KiB, plus compaction's headroom).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=${1:-docs/images}
COUNT=${COUNT:-1000000}
CONC=${CONCURRENCY:-20}
INTERVAL=${INTERVAL:-10}
MAX_SECONDS=${MAX_SECONDS:-3600}
GP=${GANNET_PORT:-3900}
WORK=$(mktemp -d /tmp/gannet-ingest.XXXXXX)
# `|| true`: under set -e a kill with no job left (the normal end) would stop the trap
# before the rm; wait: gannet still writes its store while it stops.
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
{
    gannet_config_head "$GP"
    cat <<CONF
[dns]
nameservers = ["127.0.0.1:9"]
CONF
    if [ "${RULES:-stock}" = builtin ]; then
        printf '[spam]\nrules_dirs = []\n'
    fi
} >"$WORK/gannet.toml"
G="target/release/gannet --config $WORK/gannet.toml --data $WORK/data"
$G domain add example.test >/dev/null
$G account add bench@example.test --password Benchpass1 >/dev/null
$G account set bench@example.test --quota 100GB >/dev/null
$G serve 2>"$WORK/gannet.log" &
PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.1; done
echo "gannet $PID; $COUNT messages, c=$CONC, rules ${RULES:-stock}; $(nproc) cores; free disk $(df -h --output=avail "$WORK" | tail -1)"
target/release/gannet-bench smtp --target "127.0.0.1:$GP" --count "$COUNT" --size 10240 \
    --concurrency "$CONC" --from load@bench.example --to bench@example.test \
    --max-seconds "$MAX_SECONDS" --interval "$INTERVAL" --interval-csv "$OUT/ingest.csv" \
    --watch-pid "$PID" --watch-dir "$WORK/data" --distinct 2>&1 | grep -E '^(result|throughput|latency)' || true
kill -TERM $PID
wait $PID || true
venv=target/plot-venv
if ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib
fi
"$venv/bin/python" - "$OUT/ingest.csv" "$OUT/ingest.png" "$COUNT" "$CONC" "${RULES:-stock}" <<'PY'
import csv, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = [r for r in csv.DictReader(open(sys.argv[1])) if float(r["messages"]) > 0]
t = [float(r["seconds"]) for r in rows]
total = 0
done = []
for r in rows:
    total += int(r["messages"])
    done.append(total)
fig, ax = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
ax[0].plot(t, [float(r["msgs_per_s"]) for r in rows])
ax[0].set_ylabel("messages/s")
ax[0].set_ylim(bottom=0)
for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
    ax[1].plot(t, [float(r[key]) for r in rows], label=label)
ax[1].set_ylabel("final reply, ms")
ax[1].set_yscale("log")
ax[1].legend()
ax[2].plot(t, [float(r["rss_mb"] or 0) for r in rows])
ax[2].set_ylabel("gannet RSS, MB")
ax[2].set_ylim(bottom=0)
ax[3].plot(t, [float(r["data_mb"] or 0) / 1000 for r in rows])
ax[3].set_ylabel("data directory, GB")
ax[3].set_xlabel("seconds")
fig.suptitle(f"gannet ingest: {total:,} messages of 10 KiB, {sys.argv[4]} sessions, one connection each, {sys.argv[5]} rules")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=80)
n = len(rows)
tenth = max(1, n // 10)
first = statistics.median(float(r["msgs_per_s"]) for r in rows[:tenth])
last = statistics.median(float(r["msgs_per_s"]) for r in rows[-tenth - 1:-1] or rows[-tenth:])
print(f"intervals: {n}; messages: {total}")
print(f"rate, median of the first 10 %: {first:.0f} msgs/s; of the last 10 % (the final partial interval left out): {last:.0f} msgs/s; ratio {last / first:.2f}")
print(f"p99 of the final reply: max over intervals {max(float(r['p99_ms']) for r in rows):.1f} ms, median {statistics.median(float(r['p99_ms']) for r in rows):.1f} ms")
rss = [float(r["rss_mb"]) for r in rows if r["rss_mb"]]
if rss:
    print(f"RSS: first {rss[0]:.0f} MB, last {rss[-1]:.0f} MB, max {max(rss):.0f} MB")
PY
