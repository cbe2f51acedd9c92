#!/usr/bin/env bash
# Agreement with SpamAssassin itself: the rules SpamAssassin 4 (spamd, -L: no network tests,
# no Bayes training) hits on a sample of tests/corpus, against the rules Gannet hits
# with the same stock rules (rules_dirs = /usr/share/spamassassin), restricted to the rules
# Gannet can run (`gannet rules check --list`: not an eval it lacks). Prints the share of
# SpamAssassin's hits that Gannet also fires, and of Gannet's that SpamAssassin also fires,
# and the rules that disagree most.
#
# usage: bench/spam-agreement.sh [N=300]
# Needs a release build, spamassassin, spamd and spamc (installed if missing).
set -u
cd "$(dirname "$0")/.."
N=${1:-300}
PEERS=$(pwd)/bench/peers
CORPUS=$(scripts/unpack-corpus.sh) || exit 1
WORK=$(mktemp -d /tmp/gannet-agreement.XXXXXX)
chmod 755 "$WORK"
export PEER_WORK=$WORK/peer
for p in spamassassin spamd spamc; do
    dpkg -s "$p" >/dev/null 2>&1 || { apt-get update -q >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$p" >/dev/null; }
done
printf '[spam]\nrules_dirs = ["/usr/share/spamassassin"]\n' > "$WORK/gannet.toml"
G="target/release/gannet --config $WORK/gannet.toml --data $WORK/data"
$G rules check --list > "$WORK/rules.tsv"
"$PEERS/setup/spamassassin.sh" start >/dev/null 2>&1 || { echo "spamd did not start" >&2; exit 1; }
python3 - "$CORPUS" "$N" "$WORK" <<'PY'
import json, os, random, socket, subprocess, sys
corpus, n, work = sys.argv[1], int(sys.argv[2]), sys.argv[3]
files = sorted(os.path.join(d, f) for d, _, fs in os.walk(corpus) for f in fs)
random.Random(42).shuffle(files)
sample = sorted(files[:n])
# Gannet's own built-in rules have no SpamAssassin counterpart: compare stock rules only.
own = {'HTML_20_30', 'BIZ_TLD'}
table = [l.rstrip('\n').split('\t') for l in open(os.path.join(work, 'rules.tsv'))]
runs = {r[0] for r in table if r[3] == 'runs' and not r[0].startswith('GANNET_') and r[0] not in own}
score_of = {r[0]: float(r[2]) for r in table}

def sa_symbols(msg):
    s = socket.create_connection(('127.0.0.1', 783), timeout=120)
    s.sendall(b'SYMBOLS SPAMC/1.5\r\nContent-length: %d\r\n\r\n' % len(msg) + msg)
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk: break
        data += chunk
    body = data.split(b'\r\n\r\n', 1)[1].decode().strip()
    return {x for x in body.split(',') if x}

out = subprocess.run(sys.argv[0:0] + ['target/release/gannet', '--config', os.path.join(work, 'gannet.toml'), '--data', os.path.join(work, 'data'), 'spam', 'scan', '--json'] + sample, capture_output=True, check=True).stdout.decode()
ours = {json.loads(l)['file']: {h['name'] for h in json.loads(l)['hits']} for l in out.splitlines()}
both = only_sa = only_g = 0
miss, extra = {}, {}
cannot = {}
for f in sample:
    sa_all = sa_symbols(open(f, 'rb').read())
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
PY
"$PEERS/setup/spamassassin.sh" stop >/dev/null 2>&1
rm -rf "$WORK"
