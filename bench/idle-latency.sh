#!/usr/bin/env bash
# IDLE push latency with many idle IMAP sessions (issue #18): starts `gannet serve` on a
# fresh data directory for each binary given, has bench/imap-idle-latency.py idle
# SESSIONS sessions on one INBOX and deliver MESSAGES messages over SMTP, and prints the
# latency from each delivery's 250 to each session's EXISTS.
#
# usage: bench/idle-latency.sh [SESSIONS=1000] [MESSAGES=50] [BINARY...]
#        (default binary: target/release/gannet; give an older build as a second binary
#        to compare, e.g. the one that polled every 500 ms)
set -u
cd "$(dirname "$0")/.."
SESSIONS=${1:-1000}
MESSAGES=${2:-50}
shift 2 2>/dev/null || shift $#
BINARIES=("$@")
[ ${#BINARIES[@]} -eq 0 ] && BINARIES=(target/release/gannet)
ulimit -n "$(ulimit -Hn)" 2>/dev/null
for BIN in "${BINARIES[@]}"; do
    WORK=$(mktemp -d /tmp/gannet-idle.XXXXXX)
    cat > "$WORK/gannet.toml" <<CONF
[server]
hostname = "mx.example.test"
[listen]
smtp = "127.0.0.1:4525"
submission = "127.0.0.1:4587"
submissions = "127.0.0.1:4465"
pop3 = "127.0.0.1:4110"
pop3s = "127.0.0.1:4995"
imap = "127.0.0.1:4143"
imaps = "127.0.0.1:4993"
web = "127.0.0.1:4443"
[auth]
plaintext_on_loopback = true
[limits]
max_connections_per_ip = 5000
CONF
    G="$BIN --config $WORK/gannet.toml --data $WORK/data"
    $G domain add example.test >/dev/null
    $G account add idle@example.test --password Idlepass1 >/dev/null
    $G serve 2>"$WORK/gannet.log" &
    GPID=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4525) 2>/dev/null && break; sleep 0.1; done
    echo "== $BIN"
    timeout 900 python3 bench/imap-idle-latency.py --imap 4143 --smtp 4525 \
        --user idle@example.test --password Idlepass1 --sessions "$SESSIONS" --messages "$MESSAGES"
    echo "gannet RSS: $(ps -o rss= -p $GPID) KiB"
    kill -TERM $GPID; wait $GPID
    rm -rf "$WORK"
done
