#!/usr/bin/env bash
# Spam scanning with the whole machine (issue #19), whole runs side by side on the same
# 1,000 messages of tests/corpus (bench/peers/sample.py: 500 ham, 500 spam):
#   gannet   `gannet spam scan` as an administrator runs it (every file read and scanned,
#            one line per file), stock SpamAssassin rules plus the built-in ones, no
#            Bayes, two ways: one-shot (`--local --jobs CORES`: the rules loaded from the
#            compile cache, regexes compiled and lazy DFA states built in the process)
#            and through a running `gannet serve` (its scan threads, one per core, warm
#            from the runs before, as rspamc finds Rspamd's workers)
#   rspamd   Rspamd 3.4, CORES workers, its stock rules, network off, Hyperscan loaded,
#            2 x CORES messages in flight (bench/peers/spam-scan.sh)
#   spamd    SpamAssassin 4, CORES children, -L, 2 x CORES in flight (one run: it is
#            slow)
# ROUNDS (default 5) interleaved rounds of gannet (both ways) and rspamd: each round's
# rates, the ratios, and the median ratios. Gannet's rate is over the whole command (for
# the one-shot way rule loading included, and from its summary over the scan alone).
# Gannet's data directory exists and one untimed run of each way comes first, as on an
# installed appliance: the rules' compile cache is then in place (its first run's load
# time is printed too) and the server's scan threads are started, as Rspamd's Hyperscan
# cache is loaded before its rounds. The server listens on GANNET_PORT (default 3940)
# and the next eight ports.
#
# usage: bench/spam-cores.sh   (environment: ROUNDS=5, CORES=nproc, GANNET_PORT=3940)
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
. bench/lib.sh
{
    gannet_config_head "${GANNET_PORT:-3940}"
    printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n'
} > "$WORK/gannet.toml"
G="target/release/gannet --config $WORK/gannet.toml --data $WORK/data"
mkdir -p "$WORK/data"
echo "machine: $(nproc) cores; CORES=$CORES"
echo "first run (fills the rules' compile cache): $($G spam scan --local --jobs "$CORES" "$SAMPLE/ham" "$SAMPLE/spam" 2>&1 >/dev/null | tail -1)"

# gannet_run [ARGS]: prints "WHOLE SCAN" (messages/s over the whole command, and the
# summary's rate); `--local --jobs CORES` for the one-shot way, none for the server's.
gannet_run() {
    local t0 t1 summary
    t0=$(date +%s.%N)
    summary=$($G spam scan "$@" "$SAMPLE/ham" "$SAMPLE/spam" 2>&1 >/dev/null | tail -1)
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

echo "== gannet serve (its scan threads warmed by one untimed run)"
$G serve > "$WORK/serve.log" 2>&1 &
served=$!
for _ in $(seq 100); do
    [ -S "$WORK/data/control.sock" ] && break
    sleep 0.2
done
echo "first run through the server: $($G spam scan "$SAMPLE/ham" "$SAMPLE/spam" 2>&1 >/dev/null | tail -1)"

echo "== interleaved rounds: gannet one-shot (--local --jobs $CORES), gannet through its server, rspamd with $CORES workers"
start=$(lines)
if WORKERS=$CORES "$PEERS/setup/rspamd.sh" start >/dev/null 2>&1; then
    wait_for_hyperscan "$start"
    ratios=()
    served_ratios=()
    for round in $(seq "$ROUNDS"); do
        read -r whole scan < <(gannet_run --local --jobs "$CORES")
        read -r served_whole _ < <(gannet_run)
        r=$("$PEERS/spam-scan.sh" rspamd 127.0.0.1:11333 "$SAMPLE" $((2 * CORES)) 1 5 |
            sed -n 's/^msgs\/s min\/median\/max = [0-9.]* \/ \([0-9.]*\) .*/\1/p')
        ratio=$(python3 -c "print(f'{$whole / $r:.2f}')" 2>/dev/null || echo "?")
        served_ratio=$(python3 -c "print(f'{$served_whole / $r:.2f}')" 2>/dev/null || echo "?")
        ratios+=("$ratio")
        served_ratios+=("$served_ratio")
        echo "round $round: gannet one-shot $whole msgs/s whole ($scan scanning), through its server $served_whole, rspamd $r msgs/s, ratios $ratio and $served_ratio"
    done
    median='import statistics, sys; r = [float(x) for x in sys.argv[2:] if x != "?"]; print(f"median ratio {sys.argv[1]}/rspamd over {len(r)} rounds: {statistics.median(r):.2f} (min {min(r):.2f}, max {max(r):.2f})")'
    python3 -c "$median" "gannet one-shot" "${ratios[@]}"
    python3 -c "$median" "gannet through its server" "${served_ratios[@]}"
    "$PEERS/setup/rspamd.sh" stop >/dev/null 2>&1
else
    echo "rspamd did not start"
fi
kill "$served" 2>/dev/null
wait "$served" 2>/dev/null
rm -rf "$WORK"
