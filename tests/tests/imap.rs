//! IMAP end to end: Python's imaplib (STARTTLS and IMAPS), curl imap:// and imaps://,
//! mbsync syncing a 1,000-message mailbox and a flag change back; the whole corpus
//! byte-exact by BODY[] with BODYSTRUCTURE checked against Python's email parser; two
//! sessions on one mailbox (IDLE, EXPUNGE); quotas; isolation between accounts.

use gannet_tests::{corpus, python, require_tool, RawSmtp, Server};

fn server() -> Server {
    let s = Server::started();
    s.with_example_accounts();
    s
}

fn deliver(server: &Server, to: &str, body: &[u8]) {
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO test.example").unwrap();
    let r = c.send_message("sender@example.org", to, body).unwrap();
    assert!(r.starts_with("250"), "{r}");
}

fn ports(server: &Server) -> Vec<String> {
    vec![
        server.imap.port().to_string(),
        server.imaps.port().to_string(),
        server.cert().to_str().unwrap().to_string(),
    ]
}

fn run(server: &Server, script: &str) -> String {
    let args = ports(server);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    python(script, &args)
}

const PRELUDE: &str = r#"
import imaplib, ssl, sys, time
imap, imaps, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
def tls_login(user='alice@example.test'):
    m = imaplib.IMAP4_SSL('localhost', imaps, ssl_context=ctx)
    m.login(user, 'Secret123')
    return m
"#;

#[test]
fn imaplib_starttls_and_imaps_basics() {
    let server = server();
    for i in 0..3 {
        deliver(&server, "alice@example.test", format!("From: Bob <bob@example.org>\r\nSubject: note {i}\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\n\r\n..body {i}\r\n").as_bytes());
    }
    let out = run(
        &server,
        &format!(
            "{PRELUDE}{}",
            r#"
m = imaplib.IMAP4('localhost', imap)
print('caps', m.capabilities)
try:
    m.login('alice@example.test', 'Secret123')
except imaplib.IMAP4.error as e:
    print('login-refused', e)
m.starttls(ssl_context=ctx)
print(m.login('alice@example.test', 'Secret123')[0])
typ, data = m.list()
print('list', sorted(d.decode() for d in data))
typ, data = m.select('INBOX')
print('select', typ, data)
typ, data = m.fetch('1', '(BODY.PEEK[])')
print('body', data[0][1])
typ, data = m.fetch('1:*', '(FLAGS)')
print('flags', data)
typ, data = m.uid('SEARCH', None, 'SUBJECT', '"note 2"')
print('search', data)
typ, data = m.search(None, 'SINCE', '1-Jan-2000', 'NOT', 'SEEN')
print('search2', data)
print('store', m.store('2', '+FLAGS', '(\\Flagged $Work)'))
print('move', m.uid('MOVE', '1', 'Trash'))
print('status', m.status('Trash', '(MESSAGES UIDNEXT)'))
print('bad', m._simple_command('FETCH', '1', '(NOSUCHITEM)') if False else '')
m.logout()
s = tls_login()
print('examine', s.select('INBOX', readonly=True))
print('fetch-ro', s.fetch('1', '(BODY[HEADER.FIELDS (SUBJECT)])'))
print('flags-ro', s.fetch('1', '(FLAGS)'))
print('quota', s.getquotaroot('INBOX'))
print('append', s.append('Sent', '(\\Seen)', None, b'Subject: sent\r\n\r\nx\r\n'))
print('create', s.create('Projects/2026'), s.rename('Projects/2026', 'Projects/2027'), s.delete('Projects/2027'))
s.logout()
"#
        ),
    );
    assert!(
        out.contains("'LOGINDISABLED'") && out.contains("'STARTTLS'"),
        "{out}"
    );
    assert!(out.contains("login-refused"), "{out}");
    assert!(out.contains("\nOK\n"), "{out}");
    for special in ["\\\\Drafts", "\\\\Sent", "\\\\Trash", "\\\\Junk"] {
        assert!(out.contains(special), "{special}: {out}");
    }
    assert!(out.contains("select OK [b'3']"), "{out}");
    assert!(
        !out.contains("..body 0") && out.contains(".body 0"),
        "dot-unstuffed body: {out}"
    );
    assert!(out.contains("search [b'3']"), "{out}");
    assert!(out.contains("search2 [b'1 2 3']"), "{out}");
    assert!(out.contains("\\\\Flagged $Work"), "{out}");
    assert!(
        out.contains("status ('OK', [b'\"Trash\" (MESSAGES 1 UIDNEXT 2)'])"),
        "{out}"
    );
    assert!(out.contains("examine ('OK', [b'2'])"), "{out}");
    assert!(out.contains("Subject: note 1"), "{out}");
    assert!(
        out.contains("flags-ro ('OK', [b'1 (FLAGS (\\\\Flagged $Work))'])"),
        "EXAMINE does not set \\Seen: {out}"
    );
    assert!(out.contains("[b'\"\" (STORAGE "), "{out}");
    assert!(out.contains("APPENDUID"), "{out}");
    assert!(out.contains("create ('OK', [b'CREATE completed']) ('OK', [b'RENAME completed']) ('OK', [b'DELETE completed'])"), "{out}");
}

