#!/usr/bin/env bash
# Side-by-side SMTP ingest benchmark, in one run, on this machine:
#   smtp-sink (Postfix's no-op server: the ceiling), Postfix 3.7 (durable queue),
#   and gannet serve (durable: 250 only after the group commit's fsync),
# loaded by Postfix's smtp-source (through bench/peers/smtp-ingest.sh) and by
# gannet-bench, with 10 KiB messages at concurrency 20 and 100, one connection per
# message, and with connections reused. Then gannet's RSS with 1,000 and 10,000 idle
# connections. Prints min / median / max msgs/s of RUNS runs per cell.
#
# usage: bench/compare.sh [RUNS=3] [MSGS=5000]
# Needs: a release build (cargo build --release --workspace), postfix (smtp-source,
# smtp-sink): scripts/install-deps.sh --bench. Loopback only; every run is capped in time.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
MSGS=${2:-5000}
PEERS=$(pwd)/bench/peers
GANNET=target/release/gannet
BENCH=target/release/gannet-bench
WORK=$(mktemp -d /tmp/gannet-compare.XXXXXX)
GPORT=2625 SINKPORT=2526 PFPORT=2528
export MAX_SECONDS=300

scripts/install-deps.sh --bench
[ -x "$GANNET" ] && [ -x "$BENCH" ] || { echo "build first: cargo build --release --workspace" >&2; exit 2; }

stats() { sort -g | awk '{a[NR]=$1} END{ if(NR==0){print "n/a"; exit}
    m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.0f / %.0f / %.0f", a[1], m, a[NR]}'; }
median() { sort -g | awk '{a[NR]=$1} END{ m = (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; printf "%.0f", m}'; }

# smtp-source through the peer script: prints accept_mps
source_run() { # target conc reuse
    REUSE=$3 "$PEERS/smtp-ingest.sh" "$1" "$MSGS" 10240 "$2" 2>/dev/null | sed -n 's/.*accept_mps=\([0-9.]*\).*/\1/p'
}
# gannet-bench: prints mps
bench_run() { # target conc reuse
    local flags=()
    [ "$3" = 1 ] && flags+=(--reuse)
    "$BENCH" smtp --target "$1" --count "$MSGS" --size 10240 --concurrency "$2" "${flags[@]}" \
        --from bench@example.test --to rcpt@example.test 2>/dev/null | sed -n 's/^result .*mps=\([0-9.]*\) mbps.*/\1/p'
}

declare -A RESULT
measure() { # label target
    local label=$1 target=$2
    for cell in "20 0" "100 0" "20 1"; do
        set -- $cell
        local s=() b=()
        for _ in $(seq "$RUNS"); do
            s+=("$(source_run "$target" "$1" "$2")")
            b+=("$(bench_run "$target" "$1" "$2")")
        done
        RESULT["$label smtp-source c=$1 reuse=$2"]=$(printf '%s\n' "${s[@]}" | grep . | stats)
        RESULT["$label gannet-bench c=$1 reuse=$2"]=$(printf '%s\n' "${b[@]}" | grep . | stats)
        echo "  $label c=$1 reuse=$2: smtp-source ${RESULT["$label smtp-source c=$1 reuse=$2"]}, gannet-bench ${RESULT["$label gannet-bench c=$1 reuse=$2"]}" >&2
    done
}

echo "== machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

echo "== smtp-sink (ceiling)" >&2
timeout 3600 smtp-sink -u nobody -m 512 127.0.0.1:$SINKPORT 1024 >/dev/null 2>&1 &
SINK=$!
sleep 1
measure smtp-sink 127.0.0.1:$SINKPORT
kill $SINK; wait $SINK 2>/dev/null

echo "== Postfix (durable queue)" >&2
"$PEERS/setup/postfix.sh" start >/dev/null 2>&1
measure postfix 127.0.0.1:$PFPORT
"$PEERS/setup/postfix.sh" stop >/dev/null 2>&1
"$PEERS/setup/postfix.sh" reset-maildir >/dev/null 2>&1

echo "== gannet (durable: fsync before 250)" >&2
cat > "$WORK/gannet.toml" <<CONF
[server]
hostname = "mx.example.test"
[listen]
smtp = "127.0.0.1:$GPORT"
CONF
G="$GANNET --config $WORK/gannet.toml --data $WORK/data"
$G domain add example.test >/dev/null
$G account add rcpt@example.test --password Bench1234 >/dev/null
$G serve 2>"$WORK/gannet.log" &
GPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GPORT) 2>/dev/null && break; sleep 0.1; done
measure gannet 127.0.0.1:$GPORT
stored=$($G mail list rcpt@example.test | wc -l)
echo "  gannet stored $stored messages" >&2

echo "== gannet idle connections (a freshly started server)" >&2
kill -TERM $GPID; wait $GPID
$G serve 2>>"$WORK/gannet.log" &
GPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GPORT) 2>/dev/null && break; sleep 0.1; done
IDLE1=$("$BENCH" idle --target 127.0.0.1:$GPORT --connections 1000 --pid $GPID | sed -n 's/^result .*bytes_per_conn=\([0-9.]*\).*/\1/p')
IDLE10=$("$BENCH" idle --target 127.0.0.1:$GPORT --connections 10000 --pid $GPID | sed -n 's/^result .*bytes_per_conn=\([0-9.]*\).*/\1/p')
kill -TERM $GPID; wait $GPID

echo
echo "10 KiB messages, $MSGS per run, $RUNS runs: msgs/s accepted, min / median / max"
echo
printf '| load | client | smtp-sink (no-op ceiling) | Postfix 3.7 (durable) | gannet (durable) | gannet / Postfix | gannet / smtp-sink |\n'
printf '|---|---|---|---|---|---|---|\n'
for cell in "20 0" "100 0" "20 1"; do
    set -- $cell
    load="c=$1, $( [ "$2" = 1 ] && echo "connections reused" || echo "1 connection/msg")"
    for client in smtp-source gannet-bench; do
        k="$client c=$1 reuse=$2"
        sink=${RESULT["smtp-sink $k"]}; pf=${RESULT["postfix $k"]}; g=${RESULT["gannet $k"]}
        med() { echo "$1" | awk -F' / ' '{print $2}'; }
        r1=$(awk -v a="$(med "$g")" -v b="$(med "$pf")" 'BEGIN{ if (b>0) printf "%.1f×", a/b; else print "-" }')
        r2=$(awk -v a="$(med "$g")" -v b="$(med "$sink")" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-" }')
        printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$load" "$client" "$sink" "$pf" "$g" "$r1" "$r2"
    done
done
echo
echo "gannet RSS per idle connection: 1,000 connections ${IDLE1} bytes, 10,000 connections ${IDLE10} bytes"
rm -rf "$WORK"
