#!/usr/bin/env bash
# What screening costs at ingest, in one run, in interleaved rounds: the same gannet with
#   off     no antivirus, attachment policy disabled
#   policy  the attachment policy only (the default)
#   clamd   the policy and ClamAV's clamd (a real clamd started here, EICAR signature only)
# each on a fresh data directory, loaded by gannet-bench smtp from 127.0.0.1 made an
# outside client (no trusted networks: the path that screens), c=20, one connection per
# message, with two messages: 10 KiB of text, and ~1 MB carrying a base64 PDF-like
# attachment.
#
# With PEERS=1, the same rounds also run the peers' way, loaded by the same client:
#   postfix    a stock Debian Postfix (bench/peers/setup/postfix.sh), no filter
#   pf+amavis  Postfix -> amavisd-new -> the same clamd (bench/peers/setup/amavis.sh):
#              an after-queue content filter, amavis re-injecting on 127.0.0.1:10025
# each started afresh for its run (empty queue and Maildir), then stopped. Postfix says
# 250 once the message is in its queue, before local delivery and before amavis sees it
# (Gannet scans and stores before its 250): their lines add the time until the Maildir
# holds every message (delivered_secs, from the client's start to the newest file's
# mtime) and delivered_mps, the number to set beside Gannet's mps.
#
# usage: [PEERS=1] bench/screening-compare.sh [ROUNDS=3] [COUNT_10K=2000] [COUNT_1M=300]
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
COUNT_SMALL=${2:-2000}
COUNT_LARGE=${3:-300}
PEERS=${PEERS:-0}
GANNET=target/release/gannet
BENCH=target/release/gannet-bench
WORK=$(mktemp -d /tmp/gannet-screening.XXXXXX)
# (711: users amavis and rcpt reach the clamd socket and the Maildir below it)
chmod 711 "$WORK"
export PEER_WORK=$WORK/peer
cleanup() {
    if [ "$PEERS" = 1 ]; then
        bench/peers/setup/amavis.sh stop >/dev/null 2>&1 || true
    fi
    kill $(jobs -p) 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
if [ "$PEERS" = 1 ]; then
    bench/peers/setup/amavis.sh install
    bench/peers/setup/amavis.sh stop >/dev/null 2>&1 || true
fi

# The two messages.
python3 - "$WORK" <<'PY'
import base64, os, sys
work = sys.argv[1]
head = "From: <sender@outside.example>\r\nTo: <bench@example.test>\r\nSubject: {}\r\nMIME-Version: 1.0\r\n"
line = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 the quick fox\r\n"
small = head.format("text") + "Content-Type: text/plain\r\n\r\n" + line * (10240 // len(line))
open(os.path.join(work, "small.eml"), "wb").write(small.encode())
pdf = b"%PDF-1.4\n" + os.urandom(750_000) + b"\n%%EOF\n"
b64 = base64.encodebytes(pdf).decode().replace("\n", "\r\n")
large = (head.format("report") + 'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
         "--b\r\nContent-Type: text/plain\r\n\r\nThe report is attached.\r\n"
         '--b\r\nContent-Type: application/pdf; name="report.pdf"\r\n'
         'Content-Disposition: attachment; filename="report.pdf"\r\n'
         "Content-Transfer-Encoding: base64\r\n\r\n" + b64 + "--b--\r\n")
open(os.path.join(work, "large.eml"), "wb").write(large.encode())
PY

# A DNS server that answers at once (SPF is checked for outside mail; with no answer it
# would wait for its timeout): dnsmasq with nothing to resolve.
dnsmasq --keep-in-foreground --port=5399 --listen-address=127.0.0.1 --bind-interfaces \
    --no-resolv --no-hosts --address=/example/127.0.0.1 --pid-file="$WORK/dnsmasq.pid" &

# A clamd of our own, as the tests run it.
mkdir -p "$WORK/clamav/db"
python3 -c 'import sys; e=b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"; print("Eicar-Test-Signature:0:*:" + e.hex())' >"$WORK/clamav/db/eicar.ndb"
cat >"$WORK/clamav/clamd.conf" <<CONF
Foreground yes
LocalSocket $WORK/clamav/clamd.sock
LocalSocketMode 666
DatabaseDirectory $WORK/clamav/db
User root
LogFile $WORK/clamav/clamd.log
StreamMaxLength 30M
ScanArchive yes
ScanMail yes
CONF
clamd --config-file="$WORK/clamav/clamd.conf" &
python3 - "$WORK/clamav/clamd.sock" <<'PY'
import socket, sys, time
deadline = time.time() + 120
while time.time() < deadline:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sys.argv[1])
        s.sendall(b"zPING\0")
        if s.recv(16).startswith(b"PONG"):
            sys.exit(0)
    except OSError:
        pass
    time.sleep(0.2)
sys.exit("clamd did not answer PING")
PY

one() {  # one NAME EXTRA_TOML MESSAGE COUNT
    local name=$1 extra=$2 message=$3 count=$4 dir="$WORK/$1"
    rm -rf "$dir"
    mkdir -p "$dir"
    # (the data directory of the run before is removed here, once its server is gone)
    cat >"$dir/gannet.toml" <<CONF
[server]
hostname = "mx.example.test"
[listen]
smtp = "127.0.0.1:4125"
submission = "127.0.0.1:4187"
submissions = "127.0.0.1:4165"
pop3 = "127.0.0.1:4110"
pop3s = "127.0.0.1:4195"
imap = "127.0.0.1:4143"
imaps = "127.0.0.1:4193"
web = "127.0.0.1:4144"
[relay]
trusted_networks = []
[limits]
max_connections_per_ip = 100
[dns]
nameservers = ["127.0.0.1:5399"]
$extra
CONF
    local g="$GANNET --config $dir/gannet.toml --data $dir/data"
    $g domain add example.test >/dev/null
    $g account add bench@example.test --password Benchpass1 >/dev/null
    $g serve 2>"$dir/log" &
    local pid=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/4125) 2>/dev/null && break; sleep 0.1; done
    printf '%-9s %-6s ' "$name" "$(basename "$message" .eml)"
    "$BENCH" smtp --target 127.0.0.1:4125 --count "$count" --message "$message" \
        --concurrency 20 --from sender@outside.example --to bench@example.test 2>"$dir/bench.err" |
        grep "^result" || { tail -n 3 "$dir/bench.err"; tail -n 5 "$dir/log"; true; }
    kill -TERM $pid
    wait $pid || true
}

