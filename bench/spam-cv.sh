#!/usr/bin/env bash
# Cross-validation of spam accuracy on tests/corpus (500 spam, 2,625 ham), Gannet's Bayes
# classifier against SpamAssassin 4's, same folds, same stock rules, no network tests:
#   folds      every corpus message (ham/ and spam/) shuffled with Python's
#              random.Random(42), message i in fold i % FOLDS (about 100 spam and 525 ham
#              each with 5 folds); for each fold k both are trained on the other folds and
#              score fold k
#   gannet     `gannet spam learn --spam DIR --ham DIR` into a fresh data directory per
#              fold, then `gannet spam scan --json` on fold k (the stock rules,
#              rules_dirs = /usr/share/spamassassin, plus Gannet's built-in ones; the Bayes
#              score set once 200 spam and 200 ham are learned)
#   spamassassin  spamd (bench/peers/setup/spamassassin.sh: -L, 2 children, use_bayes 1,
#              bayes_auto_learn 0, here also bayes_auto_expire 0 so that no expiry runs in
#              the middle of a fold) with a Bayes database per fold, trained with
#              `sa-learn --local --no-sync --spam/--ham` then `--sync`, as debian-spamd with
#              spamd's own site configuration; fold k scored with spamd's REPORT command
#              (the score from the `Spam: True ; 7.3 / 5.0` header, the rules and their
#              points, the Bayes probability from `[score: ...]`)
# Reports spam caught (score >= T) and ham flagged (score >= T) at T = 5 and 10 per fold
# and pooled, side by side; how the BAYES_* rules fired on each side; ROC AUC of the
# scores; training and scan wall-clock times per fold; and the messages the two disagree
# on at 5. At 5, SpamAssassin's verdict is spamd's own (required_score 5.0: `Spam: True`),
# at 10 its score as printed (one decimal).
#
# Writes WORK/scores.tsv (fold, label, file, gannet_score, sa_score, gannet_bayes_hit,
# sa_bayes_hit, then the Bayes probabilities, spamd's verdict and both sides' rules with
# their points) and WORK/report.txt, and prints their paths; WORK is kept (without the
# training data and databases, unless KEEP=1).
#
# usage: bench/spam-cv.sh [FOLDS=5]
#   environment: GANNET_BIN (default target/release/gannet; copied into WORK first, so a
#   rebuild during the run changes nothing), QUICK=N (score only the first N messages of
#   each fold, training unchanged: a smoke run), SA_LISTEN (default 127.0.0.1:10783),
#   MAX_SECONDS (per fold and side, default 3600), KEEP=1.
# Needs a release build of gannet; installs spamassassin, spamd and spamc with apt-get
# when missing. 5 folds take about 7 minutes on 2 cores, mostly sa-learn and spamd.
set -u
umask 022
cd "$(dirname "$0")/.."
FOLDS=${1:-5}
case "$FOLDS" in
'' | *[!0-9]*) sed -n '2,36p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
[ "$FOLDS" -ge 2 ] || { echo "FOLDS must be at least 2" >&2; exit 2; }
QUICK=${QUICK:-0}
GANNET_BIN=${GANNET_BIN:-target/release/gannet}
SA_LISTEN=${SA_LISTEN:-127.0.0.1:10783}
MAX_SECONDS=${MAX_SECONDS:-3600}
PEERS=$(pwd)/bench/peers
[ -x "$GANNET_BIN" ] || { echo "no $GANNET_BIN (cargo build --release -p gannet)" >&2; exit 1; }
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
missing=()
for p in spamassassin spamd spamc; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null
fi
port=${SA_LISTEN##*:}
if ss -ltn | grep -q ":$port "; then
    echo "something already listens on $SA_LISTEN (SA_LISTEN=host:port to pick another)" >&2
    exit 1
fi

WORK=$(mktemp -d /tmp/gannet-spam-cv.XXXXXX)
chmod 755 "$WORK"
cp "$GANNET_BIN" "$WORK/gannet"
printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n' > "$WORK/gannet.toml"
: > "$WORK/empty.prefs"
G=("$WORK/gannet" --config "$WORK/gannet.toml")
# Which stock rules Gannet can run (for the report: its hits on the others).
"${G[@]}" --data "$WORK/rules-data" rules check --list > "$WORK/rules.tsv" 2>/dev/null
CUR_PEER=
cleanup() {
    if [ -n "$CUR_PEER" ]; then
        PEER_WORK=$CUR_PEER "$PEERS/setup/spamassassin.sh" stop >/dev/null 2>&1
        CUR_PEER=
    fi
    if [ "${KEEP:-0}" != 1 ]; then
        rm -rf "$WORK/gannet" "$WORK"/fold*/train "$WORK"/fold*/gdata "$WORK"/fold*/peer/sa-bayes
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
now() { date +%s.%N; }
echo "work directory: $WORK"
echo "gannet: $GANNET_BIN ($(sha256sum "$WORK/gannet" | cut -c1-12)), $(spamd --version 2>/dev/null | head -1)"

# The folds: links to the corpus files (hard links, else copies), readable by debian-spamd.
python3 - "$CORPUS" "$WORK" "$FOLDS" "$QUICK" <<'PY' || exit 1
import os, random, shutil, sys
corpus, work, folds, quick = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
files = sorted(os.path.join(label, f) for label in ('ham', 'spam')
               for f in os.listdir(os.path.join(corpus, label)))
random.Random(42).shuffle(files)
fold_of = {f: i % folds for i, f in enumerate(files)}
def link(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
with open(os.path.join(work, 'folds.tsv'), 'w') as out:
    for k in range(folds):
        d = os.path.join(work, f'fold{k}')
        for part in ('train', 'test'):
            for label in ('ham', 'spam'):
                os.makedirs(os.path.join(d, part, label))
        mine = [f for f in files if fold_of[f] == k]
        tested = mine[:quick] if quick > 0 else mine
        for f in files:
            if fold_of[f] != k:
                link(os.path.join(corpus, f), os.path.join(d, 'train', f))
        for f in tested:
            link(os.path.join(corpus, f), os.path.join(d, 'test', f))
            out.write(f'{k}\t{f.split("/")[0]}\t{f}\t{os.path.join(d, "test", f)}\n')
        n = lambda part, label: len(os.listdir(os.path.join(d, part, label)))
        print(f'fold {k}: train {n("train", "spam")} spam + {n("train", "ham")} ham, '
              f'test {n("test", "spam")} spam + {n("test", "ham")} ham')
PY

printf 'fold\tgannet_learned\tsa_nspam\tsa_nham\tsa_ntokens\tgannet_learn_s\tgannet_scan_s\tsa_learn_s\tsa_scan_s\tload1\n' > "$WORK/times.tsv"
for k in $(seq 0 $((FOLDS - 1))); do
    F=$WORK/fold$k
    echo "== fold $k"
    # Gannet: learn into a fresh data directory, then scan the fold.
    t0=$(now)
    timeout "$MAX_SECONDS" "${G[@]}" --data "$F/gdata" spam learn \
        --spam "$F/train/spam" --ham "$F/train/ham" > "$F/gannet-learn.log" 2>&1 ||
        { echo "gannet spam learn failed:" >&2; tail -3 "$F/gannet-learn.log" >&2; exit 1; }
    t1=$(now)
    timeout "$MAX_SECONDS" "${G[@]}" --data "$F/gdata" spam scan --json \
        "$F/test/ham" "$F/test/spam" > "$F/gannet.jsonl" 2> "$F/gannet-scan.err" ||
        { echo "gannet spam scan failed:" >&2; tail -3 "$F/gannet-scan.err" >&2; exit 1; }
    t2=$(now)
    learned=$(grep -o 'learned [0-9]*, already known [0-9]*' "$F/gannet-learn.log" | tail -1)
    echo "gannet: $learned; $(wc -l < "$F/gannet.jsonl") scanned"
    grep -qi without "$F/gannet-scan.err" && { echo "gannet scans without Bayes:" >&2; cat "$F/gannet-scan.err" >&2; }

    # SpamAssassin: spamd with this fold's (empty) database, trained with sa-learn while
    # it waits (spamd opens the database for each message).
    CUR_PEER=$F/peer
    PEER_WORK=$CUR_PEER CHILDREN=2 LISTEN=$SA_LISTEN EXTRA_CF='bayes_auto_expire 0' \
        "$PEERS/setup/spamassassin.sh" start >/dev/null 2>&1 ||
        { echo "spamd did not start" >&2; tail -5 "$CUR_PEER/spamd.log" >&2; exit 1; }
    sal() {
        runuser -u debian-spamd -- timeout "$MAX_SECONDS" sa-learn --local \
            --siteconfigpath="$CUR_PEER/sa-site" --prefspath="$WORK/empty.prefs" "$@"
    }
    t3=$(now)
    { sal --no-sync --spam "$F/train/spam" && sal --no-sync --ham "$F/train/ham" && sal --sync; } \
        > "$F/sa-learn.log" 2>&1 || { echo "sa-learn failed:" >&2; tail -3 "$F/sa-learn.log" >&2; exit 1; }
    t4=$(now)
    sal --dump magic > "$F/sa-magic.txt" 2>&1
    magic() { awk -v k="$1" '$0 ~ "non-token data: " k "$" {print $3}' "$F/sa-magic.txt"; }
    echo "spamassassin: $(grep -c 'Learned tokens' "$F/sa-learn.log") sa-learn runs; database nspam $(magic nspam), nham $(magic nham), ntokens $(magic ntokens)"
    t5=$(now)
    python3 - "$WORK/folds.tsv" "$k" "$SA_LISTEN" "$MAX_SECONDS" "$F/sa.tsv" <<'PY' || exit 1
import re, socket, sys, time
from concurrent.futures import ThreadPoolExecutor
manifest, k, listen, max_seconds, out = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), sys.argv[5]
host, port = listen.rsplit(':', 1)
tests = [l.rstrip('\n').split('\t') for l in open(manifest) if l.split('\t')[0] == k]
deadline = time.monotonic() + max_seconds
RULE = re.compile(r'^\s{0,3}(-?\d+(?:\.\d+)?) ([A-Za-z0-9_]+)')
BAYES = re.compile(r'\[score: ([0-9.]+)\]')

def report(path):
    msg = open(path, 'rb').read()
    for attempt in range(2):
        if time.monotonic() > deadline:
            return None
        try:
            with socket.create_connection((host, int(port)), timeout=120) as s:
                s.sendall(b'REPORT SPAMC/1.5\r\nContent-length: %d\r\n\r\n' % len(msg) + msg)
                s.shutdown(socket.SHUT_WR)
                data = b''
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            head, body = data.decode('utf-8', 'replace').split('\r\n\r\n', 1)
            m = re.search(r'^Spam: (True|False) ; (-?[0-9.]+) / ', head, re.M)
            rules, prob, last, table = [], '', None, False
            for line in body.splitlines():
                if line.startswith('---- '):
                    table = True
                    continue
                r = table and RULE.match(line)
                if r:
                    rules.append(f'{r.group(2)}:{r.group(1)}')
                    last = r.group(2)
                    continue
                b = table and BAYES.search(line)
                if b and last and last.startswith('BAYES_') and not prob:
                    prob = b.group(1)
            return (m.group(1) == 'True', float(m.group(2)), prob, ','.join(rules))
        except (OSError, ValueError, AttributeError) as e:
            err = e
    print(f'spamd failed on {path}: {err}', file=sys.stderr)
    return None

with ThreadPoolExecutor(2) as pool:
    results = list(pool.map(lambda t: report(t[3]), tests))
failed = 0
with open(out, 'w') as f:
    for t, r in zip(tests, results):
        if r is None:
            failed += 1
            f.write(f'{t[2]}\t\t\t\t\n')
        else:
            f.write(f'{t[2]}\t{int(r[0])}\t{r[1]}\t{r[2]}\t{r[3]}\n')
print(f'spamd: {len(tests) - failed} scanned, {failed} failed')
PY
    t6=$(now)
    PEER_WORK=$CUR_PEER "$PEERS/setup/spamassassin.sh" stop >/dev/null 2>&1
    CUR_PEER=
    python3 -c 'import sys; a = [float(x) for x in sys.argv[2:9]]; print(sys.argv[1], *sys.argv[9:13], f"{a[1]-a[0]:.1f}", f"{a[2]-a[1]:.1f}", f"{a[4]-a[3]:.1f}", f"{a[6]-a[5]:.1f}", sys.argv[13], sep="\t")' \
        "$k" "$t0" "$t1" "$t2" "$t3" "$t4" "$t5" "$t6" \
        "$(echo "$learned" | awk '{print $2}' | tr -d ,)" "$(magic nspam)" "$(magic nham)" "$(magic ntokens)" \
        "$(cut -d' ' -f1 /proc/loadavg)" >> "$WORK/times.tsv"
    tail -1 "$WORK/times.tsv" | awk -F'\t' '{printf "times: gannet learn %s s, scan %s s; spamassassin learn %s s, scan %s s (load %s)\n", $6, $7, $8, $9, $10}'
done

# Everything together: scores.tsv and the report.
python3 - "$WORK" "$FOLDS" <<'PY' | tee "$WORK/report.txt"
import json, os, sys
work, folds = sys.argv[1], int(sys.argv[2])
rows = []
for k in range(folds):
    d = os.path.join(work, f'fold{k}')
    gannet = {}
    for line in open(os.path.join(d, 'gannet.jsonl')):
        j = json.loads(line)
        gannet[os.path.relpath(j['file'], os.path.join(d, 'test'))] = j
    sa = {}
    for line in open(os.path.join(d, 'sa.tsv')):
        f, flag, score, prob, rules = line.rstrip('\n').split('\t')
        if flag != '':
            sa[f] = (flag == '1', float(score), float(prob) if prob else None,
                     [(r.rsplit(':', 1)[0], float(r.rsplit(':', 1)[1])) for r in rules.split(',') if r])
    for line in open(os.path.join(work, 'folds.tsv')):
        fk, label, f, _ = line.rstrip('\n').split('\t')
        if int(fk) != k:
            continue
        g, s = gannet.get(f), sa.get(f)
        if g is None or s is None:
            print(f'missing a score for {f} (gannet {g is not None}, spamassassin {s is not None})')
            continue
        ghits = sorted(((h['name'], h['score']) for h in g['hits']), key=lambda h: -h[1])
        rows.append(dict(fold=k, label=label, file=f, g=g['score'], s=s[1], s_spam=s[0],
                         gp=(g.get('bayes') or {}).get('probability'), sp=s[2],
                         gh=ghits, sh=sorted(s[3], key=lambda h: -h[1])))

def bayes_rules(hits):
    return '+'.join(n for n, _ in hits if n.startswith('BAYES_')) or '-'
def fmt(hits, n=6):
    return ' '.join(f'{a}={b:g}' for a, b in hits[:n])
def prob(p):
    return '-' if p is None else f'{p:.4f}'

with open(os.path.join(work, 'scores.tsv'), 'w') as out:
    out.write('fold\tlabel\tfile\tgannet_score\tsa_score\tgannet_bayes_hit\tsa_bayes_hit\t'
              'gannet_bayes_prob\tsa_bayes_prob\tsa_spam\tgannet_hits\tsa_hits\n')
    for r in rows:
        out.write(f"{r['fold']}\t{r['label']}\t{r['file']}\t{r['g']:.3f}\t{r['s']:.1f}\t"
                  f"{bayes_rules(r['gh'])}\t{bayes_rules(r['sh'])}\t{prob(r['gp'])}\t{prob(r['sp'])}\t"
                  f"{int(r['s_spam'])}\t{','.join(f'{a}:{b:g}' for a, b in r['gh'])}\t"
                  f"{','.join(f'{a}:{b:g}' for a, b in r['sh'])}\n")

def g_at(r, t): return r['g'] >= t
def s_at(r, t): return r['s_spam'] if t == 5 else r['s'] >= t
def pct(n, d): return f'{100 * n / d:5.1f}% ({n}/{d})' if d else '-'
def line(name, rs):
    spam = [r for r in rs if r['label'] == 'spam']
    ham = [r for r in rs if r['label'] == 'ham']
    cells = [name, f'{len(spam)}', f'{len(ham)}']
    for t in (5, 10):
        for side in (g_at, s_at):
            cells.append(pct(sum(side(r, t) for r in spam), len(spam)))
        for side in (g_at, s_at):
            cells.append(pct(sum(side(r, t) for r in ham), len(ham)))
    return '| ' + ' | '.join(cells) + ' |'
print('\nSpam caught and ham flagged (score >= threshold)\n')
print('| fold | spam | ham | caught@5 Gannet | caught@5 SA | flagged@5 Gannet | flagged@5 SA '
      '| caught@10 Gannet | caught@10 SA | flagged@10 Gannet | flagged@10 SA |')
print('|---' * 11 + '|')
for k in range(folds):
    print(line(str(k), [r for r in rows if r['fold'] == k]))
print(line('**pooled**', rows))

def auc(key):
    pos = [r[key] for r in rows if r['label'] == 'spam']
    neg = [r[key] for r in rows if r['label'] == 'ham']
    if not pos or not neg: return float('nan')
    allv = sorted([(v, 1) for v in pos] + [(v, 0) for v in neg])
    # Mann-Whitney U with average ranks for ties
    i, rank_sum = 0, 0.0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]: j += 1
        avg = (i + j + 1) / 2
        rank_sum += avg * sum(1 for x in allv[i:j] if x[1])
        i = j
    return (rank_sum - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg))
