#!/usr/bin/env bash
# The soak (issue #19): `gannet-bench soak` against one `gannet serve` for SECONDS
# (default 1800): SMTP ingest at RATE messages/s (default 0: flat out) over SESSIONS
# sessions (default 20, one connection per message), 4 IMAP readers, 2 POP3 users whose
# clients download and delete, every 10th message relayed to the bench's own sink as the smart
# host; one CSV line every INTERVAL seconds (default 5). Writes OUT/soak.csv and
# OUT/soak.png (matplotlib, in a venv under target/) and prints a summary: rates at the
# start and the end, p99 over time, RSS over the last two-thirds.
#
# usage: [SECONDS=1800] [RATE=0] [SESSIONS=20] bench/soak.sh [OUT=docs/images]
# gannet runs on its defaults (spam filtering on, the stock rules where installed) but
# for ports, the smart host, passwords without TLS on loopback (the readers log in in
# plain text), and limits raised for one busy client address.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-docs/images}
SECONDS_=${SECONDS:-1800}
RATE=${RATE:-0}
SESSIONS=${SESSIONS:-20}
INTERVAL=${INTERVAL:-5}
GP=${GANNET_PORT:-3950}
WORK=$(mktemp -d /tmp/gannet-soak.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$WORK"' EXIT
mkdir -p "$OUT"
cat >"$WORK/gannet.toml" <<CONF
[server]
hostname = "mx.example.test"
[listen]
smtp = "127.0.0.1:$GP"
submission = "127.0.0.1:$((GP + 1))"
submissions = "127.0.0.1:$((GP + 2))"
pop3 = "127.0.0.1:$((GP + 3))"
pop3s = "127.0.0.1:$((GP + 4))"
imap = "127.0.0.1:$((GP + 5))"
imaps = "127.0.0.1:$((GP + 6))"
web = "127.0.0.1:$((GP + 7))"
admin = "127.0.0.1:$((GP + 8))"
[dns]
nameservers = ["127.0.0.1:9"]
[delivery]
relay_host = "127.0.0.1:$((GP + 9))"
[auth]
plaintext_on_loopback = true
[limits]
max_connections_per_ip = 1000
messages_per_hour = 100000000
CONF
G="target/release/gannet --config $WORK/gannet.toml --data $WORK/data"
$G domain add example.test >/dev/null
for user in reader pop1 pop2; do
    $G account add $user@example.test --password Soakpass1 >/dev/null
    $G account set $user@example.test --quota 100GB >/dev/null
done
$G serve 2>"$WORK/gannet.log" &
PID=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$GP) 2>/dev/null && break; sleep 0.1; done
echo "gannet $PID; ${SECONDS_} s, rate ${RATE} (0: flat out), $SESSIONS sessions; $(nproc) cores"
target/release/gannet-bench soak --smtp "127.0.0.1:$GP" --imap "127.0.0.1:$((GP + 5))" \
    --pop3 "127.0.0.1:$((GP + 3))" --sink "127.0.0.1:$((GP + 9))" --password Soakpass1 \
    --seconds "$SECONDS_" --rate "$RATE" --sessions "$SESSIONS" --interval "$INTERVAL" \
    --csv "$OUT/soak.csv" --watch-pid "$PID" --watch-dir "$WORK/data" \
    --stats-command "$G store-stats"
kill -TERM $PID
wait $PID || true
venv=target/plot-venv
if ! "$venv/bin/python" -c "import matplotlib" 2>/dev/null; then
    python3 -m venv "$venv" && "$venv/bin/pip" install -q matplotlib
fi
"$venv/bin/python" - "$OUT/soak.csv" "$OUT/soak.png" "$SESSIONS" "$RATE" <<'PY'
import csv, statistics, sys
import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt
rows = list(csv.DictReader(open(sys.argv[1])))
num = lambda r, k: float(r[k]) if r[k] not in ("", None) else 0.0
t = [num(r, "seconds") / 60 for r in rows]
fig, ax = plt.subplots(5, 1, figsize=(9, 13), sharex=True)
ax[0].plot(t, [num(r, "smtp_per_s") for r in rows], label="SMTP delivered")
ax[0].plot(t, [num(r, "imap_msgs_per_s") for r in rows], label="IMAP fetched")
ax[0].plot(t, [num(r, "pop3_msgs_per_s") for r in rows], label="POP3 downloaded")
ax[0].plot(t, [num(r, "relayed_per_s") for r in rows], label="relayed to the sink")
ax[0].set_ylabel("messages/s")
ax[0].set_ylim(bottom=0)
ax[0].legend(fontsize=8)
for key, label in (("p50_ms", "p50"), ("p99_ms", "p99"), ("p999_ms", "p99.9")):
    ax[1].plot(t, [max(num(r, key), 0.01) for r in rows], label=label)
ax[1].set_ylabel("final SMTP reply, ms")
ax[1].set_yscale("log")
ax[1].legend(fontsize=8)
ax[2].plot(t, [num(r, "rss_mb") for r in rows])
ax[2].set_ylabel("gannet RSS, MB")
ax[2].set_ylim(bottom=0)
ax[3].plot(t, [num(r, "data_mb") / 1000 for r in rows], label="data directory")
ax[3].set_ylabel("GB")
ax[3].set_ylim(bottom=0)
ax[4].plot(t, [num(r, "pending_compaction_mb") for r in rows], label="pending compaction, MB")
ax[4].plot(t, [num(r, "delayed_write_rate") / 1e6 for r in rows], label="write delay rate, MB/s (0: none)")
ax[4].set_ylabel("RocksDB")
ax[4].legend(fontsize=8)
ax[4].set_xlabel("minutes")
fig.suptitle(f"gannet soak: mixed load, {sys.argv[3]} SMTP sessions, rate {sys.argv[4]} (0: flat out)")
fig.tight_layout()
fig.savefig(sys.argv[2], dpi=80)
n = len(rows)
tenth = max(1, n // 10)
full = rows[:-1] or rows  # the last interval may be partial
first = statistics.median(num(r, "smtp_per_s") for r in full[:tenth])
last = statistics.median(num(r, "smtp_per_s") for r in full[-tenth:])
print(f"intervals: {n}")
print(f"SMTP rate, median of the first 10 %: {first:.0f} msgs/s; of the last 10 %: {last:.0f} msgs/s; ratio {last / max(first, 1e-9):.2f}")
for key in ("imap_msgs_per_s", "pop3_msgs_per_s", "relayed_per_s"):
    print(f"{key}: median {statistics.median(num(r, key) for r in full):.1f}")
p99 = [num(r, "p99_ms") for r in full]
print(f"p99 of the final reply: median {statistics.median(p99):.1f} ms, max {max(p99):.1f} ms; p99.9 max {max(num(r, 'p999_ms') for r in full):.1f} ms")
print(f"SMTP failures: {sum(num(r, 'smtp_failed') for r in rows):.0f}; intervals with writes stopped: {sum(1 for r in rows if r['write_stopped'] == 'true')}, delayed: {sum(1 for r in rows if num(r, 'delayed_write_rate') > 0)}")
rss = [num(r, "rss_mb") for r in full if r["rss_mb"]]
if rss:
    tail = rss[len(rss) // 3:]
    print(f"RSS: first {rss[0]:.0f} MB, last {rss[-1]:.0f} MB; over the last two-thirds min {min(tail):.0f}, max {max(tail):.0f} MB (spread {100 * (max(tail) - min(tail)) / max(min(tail), 1):.0f} %)")
PY
