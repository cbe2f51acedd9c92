#!/usr/bin/env bash
# Where an SMTP message's time goes (issue #19): `gannet-bench smtp` at SESSIONS sessions
# (default 20), one connection per message (REUSE=1: connections reused), 10 KiB
# messages, MSGS per run (default 5000), RUNS runs (default 3), against Postfix's
# smtp-sink (a no-op server: the ceiling) and `gannet serve` in turn, interleaved. For
# gannet, its own latency histograms (/metrics, read before and after each run) give the
# mean per message of each stage after the end of DATA: the whole delivery, the spam scan,
# the wait for the commit (queueing behind the group being written, resolving, the write
# and its fsync), and per group commit the write with its fsync; and gannet's CPU time per
# message by thread. Prints medians over the runs.
#
# usage: [SESSIONS=20] [REUSE=0] [MSGS=5000] [RUNS=3] [SPAM_LEVEL=medium] bench/latency-breakdown.sh
# gannet runs on its defaults (spam filtering on, the stock rules where installed) but for
# ports; SPAM_LEVEL=off turns the recipient's filtering off (the scan still writes its
# headers); RULES=builtin loads the built-in rules only (`rules_dirs = []`). Needs a release build and Postfix's smtp-sink (scripts/install-deps.sh --bench).
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
SESSIONS=${SESSIONS:-20}
REUSE=${REUSE:-0}
MSGS=${MSGS:-5000}
RUNS=${RUNS:-3}
GANNET=${GANNET:-target/release/gannet}
BENCH=${BENCH:-target/release/gannet-bench}
GP=${GANNET_PORT:-3700}
SINKPORT=$((GP + 20))
WORK=$(mktemp -d /tmp/gannet-breakdown.XXXXXX)
# `|| true`: under set -e a kill with no job left (the normal end) would stop the trap
# before the rm; wait: gannet still writes its store while it stops.
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT

scripts/install-deps.sh --bench >/dev/null
[ -x "$GANNET" ] && [ -x "$BENCH" ] || { echo "build first: cargo build --release --workspace" >&2; exit 2; }

{
    gannet_config_head "$GP"
    cat <<CONF
[limits]
max_connections_per_ip = 1000
messages_per_hour = 100000000
CONF
} >"$WORK/gannet.toml"
if [ "${RULES:-stock}" = builtin ]; then
    printf '[spam]\nrules_dirs = []\n' >>"$WORK/gannet.toml"
fi
G="$GANNET --config $WORK/gannet.toml --data $WORK/data"
$G domain add example.test >/dev/null
$G account add rcpt@example.test --password Bench12345 >/dev/null
$G account set rcpt@example.test --quota 100GB --spam-level "${SPAM_LEVEL:-medium}" >/dev/null
$G admin add bench --password Bench12345 >/dev/null
TOKEN=$($G admin token create bench | tr -d '[:space:]')
$G serve 2>"$WORK/gannet.log" &
GPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.1; done
timeout 3600 smtp-sink -u nobody -m 512 127.0.0.1:$SINKPORT 1024 >/dev/null 2>&1 &
sleep 1

