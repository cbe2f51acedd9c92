#!/usr/bin/env bash
# Spam scanning with the whole machine (issue #19), whole runs side by side on the same
# 1,000 messages of tests/corpus (bench/peers/sample.py: 500 ham, 500 spam):
#   gannet   `gannet spam scan --jobs CORES` (the command as an administrator runs it: the
#            rules loaded, every file read and scanned, one line per file), stock
#            SpamAssassin rules plus the built-in ones, no Bayes
#   rspamd   Rspamd 3.4, CORES workers, its stock rules, network off, Hyperscan loaded,
#            2 x CORES messages in flight (bench/peers/spam-scan.sh)
#   spamd    SpamAssassin 4, CORES children, -L, 2 x CORES in flight (one run: it is
#            slow)
# ROUNDS (default 5) interleaved rounds of gannet and rspamd: each round's rates, the
# ratio, and the median ratio. Gannet's rate is over the whole command (rule loading
# included) and, from its summary, over the scan alone. Gannet's data directory exists
# and one untimed run comes first, as on an installed appliance: the rules' compile cache
# is then in place (its first run's load time is printed too), as Rspamd's Hyperscan
# cache is before its rounds.
#
# usage: bench/spam-cores.sh   (environment: ROUNDS=5, CORES=nproc)
# Needs a release build; installs spamassassin, spamc and rspamd when missing.
set -u
cd "$(dirname "$0")/.."
PEERS=$(pwd)/bench/peers
CORES=${CORES:-$(nproc)}
ROUNDS=${ROUNDS:-5}
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
WORK=$(mktemp -d /tmp/gannet-spam-cores.XXXXXX)
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
systemctl stop rspamd >/dev/null 2>&1 || pkill -x rspamd 2>/dev/null || true
SAMPLE=$WORK/sample
python3 "$PEERS/sample.py" "$CORPUS" "$SAMPLE"
printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n' > "$WORK/gannet.toml"
G="target/release/gannet --config $WORK/gannet.toml --data $WORK/data"
mkdir -p "$WORK/data"
echo "machine: $(nproc) cores; CORES=$CORES"
echo "first run (fills the rules' compile cache): $($G spam scan --jobs "$CORES" "$SAMPLE/ham" "$SAMPLE/spam" 2>&1 >/dev/null | tail -1)"

# gannet_run: prints "WHOLE SCAN" (messages/s over the whole command, and the summary's).
gannet_run() {
    local t0 t1 summary
    t0=$(date +%s.%N)
    summary=$($G spam scan --jobs "$CORES" "$SAMPLE/ham" "$SAMPLE/spam" 2>&1 >/dev/null | tail -1)
    t1=$(date +%s.%N)
    local n scan
    n=$(echo "$summary" | sed -n 's/^scanned \([0-9]*\) messages.*/\1/p')
    scan=$(echo "$summary" | sed -n 's/.*s: \([0-9]*\) messages\/s.*/\1/p')
    python3 -c "print(f'{$n / ($t1 - $t0):.0f} $scan')"
}

lines() {
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

echo "== spamd ($CORES children, one run)"
if CHILDREN=$CORES "$PEERS/setup/spamassassin.sh" start >/dev/null 2>&1; then
    "$PEERS/spam-scan.sh" spamd 127.0.0.1:783 "$SAMPLE" $((2 * CORES)) 1 5 | grep -E '^msgs/s'
    "$PEERS/setup/spamassassin.sh" stop >/dev/null 2>&1
else
    echo "spamd did not start"
fi

echo "== interleaved rounds: gannet spam scan --jobs $CORES and rspamd with $CORES workers"
start=$(lines)
if WORKERS=$CORES "$PEERS/setup/rspamd.sh" start >/dev/null 2>&1; then
    wait_for_hyperscan "$start"
    ratios=()
    for round in $(seq "$ROUNDS"); do
        read -r whole scan < <(gannet_run)
        r=$("$PEERS/spam-scan.sh" rspamd 127.0.0.1:11333 "$SAMPLE" $((2 * CORES)) 1 5 |
            sed -n 's/^msgs\/s min\/median\/max = [0-9.]* \/ \([0-9.]*\) .*/\1/p')
        ratio=$(python3 -c "print(f'{$whole / $r:.2f}')" 2>/dev/null || echo "?")
        ratios+=("$ratio")
        echo "round $round: gannet $whole msgs/s whole ($scan scanning), rspamd $r msgs/s, ratio $ratio"
    done
    python3 -c "import statistics, sys; r = [float(x) for x in sys.argv[1:] if x != '?']; print(f'median ratio gannet/rspamd over {len(r)} rounds: {statistics.median(r):.2f} (min {min(r):.2f}, max {max(r):.2f})')" "${ratios[@]}"
    "$PEERS/setup/rspamd.sh" stop >/dev/null 2>&1
else
    echo "rspamd did not start"
fi
rm -rf "$WORK"
