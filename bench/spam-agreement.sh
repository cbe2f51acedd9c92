#!/usr/bin/env bash
# Agreement with SpamAssassin itself: the rules SpamAssassin 4 (spamd, -L: no network tests,
# no Bayes training) hits on a sample of tests/corpus, against the rules Gannet hits
# with the same stock rules (rules_dirs = /usr/share/spamassassin), restricted to the rules
# Gannet can run (`gannet rules check --list`: not an eval it lacks). Prints the share of
# SpamAssassin's hits that Gannet also fires, and of Gannet's that SpamAssassin also fires,
# and the rules that disagree most; then the per-message totals (issue #17's target: within
# +-0.5 of SpamAssassin's for >= 98 % of the corpus; no Bayes on either side: score set 0)
# and the messages that differ most, with the rules fired on one side only.
#
# usage: bench/spam-agreement.sh [N=300]      (N=all: the whole corpus)
# GANNET_BIN: the gannet binary (default target/release/gannet). SA_CACHE=FILE keeps
# SpamAssassin's answers in FILE (JSON) and reads them from there when it exists: comparing
# builds of gannet then takes seconds, not spamd's minutes (delete it after changing
# SpamAssassin or its rules).
# Needs a release build, spamassassin, spamd and spamc (installed if missing).
set -u
cd "$(dirname "$0")/.."
N=${1:-300}
[ "$N" = all ] && N=0
PEERS=$(pwd)/bench/peers
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
WORK=$(mktemp -d /tmp/gannet-agreement.XXXXXX)
chmod 755 "$WORK"
export PEER_WORK=$WORK/peer
for p in spamassassin spamd spamc; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null; }
done
printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n' > "$WORK/gannet.toml"
G="${GANNET_BIN:-target/release/gannet} --config $WORK/gannet.toml --data $WORK/data"
$G rules check --list > "$WORK/rules.tsv"
"$PEERS/setup/spamassassin.sh" start >/dev/null 2>&1 || { echo "spamd did not start" >&2; exit 1; }
python3 - "$CORPUS" "$N" "$WORK" <<'PY'
import json, os, random, socket, subprocess, sys
corpus, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
random.Random(42).shuffle(files)
sample = sorted(files if n <= 0 else files[:n])
# Gannet's own built-in rules have no SpamAssassin counterpart: compare stock rules only.
own = {'HTML_20_30', 'BIZ_TLD'}
table = [l.rstrip('\n').split('\t') for l in open(os.path.join(work, 'rules.tsv'))]
runs = {r[0] for r in table if r[3] == 'runs' and not r[0].startswith('GANNET_') and r[0] not in own}
score_of = {r[0]: float(r[2]) for r in table}

def sa_symbols(msg):
    """SpamAssassin's rules hit and its total (the `Spam: True ; 15.3 / 5.0` header)."""
    s = socket.create_connection(('127.0.0.1', 783), timeout=120)
    s.sendall(b'SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\n\r\n' % len(msg) + msg)
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    head, body = data.split(b'\r\n\r\n', 1)
    total = None
    for line in head.decode().split('\r\n'):
        if line.startswith('Spam:'):
            total = float(line.split(';')[1].split('/')[0])
    return {x for x in body.decode().strip().split(',') if x}, total

out = subprocess.run([os.environ.get('GANNET_BIN', 'target/release/gannet'), '--config', os.path.join(work, 'gannet.toml'), '--data', os.path.join(work, 'data'), 'spam', 'scan', '--json'] + sample, capture_output=True, check=True).stdout.decode()
scanned = [json.loads(l) for l in out.splitlines()]
ours = {j['file']: {h['name'] for h in j['hits']} for j in scanned}
our_total = {j['file']: j['score'] for j in scanned}
totals = []
both = only_sa = only_g = 0
miss, extra = {}, {}
cannot = {}
def ask_sa(f):
    try:
        return sa_symbols(open(f, 'rb').read())
    except OSError as e:   # a message spamd did not answer in time: left out, and said
        print(f'spamd: {os.path.relpath(f, corpus)}: {e}', file=sys.stderr)
        return None