# sum and count of each of gannet's latency histograms: "name sum count" lines
histograms() {
    curl -sS -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$((GP + 8))/metrics" |
        awk '$1 ~ /_seconds_sum$/ { sub(/_sum$/, "", $1); s[$1] = $2 }
             $1 ~ /_seconds_count$/ { sub(/_count$/, "", $1); c[$1] = $2 }
             END { for (k in s) print k, s[k], c[k] }'
}
# gannet's CPU time so far by thread (numbered threads summed: worker-0, worker-1 as
# "worker"): "name nanoseconds" lines
threads() {
    for t in /proc/$GPID/task/*; do
        printf '%s %s\n' "$(sed 's/-[0-9]*$//' "$t/comm")" "$(cut -d' ' -f1 "$t/schedstat")"
    done | awk '{ s[$1] += $2 } END { for (k in s) printf "%s %.0f\n", k, s[k] }'
}
# one gannet-bench run: "mps p50_ms"
run() {
    local flags=()
    [ "$REUSE" = 1 ] && flags+=(--reuse)
    timeout 300 "$BENCH" smtp --target "$1" --count "$MSGS" --size 10240 --concurrency "$SESSIONS" \
        "${flags[@]}" --from bench@example.test --to rcpt@example.test 2>/dev/null |
        sed -n 's/^result .*mps=\([0-9.]*\) mbps=[0-9.]* p50_ms=\([0-9.]*\).*/\1 \2/p'
}
median() { sort -g | awk '{a[NR]=$1} END { if (NR == 0) { print "n/a"; exit }
    printf "%.2f", (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

echo "== $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $SESSIONS sessions, reuse $REUSE, $MSGS x 10 KiB, $RUNS runs, spam level ${SPAM_LEVEL:-medium}, rules ${RULES:-stock}" >&2
: >"$WORK/sink" ; : >"$WORK/gannet"
for r in $(seq "$RUNS"); do
    run 127.0.0.1:$SINKPORT >>"$WORK/sink"
    histograms >"$WORK/before"
    threads >"$WORK/cpu-before"
    run 127.0.0.1:$GP >>"$WORK/gannet"
    threads >"$WORK/cpu-after"
    histograms >"$WORK/after"
    join <(sort "$WORK/cpu-before") <(sort "$WORK/cpu-after") |
        awk -v r="$r" -v n="$MSGS" '{ printf "%s %s %.1f\n", r, $1, ($3 - $2) / 1000 / n }' >>"$WORK/cpu"
    # mean seconds per observation of each histogram over the run
    join <(sort "$WORK/before") <(sort "$WORK/after") |
        awk -v r="$r" '{ n = $5 - $3; if (n > 0) printf "%s %s %.4f %d\n", r, $1, ($4 - $2) / n * 1000, n }' >>"$WORK/stages"
    echo "  run $r: sink $(tail -1 "$WORK/sink"), gannet $(tail -1 "$WORK/gannet") (msgs/s, p50 ms)" >&2
done

col() { awk -v c="$1" '{print $c}' "$2" | median; }
sink_mps=$(col 1 "$WORK/sink"); g_mps=$(col 1 "$WORK/gannet")
per_msg() { awk -v m="$1" -v s="$SESSIONS" 'BEGIN { if (m > 0) printf "%.2f", s / m * 1000; else print "n/a" }'; }
stage() { awk -v n="gannet_$1_seconds" '$2 == n {print $3}' "$WORK/stages" | median; }
groups() { awk '$2 == "gannet_store_write_seconds" {print $4}' "$WORK/stages" | median; }
echo
echo "| | smtp-sink (no-op) | gannet (durable) |"
echo "|---|---|---|"
echo "| msgs/s (median of $RUNS) | $sink_mps | $g_mps ($(awk -v a="$g_mps" -v b="$sink_mps" 'BEGIN { printf "%.2f", a / b }') of the sink) |"
echo "| time per message per session, ms ($SESSIONS / rate) | $(per_msg "$sink_mps") | $(per_msg "$g_mps") |"
echo "| final reply (after the data's end), p50 ms | $(col 2 "$WORK/sink") | $(col 2 "$WORK/gannet") |"
echo
echo "gannet's own stages, mean per message (ms, median over the runs):"
echo
echo "| delivery (end of DATA to stored) | of which: spam scan | of which: commit wait | group commit (resolve + write), per group | write + fsync, per group | groups per run |"
echo "|---|---|---|---|---|---|"
echo "| $(stage delivery) | $(stage spam_scan) | $(stage delivery_commit) | $(stage store_commit) | $(stage store_write) | $(groups) |"
echo
echo "gannet's CPU per message by thread (µs, median over the runs; threads above 1 µs):"
echo
cpu_names=$(awk '{print $2}' "$WORK/cpu" | sort -u)
total=0
row_names="" row_values=""
for name in $cpu_names; do
    v=$(awk -v n="$name" '$2 == n {print $3}' "$WORK/cpu" | median)
    total=$(awk -v a="$total" -v b="$v" 'BEGIN { printf "%.1f", a + b }')
    if awk -v v="$v" 'BEGIN { exit !(v >= 1) }'; then
        row_names="$row_names | $name"; row_values="$row_values | $v"
    fi
done
echo "${row_names# } | all threads |"
echo "$(echo "$row_names" | awk -F'|' '{ for (i = 2; i <= NF; i++) printf "|---"; print "|---|" }')"
echo "${row_values# } | $total |"
kill -TERM $GPID; wait $GPID 2>/dev/null