print(f'\nROC AUC of the scores, pooled: Gannet {auc("g"):.4f}, SpamAssassin {auc("s"):.4f}'
      ' (SpamAssassin scores at one decimal)')

print('\nBayes: the BAYES_xx rule each side hit (BAYES_999 not counted separately), by label\n')
buckets = ['BAYES_00', 'BAYES_05', 'BAYES_20', 'BAYES_40', 'BAYES_50', 'BAYES_60', 'BAYES_80', 'BAYES_95', 'BAYES_99', 'none']
def bucket(hits):
    b = [n for n, _ in hits if n.startswith('BAYES_') and n != 'BAYES_999']
    return b[0] if b else 'none'
print('| side | label | ' + ' | '.join(buckets) + ' |')
print('|---' * (len(buckets) + 2) + '|')
for side, key in (('Gannet', 'gh'), ('SA', 'sh')):
    for label in ('spam', 'ham'):
        rs = [r for r in rows if r['label'] == label]
        print(f'| {side} | {label} | ' + ' | '.join(str(sum(bucket(r[key]) == b for r in rs)) for b in buckets) + ' |')
same = sum(bucket(r['gh']) == bucket(r['sh']) for r in rows)
print(f'\nsame BAYES_xx bucket on both sides: {pct(same, len(rows))}')
both = [r for r in rows if r['gp'] is not None and r['sp'] is not None]
if both:
    diff = sorted(abs(r['gp'] - r['sp']) for r in both)
    print(f'|Gannet probability - SA probability|: median {diff[len(diff) // 2]:.4f}, '
          f'over 0.5 on {sum(x > 0.5 for x in diff)} of {len(diff)}')

