#!/usr/bin/env bash
# Spam scanning side by side, one core each, on the same 1,000 messages of tests/corpus
# (500 ham picked evenly, 500 spam), in one run:
#   gannet     gannet-bench spam: the engine in-process on one thread, stock SpamAssassin
#              rules (/usr/share/spamassassin) plus the built-in ones
#   spamd      SpamAssassin 4 with the same stock rules, 1 child (CHILDREN=1), -L
#   rspamd     Rspamd 3.4 with its own stock rules, 1 worker (WORKERS=1), network off
# The peers run under bench/peers/spam-scan.sh with 2 messages in flight, so their one
# process is never idle waiting for the client. Verdicts at thresholds 5 (Gannet's level
# high) and 10 (medium) for all three.
#
# Then, because this machine's speed drifts by tens of percent within minutes, ROUNDS
# (default 5) interleaved rounds of Gannet and Rspamd (RUNS runs each, Rspamd left running
# with its Hyperscan database loaded): the ratio of their medians per round, and the
# median of those ratios.
#
# usage: bench/spam-compare.sh [RUNS=3]   (environment: ROUNDS=5)
# Needs a release build (cargo build --release -p gannet-bench); installs spamassassin,
# spamc and rspamd with apt-get when missing. Bounded: each peer run stops after
# MAX_SECONDS (default 600).
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PEERS=$(pwd)/bench/peers
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
WORK=$(mktemp -d /tmp/gannet-spam-compare.XXXXXX)
chmod 755 "$WORK"
export PEER_WORK=$WORK/peer MAX_SECONDS=${MAX_SECONDS:-600}
missing=()
for p in spamassassin spamc rspamd; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
# rspamd's package starts its own service; the peer script runs its own instance.
systemctl stop rspamd >/dev/null 2>&1 || pkill -x rspamd 2>/dev/null || true

SAMPLE=$WORK/sample
python3 "$PEERS/sample.py" "$CORPUS" "$SAMPLE"

echo "== gannet (one thread)"
target/release/gannet-bench spam "$SAMPLE" --rules-dir /usr/share/spamassassin \
    --runs "$RUNS" --thresholds 5,10

# Rspamd compiles its regexes for Hyperscan in a helper process after it starts and
# matches with PCRE until the database is loaded (by the worker; on a later start the
# main process loads it from its cache before forking): measure it only once it is
# loaded (at most 120 s), so that it runs at its best.
# log_lines: where the log ends now; wait_for_hyperscan LINES: wait for a load logged
# after that line (the log is kept from one start to the next).
log_lines() {
    local log=$PEER_WORK/rspamd/log/rspamd.log
    if [ -f "$log" ]; then wc -l < "$log"; else echo 0; fi
}
wait_for_hyperscan() {
    local log=$PEER_WORK/rspamd/log/rspamd.log
    for _ in $(seq 240); do
        tail -n "+$(($1 + 1))" "$log" 2>/dev/null |
            grep -q "hyperscan database of [0-9]* regexps has been loaded" && return
        sleep 0.5
    done
    echo "rspamd: hyperscan database not loaded after 120 s; measuring anyway"
}

# peer NAME SETUP VAR=1 PROTO TARGET: start a peer with one process, scan, stop it.
peer() {
    local name=$1 setup=$2 one=$3 proto=$4 target=$5
    echo "== $name ($one)"
    local lines
    lines=$(log_lines)
    if env "$one" "$PEERS/setup/$setup" start >/dev/null 2>&1; then
        [ "$name" = rspamd ] && wait_for_hyperscan "$lines"
        "$PEERS/spam-scan.sh" "$proto" "$target" "$SAMPLE" 2 "$RUNS" 5,10
        "$PEERS/setup/$setup" stop >/dev/null 2>&1
    else
        echo "$name did not start"
    fi
}
peer spamd spamassassin.sh CHILDREN=1 spamd 127.0.0.1:783
peer rspamd rspamd.sh WORKERS=1 rspamd 127.0.0.1:11333

echo "== interleaved rounds: gannet and rspamd (one core each), ${ROUNDS:-5} rounds of $RUNS runs"
lines=$(log_lines)
if WORKERS=1 "$PEERS/setup/rspamd.sh" start >/dev/null 2>&1; then
    wait_for_hyperscan "$lines"
    ratios=()
    for round in $(seq "${ROUNDS:-5}"); do
        g=$(target/release/gannet-bench spam "$SAMPLE" --rules-dir /usr/share/spamassassin \
            --runs "$RUNS" | sed -n 's/^median: \([0-9.]*\) msgs\/s.*/\1/p')
        r=$("$PEERS/spam-scan.sh" rspamd 127.0.0.1:11333 "$SAMPLE" 2 "$RUNS" 5 |
            sed -n 's/^msgs\/s min\/median\/max = [0-9.]* \/ \([0-9.]*\) .*/\1/p')
        ratio=$(python3 -c "print(f'{$g / $r:.2f}')" 2>/dev/null || echo "?")
        ratios+=("$ratio")
        echo "round $round: gannet $g msgs/s, rspamd $r msgs/s, ratio $ratio"
    done
    python3 -c "import statistics, sys; r = [float(x) for x in sys.argv[1:] if x != '?']; print(f'median ratio gannet/rspamd over {len(r)} rounds: {statistics.median(r):.2f} (min {min(r):.2f}, max {max(r):.2f})')" "${ratios[@]}"
    "$PEERS/setup/rspamd.sh" stop >/dev/null 2>&1
else
    echo "rspamd did not start"
fi
rm -rf "$WORK"
