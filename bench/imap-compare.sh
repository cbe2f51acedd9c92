#!/usr/bin/env bash
# IMAP and POP3 side by side, in one run: Dovecot 2.3 (bench/peers/setup/dovecot.sh)
# and gannet serve, each holding the same $MESSAGES (default 1,000) corpus messages (the
# first files of tests/corpus by path, the list again from its start past 3,125), measured with the same clients: the peers' imap-bench.py
# (Python imaplib/poplib) and gannet-bench's own `imap` client; then POP3 alone, the two
# servers in turn.
#
# usage: [MESSAGES=1000] bench/imap-compare.sh [REPS=3]
# Needs a release build and dovecot-imapd, dovecot-pop3d (installed if missing).
# GANNET, BENCH: the binaries (default target/release/...); IMAP_LISTEN, POP3_LISTEN:
# Dovecot's addresses (default 127.0.0.1:1143, :1110), GANNET_PORT: the first of gannet's
# nine ports (default 3100). A port already taken stops the script.
set -u
cd "$(dirname "$0")/.."
. bench/lib.sh
REPS=${1:-3}
PEERS=$(pwd)/bench/peers
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
GANNET=${GANNET:-target/release/gannet}
BENCH=${BENCH:-target/release/gannet-bench}
WORK=$(mktemp -d /tmp/gannet-imap-compare.XXXXXX)
chmod 755 "$WORK"   # Dovecot's auth process must read its users file in there
export PEER_WORK=$WORK/peer
export IMAP_LISTEN=${IMAP_LISTEN:-127.0.0.1:1143}
export POP3_LISTEN=${POP3_LISTEN:-127.0.0.1:1110}
GP=${GANNET_PORT:-3100}
export NMSGS=${MESSAGES:-1000}
for a in "$IMAP_LISTEN" "$POP3_LISTEN" $(for i in 0 1 2 3 4 5 6 7 8; do echo "127.0.0.1:$((GP + i))"; done); do
    if (exec 3<>"/dev/tcp/${a%:*}/${a##*:}") 2>/dev/null; then
        echo "port ${a} is taken: set IMAP_LISTEN, POP3_LISTEN or GANNET_PORT" >&2
        exit 1
    fi
done

for p in dovecot-imapd dovecot-pop3d; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null; }
done

echo "== Dovecot"
"$PEERS/setup/dovecot.sh" start "$CORPUS" >/dev/null
for r in $(seq "$REPS"); do
    echo "-- rep $r: imap-bench.py"
    timeout 600 "$PEERS/imap-bench.py" "${IMAP_LISTEN%:*}" "${IMAP_LISTEN##*:}" bench benchpass --pop3-port "${POP3_LISTEN##*:}" --runs 5
    echo "-- rep $r: gannet-bench imap"
    RUST_BACKTRACE=0 "$BENCH" imap --imap "$IMAP_LISTEN" --pop3 "$POP3_LISTEN" --user bench --password benchpass --runs 5
done
# Dovecot stays up (idle) for the interleaved POP3 rounds at the end.

echo "== gannet"
{
    gannet_config_head "$GP"
    cat <<CONF
[auth]
plaintext_on_loopback = true   # the peers' client logs in without TLS, as with Dovecot
CONF
} >"$WORK/gannet.toml"
G="$GANNET --config $WORK/gannet.toml --data $WORK/data"
$G domain add example.test >/dev/null
$G account add bench@example.test --password Benchpass1 >/dev/null
# Every message in INBOX, as in Dovecot's Maildir: no spam verdict moves any to Junk.
$G account set bench@example.test --spam-level off >/dev/null
$G serve 2>"$WORK/gannet.log" &
GPID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.1; done
python3 - "$CORPUS" "$GP" "$NMSGS" <<'PY'
import os, smtplib, sys
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(sys.argv[1]) for f in fs)
count = int(sys.argv[3])
with smtplib.SMTP('127.0.0.1', int(sys.argv[2])) as s:
    for i in range(count):
        raw = open(files[i % len(files)], 'rb').read().replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
        s.sendmail('corpus@example.org', ['bench@example.test'], raw)
print('delivered', count)
PY
for r in $(seq "$REPS"); do
    echo "-- rep $r: imap-bench.py"
    timeout 600 "$PEERS/imap-bench.py" 127.0.0.1 $((GP + 5)) bench@example.test Benchpass1 --pop3-port $((GP + 3)) --runs 5
    echo "-- rep $r: gannet-bench imap"
    RUST_BACKTRACE=0 "$BENCH" imap --imap 127.0.0.1:$((GP + 5)) --pop3 127.0.0.1:$((GP + 3)) --user bench@example.test --password Benchpass1 --runs 5
done
# POP3 alone, the two servers in turn, each round one run of 5 downloads per server:
# the ratio of medians, without the IMAP measurements in between.
echo "== POP3 alone, interleaved"
for r in $(seq "$REPS"); do
    echo "-- rep $r: Dovecot"
    "$BENCH" imap --imap "$IMAP_LISTEN" --pop3 "$POP3_LISTEN" --user bench --password benchpass --runs 5 --pop3-only | grep '^result'
    echo "-- rep $r: gannet"
    "$BENCH" imap --imap 127.0.0.1:$((GP + 5)) --pop3 127.0.0.1:$((GP + 3)) --user bench@example.test --password Benchpass1 --runs 5 --pop3-only | grep '^result'
done
kill -TERM $GPID; wait $GPID
"$PEERS/setup/dovecot.sh" stop >/dev/null
rm -rf "$WORK"