print('\nTimes per fold (wall clock, seconds; learn = training on the other folds, scan = this fold)\n')
print('| fold | Gannet learned | SA nspam/nham | SA ntokens | Gannet learn | Gannet scan | SA learn | SA scan | load |')
print('|---' * 9 + '|')
for l in list(open(os.path.join(work, 'times.tsv')))[1:]:
    c = l.rstrip('\n').split('\t')
    print(f'| {c[0]} | {c[1]} | {c[2]}/{c[3]} | {c[4]} | {c[5]} | {c[6]} | {c[7]} | {c[8]} | {c[9]} |')

def show(title, rs):
    print(f'\n{title}: {len(rs)}')
    for r in sorted(rs, key=lambda r: -abs(r['g'] - r['s'])):
        print(f"  fold {r['fold']} {r['file']}\n    gannet {r['g']:.2f} (bayes {prob(r['gp'])}): {fmt(r['gh'])}\n"
              f"    SA     {r['s']:.1f} (bayes {prob(r['sp'])}): {fmt(r['sh'])}")
ham = [r for r in rows if r['label'] == 'ham']
spam = [r for r in rows if r['label'] == 'spam']
show('Ham Gannet flags at 5', [r for r in ham if g_at(r, 5)])
show('Ham SpamAssassin flags at 5', [r for r in ham if s_at(r, 5)])
show('Spam SpamAssassin catches at 5 and Gannet misses', [r for r in spam if s_at(r, 5) and not g_at(r, 5)])
show('Spam Gannet catches at 5 and SpamAssassin misses', [r for r in spam if g_at(r, 5) and not s_at(r, 5)])