peer() {  # peer postfix|pf+amavis MESSAGE COUNT
    local name=$1 message=$2 count=$3 setup=bench/peers/setup/postfix.sh
    local new=$PEER_WORK/home/rcpt/Maildir/new log=$PEER_WORK/$1.log
    [ "$name" = pf+amavis ] && setup=bench/peers/setup/amavis.sh
    mkdir -p "$PEER_WORK"
    bench/peers/setup/postfix.sh reset-maildir
    if ! CLAMD_SOCKET=$WORK/clamav/clamd.sock $setup start >"$log" 2>&1; then
        printf '%-9s %-6s did not start: %s\n' "$name" "$(basename "$message" .eml)" "$(tail -n 1 "$log")"
        $setup stop >/dev/null 2>&1 || true
        return
    fi
    printf '%-9s %-6s ' "$name" "$(basename "$message" .eml)"
    local start line
    start=$(date +%s.%N)
    line=$("$BENCH" smtp --target 127.0.0.1:2528 --count "$count" --message "$message" \
        --concurrency 20 --from sender@outside.example --to rcpt@example.test 2>>"$log" |
        grep "^result") || line="result failed: $(tail -n 1 "$log")"
    # Postfix's 250 came before delivery (and before amavis): wait for the Maildir
    python3 bench/peers/wait-maildir.py "$new" "$start" "$line"
    $setup stop >/dev/null 2>&1 || true
}

if [ "$PEERS" = 1 ]; then
    echo "# postfix, pf+amavis: mps and p50 are Postfix's 250, given once the message is"
    echo "# queued, before delivery and before amavis scans it (Gannet's 250 follows its"
    echo "# scan and its store); delivered_mps counts until the Maildir holds every message."
fi
for r in $(seq "$ROUNDS"); do
    echo "== round $r"
    for msg in small large; do
        count=$COUNT_SMALL
        [ $msg = large ] && count=$COUNT_LARGE
        one off "[attachments]
enabled = false" "$WORK/$msg.eml" "$count"
        one policy "" "$WORK/$msg.eml" "$count"
        one clamd "[antivirus]
clamd = \"unix:$WORK/clamav/clamd.sock\"" "$WORK/$msg.eml" "$count"
        if [ "$PEERS" = 1 ]; then
            peer postfix "$WORK/$msg.eml" "$count"
            peer pf+amavis "$WORK/$msg.eml" "$count"
        fi
    done
done