#[test]
fn curl_imap_and_imaps() {
    require_tool("curl");
    let server = server();
    let body = b"Subject: for curl\r\n\r\nhello imap\r\n";
    deliver(&server, "alice@example.test", body);
    for (scheme, port) in [("imap", server.imap), ("imaps", server.imaps)] {
        let out = server
            .curl_tls(scheme, port, "INBOX;UID=1")
            .args(["--user", "alice@example.test:Secret123"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            out.stdout,
            server.mail_get("alice@example.test", 1),
            "{scheme}"
        );
    }
}

#[test]
fn two_sessions_see_each_other_idle_and_expunge() {
    let server = server();
    deliver(
        &server,
        "alice@example.test",
        b"Subject: first\r\n\r\nx\r\n",
    );
    let smtp = server.smtp.port().to_string();
    let args = ports(&server);
    let out = python(
        &format!(
            "{PRELUDE}{}",
            r#"
import smtplib, socket
smtp = int(sys.argv[4])
a = tls_login(); b = tls_login()
a.select('INBOX'); b.select('INBOX')
# A idles; a delivery must be reported within a second.
tag = a._new_tag().decode()
a.send(('%s IDLE\r\n' % tag).encode())
print('idle', a.readline().decode().strip())
t0 = time.time()
with smtplib.SMTP('127.0.0.1', smtp) as s:
    s.sendmail('x@example.org', ['alice@example.test'], 'Subject: second\r\n\r\ny\r\n')
line = a.readline().decode().strip()
print('pushed', line, 'within', time.time() - t0 < 1.5)
a.send(b'DONE\r\n')
# An IMAP4rev1 session: the count of \\Recent messages follows EXISTS (A selected
# first, so both messages are recent in A).
while True:
    line = a.readline().decode().strip()
    print('done', line)
    if line.startswith(tag):
        break
# B deletes the first message; A learns it on NOOP.
b.store('1', '+FLAGS', '(\\Deleted)'); b.expunge()
typ, data = a.noop()
print('noop', a.untagged_responses.get('EXPUNGE'))
# B flags (after catching up with the delivery); A sees the new flags.
b.noop()
b.store('1', '+FLAGS', '(\\Flagged)')
a.noop()
print('fetch', a.untagged_responses.get('FETCH'))
"#
        ),
        &[&args[0], &args[1], &args[2], &smtp],
    );
    assert!(out.contains("idle + idling"), "{out}");
    assert!(out.contains("pushed * 2 EXISTS within True"), "{out}");
    assert!(out.contains("done * 2 RECENT"), "{out}");
    assert!(
        out.contains("done ") && out.contains("OK IDLE terminated"),
        "{out}"
    );
    assert!(out.contains("noop [b'1']"), "{out}");
    assert!(out.contains("\\\\Flagged"), "{out}");
}

#[test]
fn accounts_are_isolated_and_quotas_hold() {
    let server = server();
    deliver(
        &server,
        "alice@example.test",
        b"Subject: private\r\n\r\nfor alice only\r\n",
    );
    server.admin(&["account", "set", "carol@example.test", "--quota", "1kB"]);
    let out = run(
        &server,
        &format!(
            "{PRELUDE}{}",
            r#"
c = tls_login('carol@example.test')
print('carol', c.select('INBOX'))
print('search', c.search(None, 'TEXT', 'alice'))
print('uid', c.uid('FETCH', '1', '(BODY[])'))
print('append-ok', c.append('INBOX', None, None, b'Subject: small\r\n\r\nx\r\n')[0])
try:
    print('append-big', c.append('INBOX', None, None, b'Subject: big\r\n\r\n' + b'y' * 2000 + b'\r\n'))
except imaplib.IMAP4.error as e:
    print('append-big-error', e)
print('select-other', c.select('"alice@example.test/INBOX"'))
print('bad', c._simple_command('FROBNICATE') if hasattr(c, 'x') else '')
raw = c.socket()
c.send(b'X1 FETCH 1 (NOSUCHITEM)\r\n'); print('badline', c.readline())
c.send(b'X2 APPEND INBOX {999999999}\r\n'); print('toobig', c.readline())
c.send(b'X3 NOOP\r\n'); print('after', c.readline())
"#
        ),
    );
    assert!(out.contains("carol ('OK', [b'0'])"), "{out}");
    assert!(out.contains("search ('OK', [b''])"), "{out}");
    assert!(out.contains("uid ('OK', [None])"), "{out}");
    assert!(out.contains("append-ok OK"), "{out}");
    assert!(out.contains("[OVERQUOTA]"), "{out}");
    assert!(out.contains("select-other ('NO'"), "{out}");
    assert!(out.contains("badline b'X1 BAD"), "{out}");
    assert!(
        out.contains("toobig b'X2 NO [TOOBIG]"),
        "literal refused before it is read: {out}"
    );
    assert!(out.contains("after b'X3 OK"), "{out}");
}

#[test]
fn the_whole_corpus_by_body_and_bodystructure() {
    let server = server();
    let corpus = corpus();
    let dir = server.dir.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &corpus {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    let args = ports(&server);
    let smtp = server.smtp.port().to_string();
    let out = python(
        &format!(
            "{PRELUDE}{}",
            r#"
import email, email.policy, os, re, smtplib
smtp, d = int(sys.argv[4]), sys.argv[5]
names = sorted(os.listdir(d))
with smtplib.SMTP('127.0.0.1', smtp, timeout=60) as s:
    for n in names:
        s.sendmail('corpus@example.org', ['carol@example.test'], open(os.path.join(d, n), 'rb').read())

def parse_sexp(data):
    # IMAP s-expressions: lists, quoted strings, literals, atoms (NIL, numbers).
    pos = 0
    def value():
        nonlocal pos
        while data[pos:pos+1] == b' ': pos += 1
        c = data[pos:pos+1]
        if c == b'(':
            pos += 1; items = []
            while True:
                while data[pos:pos+1] == b' ': pos += 1
                if data[pos:pos+1] == b')':
                    pos += 1; return items
                items.append(value())
        if c == b'"':
            pos += 1; out = bytearray()
            while data[pos:pos+1] != b'"':
                if data[pos:pos+1] == b'\\': pos += 1
                out += data[pos:pos+1]; pos += 1
            pos += 1; return bytes(out)
        if c == b'{':
            end = data.index(b'}', pos); n = int(data[pos+1:end]); start = end + 3
            pos = start + n; return data[start:start+n]
        m = re.compile(rb'[^ ()]+').match(data, pos)
        pos = m.end(); return None if m.group() == b'NIL' else m.group()
    return value()

def imap_types(bs):
    # Depth-first content types, containers included, like email's walk().
    if isinstance(bs[0], list):
        subs = []
        for x in bs:
            if not isinstance(x, list): break
            subs.append(x)
        out = ['multipart/' + bs[len(subs)].decode().lower()]
        for s in subs: out += imap_types(s)
        return out
    t = (bs[0].decode() + '/' + bs[1].decode()).lower()
    if t == 'message/rfc822' and len(bs) > 8 and isinstance(bs[8], list):
        return [t] + imap_types(bs[8])
    return [t]

c = tls_login('carol@example.test')
typ, data = c.select('INBOX')
assert int(data[0]) == len(names), data
bad_body = bad_structure = 0
for i, n in enumerate(names, 1):
    sent = open(os.path.join(d, n), 'rb').read()
    typ, data = c.uid('FETCH', str(i), '(BODY.PEEK[] BODYSTRUCTURE)')
    raw = b''
    for part in data:
        raw += (part[0] + b'\r\n' + part[1]) if isinstance(part, tuple) else part
    m = re.search(rb'BODY\[\] \{(\d+)\}\r\n', raw)
    size = int(m.group(1)); body = raw[m.end():m.end() + size]
    if not body.endswith(sent):
        bad_body += 1; print('body differs', n)
    bs = parse_sexp(raw[raw.index(b'BODYSTRUCTURE ') + 14:])
    ours = imap_types(bs)
    # Python's email parses the blocks of a message/delivery-status body as sub-parts;
    # IMAP (RFC 3464) treats message/delivery-status as one leaf part. Compare on that basis.
    theirs = []
    def walk(p):
        theirs.append(p.get_content_type())
        if p.get_content_type() == 'message/delivery-status':
            return
        if p.is_multipart():
            for sub in p.get_payload():
                walk(sub)
    walk(email.message_from_bytes(sent, policy=email.policy.compat32))
    if ours != theirs:
        bad_structure += 1
        if bad_structure <= 15: print('structure differs', n, ours, theirs)
print('checked', len(names), 'bad_body', bad_body, 'bad_structure', bad_structure)
"#
        ),
        &[&args[0], &args[1], &args[2], &smtp, dir.to_str().unwrap()],
    );
    assert!(
        out.contains("checked 3125 bad_body 0 bad_structure 0"),
        "{out}"
    );
}

#[test]
fn mbsync_syncs_a_thousand_messages_and_a_flag_back() {
    require_tool("mbsync");
    let server = server();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO bulk.example").unwrap();
    for i in 0..1000 {
        let r = c
            .send_message(
                "bulk@example.org",
                "alice@example.test",
                format!(
                    "Subject: bulk {i}\r\nMessage-ID: <{i}@bulk>\r\n\r\nmessage number {i}\r\n"
                )
                .as_bytes(),
            )
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    let dir = server.dir.path();
    let maildir = dir.join("Mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = server.mbsync_config(&maildir, "INBOX", "Create Near\nExpunge None\n");
    let mbsync = || server.mbsync(&rc);
    mbsync();
    let cur: Vec<_> = ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(maildir.join("INBOX").join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cur.len(), 1000);
    // Flag one message locally (Maildir "F" flag) and sync the change back.
    let file = cur
        .iter()
        .find(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .contains("Subject: bulk 7\n")
        })
        .unwrap();
    let name = file.file_name().unwrap().to_string_lossy().into_owned();
    let flagged = if name.contains(":2,") {
        format!("{name}F")
    } else {
        format!("{name}:2,F")
    };
    std::fs::rename(file, maildir.join("INBOX/cur").join(flagged)).unwrap();
    mbsync();
    let out = run(
        &server,
        &format!(
            "{PRELUDE}{}",
            r#"
m = tls_login()
m.select('INBOX')
print('flagged', m.search(None, 'FLAGGED'))
"#
        ),
    );
    assert!(out.contains("flagged ('OK', [b'8'])"), "{out}");
}

#[test]
fn binary_fetch_decodes_the_transfer_encoding() {
    let server = server();
    deliver(
        &server,
        "alice@example.test",
        b"Subject: attachment\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECA/9oZWxsbw==\r\n--b--\r\n",
    );
    let out = run(
        &server,
        &format!(
            "{PRELUDE}{}",
            r#"
m = tls_login()
m.select('INBOX')
typ, data = m.fetch('1', '(BINARY.PEEK[2] BODY.PEEK[2])')
print('binary', data)
"#
        ),
    );
    assert!(
        out.contains("BINARY[2] ~{10}"),
        "literal8 for content with NUL: {out}"
    );
    assert!(out.contains("\\x00\\x01\\x02\\x03\\xffhello"), "{out}");
    assert!(out.contains("BODY[2] {16}"), "{out}");
}

/// CONDSTORE and QRESYNC (RFC 7162) as a resynchronising client uses them, over IMAPS with
/// imaplib sending the raw commands: a client remembers UIDVALIDITY and HIGHESTMODSEQ,
/// goes away while another client flags, expunges and new mail arrives, and comes back
/// with `SELECT INBOX (QRESYNC (...))`: it is told exactly what vanished and what changed;
/// a conditional STORE on a message changed meanwhile is refused with MODIFIED.
#[test]
fn condstore_and_qresync_resynchronise_a_returning_client() {
    let server = server();
    for i in 0..4 {
        let body = format!("Subject: m{i}\r\n\r\nbody {i}\r\n");
        deliver(&server, "alice@example.test", body.as_bytes());
    }
    let smtp = server.smtp.port().to_string();
    let args = ports(&server);
    let out = python(
        &format!(
            "{PRELUDE}{}",
            r#"
import re, smtplib
smtp = int(sys.argv[4])
def raw(m, line):
    # One command; its untagged lines and tagged answer, as sent.
    tag = m._new_tag().decode()
    m.send(('%s %s\r\n' % (tag, line)).encode())
    lines = []
    while True:
        l = m.readline().decode().rstrip('\r\n')
        lines.append(l)
        if l.startswith(tag + ' '):
            return lines
a = tls_login()
print('caps', 'CONDSTORE' in a.capabilities, 'QRESYNC' in a.capabilities)
print('enable', raw(a, 'ENABLE QRESYNC'))
sel = raw(a, 'SELECT INBOX')
validity = re.search(r'UIDVALIDITY (\d+)', ' '.join(sel)).group(1)
highest = int(re.search(r'HIGHESTMODSEQ (\d+)', ' '.join(sel)).group(1))
print('known', validity, highest)
a.logout()
# Another client: flags UID 2, expunges UID 1; new mail comes.
b = tls_login()
b.select('INBOX')
b.uid('STORE', '2', '+FLAGS', '(\\Flagged)')
b.uid('STORE', '1', '+FLAGS', '(\\Deleted)')
b.expunge()
with smtplib.SMTP('127.0.0.1', smtp) as s:
    s.sendmail('x@example.org', ['alice@example.test'], 'Subject: m4\r\n\r\nnew\r\n')
b.logout()
# The first client comes back.
c = tls_login()
raw(c, 'ENABLE QRESYNC')
for l in raw(c, 'SELECT INBOX (QRESYNC (%s %d 1:4))' % (validity, highest)):
    if 'VANISHED' in l or 'FETCH' in l or 'HIGHESTMODSEQ' in l:
        print('resync', l)
# Changed since: UID 2 (flagged) and UID 5 (new).
for l in raw(c, 'UID FETCH 1:* (FLAGS) (CHANGEDSINCE %d VANISHED)' % highest):
    print('changedsince', l)
m2 = int(re.search(r'UID 2 .*MODSEQ \((\d+)\)', ' '.join(raw(c, 'UID FETCH 2 (MODSEQ)'))).group(1))
print('conditional', raw(c, 'UID STORE 2,3 (UNCHANGEDSINCE %d) +FLAGS (\\Seen)' % (m2 - 1))[-1])
raw(c, 'UID STORE 3 +FLAGS.SILENT (\\Deleted)')
print('expunge', raw(c, 'UID EXPUNGE 3'))
c.logout()
"#
        ),
        &[&args[0], &args[1], &args[2], &smtp],
    );
    assert!(out.contains("caps True True"), "{out}");
    assert!(out.contains("enable ['* ENABLED QRESYNC'"), "{out}");
    // UID 1 vanished; UID 2 changed (flagged); UID 5 is new; 3 and 4 are as they were.
    assert!(out.contains("resync * VANISHED (EARLIER) 1\n"), "{out}");
    assert!(
        out.contains("resync * 1 FETCH (UID 2 FLAGS (\\Flagged) MODSEQ ("),
        "{out}"
    );
    assert!(!out.contains("resync * 2 FETCH (UID 3"), "{out}");
    // UID 5 is beyond the UIDs the client said it knew: EXISTS tells of it, not FETCH.
    assert!(!out.contains("resync * 4 FETCH"), "{out}");
    assert!(
        out.contains("changedsince * VANISHED (EARLIER) 1\n"),
        "{out}"
    );
    assert!(out.contains("changedsince * 4 FETCH (UID 5 "), "{out}");
    assert!(
        out.contains("OK [MODIFIED 2] Conditional STORE failed"),
        "{out}"
    );
    assert!(out.contains("expunge ['* VANISHED 3'"), "{out}");
}

/// SORT and THREAD (RFC 5256) through imaplib's own `sort` and `thread` calls, as a
/// webmail uses them.
#[test]
fn sort_and_thread_with_imaplib() {
    let server = server();
    let messages = [
        "Message-ID: <a@x>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nFrom: zed@example.org\r\nSubject: plan\r\n\r\nx\r\n",
        "Message-ID: <b@x>\r\nReferences: <a@x>\r\nDate: Mon, 2 Mar 2026 12:00:00 +0000\r\nFrom: amy@example.org\r\nSubject: Re: plan\r\n\r\nxx\r\n",
        "Message-ID: <c@x>\r\nDate: Sun, 1 Mar 2026 09:00:00 +0000\r\nFrom: bob@example.org\r\nSubject: lunch\r\n\r\nxxx\r\n",
    ];
    for m in messages {
        deliver(&server, "alice@example.test", m.as_bytes());
    }
    let out = run(
        &server,
        &format!(
            "{PRELUDE}{}",
            r#"
m = tls_login()
m.select('INBOX')
print('caps', [c for c in m.capabilities if c.startswith('SORT') or c.startswith('THREAD')])
print('date', m.sort('(DATE)', 'UTF-8', 'ALL')[1])
print('from', m.uid('SORT', '(REVERSE FROM)', 'UTF-8', 'ALL')[1])
print('thread', m.thread('REFERENCES', 'UTF-8', 'ALL')[1])
print('subject', m.thread('ORDEREDSUBJECT', 'UTF-8', 'ALL')[1])
"#
        ),
    );
    assert!(
        out.contains("caps ['SORT', 'THREAD=ORDEREDSUBJECT', 'THREAD=REFERENCES']"),
        "{out}"
    );
    assert!(out.contains("date [b'3 1 2']"), "{out}");
    assert!(out.contains("from [b'1 3 2']"), "{out}");
    assert!(out.contains("thread [b'(3)(1 2)']"), "{out}");
    assert!(out.contains("subject [b'(3)(1 2)']"), "{out}");
}
