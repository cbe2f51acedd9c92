#!/usr/bin/env bash
# Relay throughput side by side: N messages of 10 KiB submitted (gannet-bench smtp, c=20,
# one connection per message, from 127.0.0.1: a trusted network) to a relaying server
# whose smart host is Postfix's smtp-sink on loopback, timed from the first submission
# until the server's queue is empty (everything handed to the sink).
#   gannet   `gannet serve` with delivery.relay_host = the sink (durable queue)
#   postfix  stock Postfix 3.7 from bench/peers/setup/postfix.sh, with
#            relayhost = the sink and the smtp transport (durable queue)
#
# usage: bench/relay-compare.sh [RUNS=3] [N=1000]
# Needs a release build; installs postfix if missing. Bounded: each wait stops at 120 s.
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
N=${2:-1000}
ROOT=$(pwd)
PEERS=$(pwd)/bench/peers
WORK=$(mktemp -d /tmp/gannet-relay.XXXXXX)
chmod 755 "$WORK"
export PEER_WORK=$WORK/peer
scripts/install-deps.sh --bench
SINK=127.0.0.1:2599
BENCH="$ROOT/target/release/gannet-bench"
GANNET="$ROOT/target/release/gannet"

smtp-sink -u nobody "$SINK" 1000 >/dev/null 2>&1 &
SINK_PID=$!
trap 'kill $SINK_PID 2>/dev/null; pkill -f "gannet --config $WORK" 2>/dev/null; "$PEERS/setup/postfix.sh" stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
sleep 0.5

# seconds_until_empty CMD: polls CMD (prints the number of queued messages) every 50 ms.
seconds_until_empty() {
    local start=$1 n
    for _ in $(seq 2400); do
        n=$($2)
        if [ "$n" -eq 0 ]; then
            echo "$(date +%s.%N) - $start" | bc
            return
        fi
        sleep 0.05
    done
    echo "timeout"
}

gannet_queued() { echo $(( $("$GANNET" --config "$WORK/gannet.toml" --data "$WORK/data" queue list | wc -l) - 1 )); }
postfix_queued() { find /var/spool/postfix/incoming /var/spool/postfix/active /var/spool/postfix/deferred /var/spool/postfix/maildrop -type f 2>/dev/null | wc -l; }

run_load() { # TARGET
    "$BENCH" smtp --target "$1" --count "$N" --size 10240 --concurrency 20 \
        --from bench@example.org --to rcpt@remote.example 2>/dev/null | grep '^result'
}

echo "== gannet"
cat > "$WORK/gannet.toml" <<EOF
[server]
hostname = "relay.example.test"
[listen]
smtp = "127.0.0.1:2625"
submission = "127.0.0.1:2687"
submissions = "127.0.0.1:2465"
pop3 = "127.0.0.1:2110"
pop3s = "127.0.0.1:2995"
imap = "127.0.0.1:2143"
imaps = "127.0.0.1:2993"
[limits]
messages_per_hour = 1000000
[delivery]
relay_host = "$SINK"
[dns]
nameservers = ["127.0.0.1:9"]
EOF
for run in $(seq "$RUNS"); do
    rm -rf "$WORK/data"
    "$GANNET" --config "$WORK/gannet.toml" --data "$WORK/data" serve >"$WORK/serve.log" 2>&1 &
    for _ in $(seq 100); do ss -ltn | grep -q ':2625 ' && break; sleep 0.1; done
    start=$(date +%s.%N)
    load=$(run_load 127.0.0.1:2625)
    secs=$(seconds_until_empty "$start" gannet_queued)
    sent=$(grep -c 'delivered=1' "$WORK/serve.log")
    echo "run $run: $load relayed_secs=$secs relayed_mps=$(echo "scale=1; $N / $secs" | bc 2>/dev/null) sent_to_sink=$sent"
    pkill -f "gannet --config $WORK" ; sleep 1
done

echo "== postfix"
LISTEN=127.0.0.1:2528 "$PEERS/setup/postfix.sh" start >/dev/null
postconf -e "relayhost = [127.0.0.1]:${SINK##*:}" "default_transport = smtp" "relay_transport = smtp" \
    "smtp_tls_security_level = none" "mynetworks = 127.0.0.0/8"
postfix reload >/dev/null 2>&1
sleep 1
for run in $(seq "$RUNS"); do
    before=$(grep -c 'status=sent' "$PEER_WORK/postfix/maillog" 2>/dev/null)
    start=$(date +%s.%N)
    load=$(run_load 127.0.0.1:2528)
    secs=$(seconds_until_empty "$start" postfix_queued)
    sleep 1 # postlogd writes the log a moment later
    sent=$(( $(grep -c 'status=sent' "$PEER_WORK/postfix/maillog" 2>/dev/null) - before ))
    echo "run $run: $load relayed_secs=$secs relayed_mps=$(echo "scale=1; $N / $secs" | bc 2>/dev/null) sent_to_sink=$sent"
done
