#!/usr/bin/env bash
# The soak (issue #19): `gannet-bench soak` against one `gannet serve` for SECONDS
# (default 1800): SMTP ingest at RATE messages/s (default 0: flat out) over SESSIONS
# sessions (default 20, one connection per message), 4 IMAP readers, 2 POP3 users whose
# clients download and delete, every 10th message relayed to the bench's own sink as the smart
# host; one CSV line every INTERVAL seconds (default 5). Writes OUT/soak.csv and
# OUT/soak.png (matplotlib, in a venv under target/; with each stage's mean latency from
# gannet's /metrics and the CPU time of gannet and of the machine, steal included, to
# tell a slower stage from a slower machine) and prints a summary: rates at the
# start and the end, p99 over time, RSS over the last two-thirds; and OUT/soak-stalls.txt,
# RocksDB's write stalls counted by family and reason.
#
# The mail not relayed nor for POP3 spreads over BOXES accounts (default 100) and the
# readers' account, which gets one message in BOXES+1 (BOXES=0: all of it).
#
# usage: [SECONDS=1800] [RATE=0] [SESSIONS=20] [BOXES=100] bench/soak.sh [OUT=docs/images]
# gannet runs on its defaults (spam filtering on, the stock rules where installed) but
# for ports, the smart host, passwords without TLS on loopback (the readers log in in
# plain text), and limits raised for one busy client address.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
OUT=${1:-docs/images}
SECONDS_=${SECONDS:-1800}
RATE=${RATE:-0}
SESSIONS=${SESSIONS:-20}
INTERVAL=${INTERVAL:-5}
GP=${GANNET_PORT:-3950}
WORK=$(mktemp -d /tmp/gannet-soak.XXXXXX)
# `|| true`: under set -e a kill with no job left (the normal end) would stop the trap
# before the rm; wait: gannet still writes its store while it stops.
trap 'kill $(jobs -p) 2>/dev/null || true; wait; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
{
    gannet_config_head "$GP"
    cat <<CONF
[dns]
nameservers = ["127.0.0.1:9"]
[delivery]
relay_host = "127.0.0.1:$((GP + 9))"
[auth]
plaintext_on_loopback = true
[limits]
max_connections_per_ip = 20000
max_connections_per_listener = 20000
messages_per_hour = 100000000
CONF
} >"$WORK/gannet.toml"
G="target/release/gannet --config $WORK/gannet.toml --data $WORK/data"
$G domain add example.test >/dev/null
BOXES=${BOXES:-100}
for user in reader pop1 pop2 $(seq -f 'box%.0f' 0 $((BOXES - 1))); do
    $G account add $user@example.test --password Soakpass1 >/dev/null
    $G account set $user@example.test --quota 100GB >/dev/null
done
# The soak reads the stages' latencies off the admin console's /metrics with a token.
$G admin add soak --password Soakpass1 >/dev/null
TOKEN=$($G admin token create soak | tr -d '[:space:]')
$G serve 2>"$WORK/gannet.log" &
PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.1; done
echo "gannet $PID; ${SECONDS_} s, rate ${RATE} (0: flat out), $SESSIONS sessions; $(nproc) cores"
target/release/gannet-bench soak --smtp "127.0.0.1:$GP" --imap "127.0.0.1:$((GP + 5))" \
    --pop3 "127.0.0.1:$((GP + 3))" --sink "127.0.0.1:$((GP + 9))" --password Soakpass1 \
    --seconds "$SECONDS_" --rate "$RATE" --sessions "$SESSIONS" --interval "$INTERVAL" \
    --boxes "$BOXES" --csv "$OUT/soak.csv" --watch-pid "$PID" --watch-dir "$WORK/data" \
    --stats-command "$G store-stats" \
    --metrics-command "curl -sS -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$((GP + 8))/metrics"
kill -TERM $PID
wait $PID || true
# RocksDB's own word on every write stall (its LOG names the family and the reason),
# counted by family and reason, kept beside the CSV.
find "$WORK/data" -name LOG -exec cat {} + 2>/dev/null |
    grep -oE '\[[a-z0-9_-]+\] (Stalling|Stopping) writes because (we have [0-9]+ )?[a-z0-9 -]+' |
    sed -E 's/[0-9]+/N/' | sort | uniq -c >"$OUT/soak-stalls.txt" || true
echo "write stalls by family and reason (RocksDB's LOG): $(wc -l <"$OUT/soak-stalls.txt") kinds"
cat "$OUT/soak-stalls.txt"
venv=target/plot-venv
if ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib
fi
"$venv/bin/python" bench/soak-plot.py "$OUT/soak.csv" "$OUT/soak.png" "$SESSIONS" "$RATE"