# spamd runs two children: two messages at a time.
from concurrent.futures import ThreadPoolExecutor
cache_file = os.environ.get('SA_CACHE')
cached = json.load(open(cache_file)) if cache_file and os.path.exists(cache_file) else {}
todo = [f for f in sample if os.path.relpath(f, corpus) not in cached]
with ThreadPoolExecutor(2) as pool:
    for f, answer in zip(todo, pool.map(ask_sa, todo)):
        if answer is not None:
            cached[os.path.relpath(f, corpus)] = [sorted(answer[0]), answer[1]]
if cache_file:
    json.dump(cached, open(cache_file, 'w'))
answers = [(set(cached[k][0]), cached[k][1]) if (k := os.path.relpath(f, corpus)) in cached else None
           for f in sample]
for f, answer in zip(sample, answers):
    if answer is None:
        continue
    sa_all, sa_total_score = answer
    if sa_total_score is not None:
        totals.append((f, our_total[f], sa_total_score, ours[f] - sa_all, sa_all - ours[f]))
    for r in sa_all - runs:
        cannot[r] = cannot.get(r, 0) + 1
    sa = {r for r in sa_all if r in runs}
    g = {r for r in ours[f] if r in runs}
    both += len(sa & g); only_sa += len(sa - g); only_g += len(g - sa)
    for r in sa - g: miss[r] = miss.get(r, 0) + 1
    for r in g - sa: extra[r] = extra.get(r, 0) + 1
sa_total, g_total = both + only_sa, both + only_g
print(f'{len(sample)} messages; rules Gannet runs: {len(runs)}')
print(f'SpamAssassin hits also fired by Gannet: {both}/{sa_total} = {100 * both / max(sa_total, 1):.1f}%')
print(f'Gannet hits also fired by SpamAssassin: {both}/{g_total} = {100 * both / max(g_total, 1):.1f}%')
print('missed most:', sorted(miss.items(), key=lambda x: -x[1])[:12])
print('extra most: ', sorted(extra.items(), key=lambda x: -x[1])[:12])
# What to implement next: SpamAssassin's hits on rules Gannet cannot run, by weight
# (hits x score; BAYES_* cannot fire here, spamd's Bayes database is empty).
weight = sorted(cannot.items(), key=lambda x: -x[1] * abs(score_of.get(x[0], 0.0)))
print('not runnable, most weight (rule, hits, score):',
      [(r, n, score_of.get(r)) for r, n in weight[:15]])
# Totals: SpamAssassin reports one decimal, so Gannet's is compared rounded the same way.
close = [t for t in totals if abs(round(t[1], 1) - t[2]) <= 0.5 + 1e-9]
print(f'\ntotals within +-0.5 of SpamAssassin: {len(close)}/{len(totals)} = '
      f'{100 * len(close) / max(len(totals), 1):.1f}%')
rules_off = {}
for f, g, sa, only_g, only_sa in totals:
    if abs(round(g, 1) - sa) > 0.5 + 1e-9:
        for r in only_g: rules_off.setdefault('+' + r, [0])[0] += 1
        for r in only_sa: rules_off.setdefault('-' + r, [0])[0] += 1
print('rules on one side in the messages off by more than 0.5 (+ Gannet only, - SA only):',
      sorted(((r, c[0]) for r, c in rules_off.items()), key=lambda x: -x[1])[:25])
for f, g, sa, only_g, only_sa in sorted(totals, key=lambda t: -abs(t[1] - t[2]))[:20]:
    print(f'  {os.path.relpath(f, corpus)}: gannet {g:.2f} SA {sa:.1f}; gannet only {sorted(only_g)}; SA only {sorted(only_sa)}')
PY
"$PEERS/setup/spamassassin.sh" stop >/dev/null 2>&1
rm -rf "$WORK"