# Rule differences over all messages: hits on one side only, weighted by their points.
def diff_table(title, a, b):
    acc = {}
    for r in rows:
        names_b = {n for n, _ in r[b]}
        for n, p in r[a]:
            if n not in names_b and p != 0:
                c = acc.setdefault(n, [0, 0, 0.0])
                c[0 if r['label'] == 'ham' else 1] += 1
                c[2] += p
    top = sorted(acc.items(), key=lambda x: -abs(x[1][2]))[:15]
    print(f'\n{title} (rule: hits on ham, hits on spam, points summed)')
    for n, (h, s, p) in top:
        print(f'  {n}: {h} ham, {s} spam, {p:+.1f}')
diff_table('Rules hit by Gannet only', 'gh', 'sh')
diff_table('Rules hit by SpamAssassin only', 'sh', 'gh')

# Gannet's hits on rules its own `rules check --list` says it cannot run (an eval it
# lacks, or a meta naming one), where SpamAssassin does not fire the rule.
status = {}
if os.path.exists(os.path.join(work, 'rules.tsv')):
    for l in open(os.path.join(work, 'rules.tsv')):
        c = l.rstrip('\n').split('\t')
        if len(c) >= 4:
            status[c[0]] = c[3]
acc = {}
for r in rows:
    sa_names = {n for n, _ in r['sh']}
    for n, p in r['gh']:
        if status.get(n) == 'cannot-run' and n not in sa_names:
            c = acc.setdefault(n, [0, 0, 0.0])
            c[0 if r['label'] == 'ham' else 1] += 1
            c[2] += p
