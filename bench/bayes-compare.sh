#!/usr/bin/env bash
# Scanning with a trained Bayes database, side by side in one run, one core each, on the
# same 1,000 messages of tests/corpus (500 ham picked evenly, 500 spam), as
# bench/spam-compare.sh picks them:
#   gannet   gannet-bench spam --bayes-data: the engine in-process on one thread, stock
#            SpamAssassin rules plus the built-in ones, reading the database a
#            `gannet spam learn` of the whole corpus wrote; every run scans each message
#            without and then with Bayes, so the cost of Bayes is measured on one machine
#            state (the issue's budget: at most 25 % more time per message)
#   spamd    SpamAssassin 4 with the same stock rules, 1 child, -L, its Bayes database
#            trained by sa-learn on the same whole corpus (bench/peers/spam-scan.sh, 2
#            messages in flight so that the child never waits for the client)
# Both are trained on the messages they then scan: this measures speed, not accuracy
# (bench/spam-cv.sh measures accuracy on held-out folds).
#
# usage: bench/bayes-compare.sh [RUNS=3]
# Needs a release build (gannet, gannet-bench); installs spamassassin and spamc when
# missing. Bounded: each peer run stops after MAX_SECONDS (default 600).
set -u
cd "$(dirname "$0")/.."
RUNS=${1:-3}
PEERS=$(pwd)/bench/peers
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
GANNET=${GANNET:-target/release/gannet}
BENCH=${BENCH:-target/release/gannet-bench}
WORK=$(mktemp -d /tmp/gannet-bayes-compare.XXXXXX)
chmod 755 "$WORK"
export PEER_WORK=$WORK/peer MAX_SECONDS=${MAX_SECONDS:-600}
trap '"$PEERS/setup/spamassassin.sh" stop >/dev/null 2>&1; rm -rf "$WORK"' EXIT
for p in spamassassin spamc; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null; }
done

SAMPLE=$WORK/sample
python3 "$PEERS/sample.py" "$CORPUS" "$SAMPLE"

echo "== gannet: learn the corpus, then scan without and with Bayes (one thread)"
printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n' > "$WORK/gannet.toml"
"$GANNET" --config "$WORK/gannet.toml" --data "$WORK/gdata" spam learn \
    --spam "$CORPUS/spam" --ham "$CORPUS/ham" 2>/dev/null
"$BENCH" spam "$SAMPLE" --rules-dir /usr/share/spamassassin --bayes-data "$WORK/gdata" \
    --runs "$RUNS" --thresholds 5,10

echo "== spamd with Bayes (1 child): sa-learn the corpus, then scan"
if CHILDREN=1 EXTRA_CF='bayes_auto_expire 0' "$PEERS/setup/spamassassin.sh" start >/dev/null 2>&1; then
    printf '' > "$WORK/empty.prefs"
    chmod 644 "$WORK/empty.prefs"
    sal() {
        runuser -u debian-spamd -- timeout "$MAX_SECONDS" sa-learn --local \
            --siteconfigpath="$PEER_WORK/sa-site" --prefspath="$WORK/empty.prefs" "$@"
    }
    started=$(date +%s.%N)
    sal --no-sync --spam "$CORPUS/spam" >/dev/null && sal --no-sync --ham "$CORPUS/ham" >/dev/null &&
        sal --sync >/dev/null
    echo "sa-learn: $(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$started" "$(date +%s.%N)") s for the corpus"
    sal --dump magic 2>/dev/null | grep -E "nspam|nham|ntokens"
    "$PEERS/spam-scan.sh" spamd 127.0.0.1:783 "$SAMPLE" 2 "$RUNS" 5,10
else
    echo "spamd did not start"
fi