print('\nGannet hits on rules `gannet rules check --list` marks cannot-run, SpamAssassin not firing them'
      ' (rule: hits on ham, hits on spam, points summed)')
for n, (h, s, p) in sorted(acc.items(), key=lambda x: -abs(x[1][2]))[:15]:
    print(f'  {n}: {h} ham, {s} spam, {p:+.1f}')

# What if: each side's score with the other side's BAYES_* points, or without some rules.
own = ('BIZ_TLD', 'HTML_20_30')
def pts(hits, pick): return sum(p for n, p in hits if pick(n))
is_bayes = lambda n: n.startswith('BAYES_')
is_own = lambda n: n.startswith('GANNET_') or n in own
variants = [
    ('Gannet', lambda r: r['g']),
    ('Gannet with SpamAssassin\'s BAYES_* points', lambda r: r['g'] - pts(r['gh'], is_bayes) + pts(r['sh'], is_bayes)),
    ('Gannet without its built-in rules (GANNET_*, BIZ_TLD, HTML_20_30)', lambda r: r['g'] - pts(r['gh'], is_own)),
    ('Gannet without the hits on cannot-run rules that SpamAssassin does not fire',
     lambda r: r['g'] - pts(r['gh'], lambda n: status.get(n) == 'cannot-run' and n not in {m for m, _ in r['sh']})),
    ('SpamAssassin (printed score)', lambda r: r['s']),
    ('SpamAssassin with Gannet\'s BAYES_* points', lambda r: r['s'] - pts(r['sh'], is_bayes) + pts(r['gh'], is_bayes)),
]
print('\nWhat if (pooled; scores recomputed from the hits, SpamAssassin\'s at one decimal)\n')
print('| variant | caught@5 | flagged@5 | caught@10 | flagged@10 |')
print('|---|---|---|---|---|')
for name, fn in variants:
    cells = []
    for t in (5, 10):
        cells.append(str(sum(fn(r) >= t - 1e-9 for r in spam)))
        cells.append(str(sum(fn(r) >= t - 1e-9 for r in ham)))
    print(f'| {name} | ' + ' | '.join(cells) + ' |')
print(f'\nscores: {os.path.join(work, "scores.tsv")}')
print(f'report: {os.path.join(work, "report.txt")}')
PY
