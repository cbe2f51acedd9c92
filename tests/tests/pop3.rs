//! POP3 end to end: Python's poplib (STLS and POP3S), curl pop3:// and pop3s://, fetchmail
//! over POP3S; the real corpus delivered over SMTP comes back byte-exact by RETR; the
//! maildrop lock; deletions at QUIT; storage quotas.

use std::path::PathBuf;
use std::process::Command;

use gannet_tests::{corpus, python, require_tool, RawSmtp, Server};

fn server() -> Server {
    let mut s = Server::new("[auth]\nplaintext_on_loopback = false\n");
    s.start();
    s.with_example_accounts();
    s
}

/// Delivers a message to `to` over SMTP from the trusted network.
fn deliver(server: &Server, to: &str, body: &[u8]) -> String {
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO test.example").unwrap();
    c.send_message("sender@example.org", to, body).unwrap()
}

const POPLIB: &str = r#"
import poplib, ssl, sys
pop3, pop3s, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
p = poplib.POP3('localhost', pop3, timeout=30)
caps = p.capa()
print('before-stls', sorted(caps))
try:
    p.user('alice@example.test')
except poplib.error_proto as e:
    print('user-refused', e)
p.stls(context=ctx)
p.user('alice@example.test'); p.pass_('Secret123')
count, size = p.stat()
print('stat', count, size)
print('uidl', [u.decode() for u in p.uidl()[1]])
resp, lines, octets = p.retr(1)
print('retr', resp.decode(), octets, b'\r\n'.join(lines).decode())
p.dele(1)
p.quit()
s = poplib.POP3_SSL('localhost', pop3s, context=ctx, timeout=30)
s.user('alice@example.test'); s.pass_('Secret123')
print('after', s.stat())
# A second session on the same mailbox is refused while this one holds it.
t = poplib.POP3_SSL('localhost', pop3s, context=ctx, timeout=30)
t.user('alice@example.test')
try:
    t.pass_('Secret123')
except poplib.error_proto as e:
    print('second', e)
s.quit()
t.user('alice@example.test'); t.pass_('Secret123')
print('third ok', t.stat())
t.quit()
# QUIT's answer comes after the maildrop is released: logging in again at once finds it
# free, every time.
busy = 0
for i in range(100):
    u = poplib.POP3_SSL('localhost', pop3s, context=ctx, timeout=30)
    u.user('alice@example.test')
    try:
        u.pass_('Secret123')
    except poplib.error_proto as e:
        busy += 1
    u.quit()
print('relogin busy', busy)
"#;

#[test]
fn poplib_stls_and_pop3s_retrieve_delete_and_lock() {
    let server = server();
    assert!(deliver(
        &server,
        "alice@example.test",
        b"Subject: first\r\n\r\n..dot line\r\nbody\r\n"
    )
    .starts_with("250"));
    assert!(deliver(
        &server,
        "bob@example.test",
        b"Subject: second\r\n\r\nbody 2\r\n"
    )
    .starts_with("250"));
    let out = python(
        POPLIB,
        &[
            &server.pop3.port().to_string(),
            &server.pop3s.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    assert!(out.contains("'STLS'"), "{out}");
    assert!(
        !out.lines().next().unwrap().contains("'USER'"),
        "no USER before TLS: {out}"
    );
    assert!(out.contains("user-refused b'-ERR [AUTH]"), "{out}");
    assert!(out.contains("stat 2 "), "{out}");
    assert!(out.contains("retr +OK "), "{out}");
    assert!(
        out.contains("Subject: first\r\n\r\n.dot line\r\nbody"),
        "dot unstuffed by the client: {out}"
    );
    assert!(out.contains("after (1, "), "{out}");
    assert!(
        out.contains("second b'-ERR [IN-USE] Mailbox in use by another POP3 session'"),
        "{out}"
    );
    assert!(out.contains("third ok (1, "), "{out}");
    assert!(out.contains("relogin busy 0\n"), "{out}");
    // Deleted over POP3: gone from the store (and so from IMAP) too.
    let list = server.mail_list("alice@example.test");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].2, "second");
}

#[test]
fn curl_pop3_and_pop3s() {
    require_tool("curl");
    let server = server();
    let body = b"Subject: for curl\r\n\r\nhello curl\r\n";
    deliver(&server, "alice@example.test", body);
    for (scheme, port) in [("pop3", server.pop3), ("pop3s", server.pop3s)] {
        let out = server
            .curl_tls(scheme, port, "1")
            .args(["--user", "alice@example.test:Secret123"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stored = server.mail_get("alice@example.test", 1);
        assert_eq!(
            out.stdout, stored,
            "{scheme}: RETR differs from the stored message"
        );
        assert!(stored.ends_with(body));
    }
}

#[test]
fn fetchmail_over_pop3s() {
    require_tool("fetchmail");
    let server = server();
    for i in 0..3 {
        deliver(
            &server,
            "alice@example.test",
            format!("Subject: fetch {i}\r\n\r\nmessage {i}\r\n").as_bytes(),
        );
    }
    let dir = server.dir.path();
    let out_dir = dir.join("fetched");
    std::fs::create_dir_all(&out_dir).unwrap();
    let rc = dir.join("fetchmailrc");
    std::fs::write(
        &rc,
        format!(
            "poll localhost protocol pop3 port {} user \"alice@example.test\" password \"Secret123\" ssl sslcertck sslcertfile \"{}\" mda \"/bin/sh -c 'cat > {}/msg-$$'\"\n",
            server.pop3s.port(),
            server.cert().display(),
            out_dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rc, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new("fetchmail")
        .args(["--fetchmailrc"])
        .arg(&rc)
        .args(["--nodetach", "--nosyslog", "--pidfile"])
        .arg(dir.join("fetchmail.pid"))
        .env("HOME", dir)
        .output()
        .unwrap();
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{log}");
    let fetched: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(fetched.len(), 3, "{log}");
    for f in fetched {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(text.contains("Subject: fetch "), "{text}");
    }
    // fetchmail deletes what it fetched (no --keep).
    assert!(server.mail_list("alice@example.test").is_empty());
}

#[test]
fn the_whole_corpus_comes_back_byte_exact_by_retr() {
    let server = server();
    let corpus = corpus();
    assert_eq!(corpus.len(), 3125);
    let dir = server.dir.path().join("corpus");
    std::fs::create_dir_all(&dir).unwrap();
    for (name, bytes) in &corpus {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    // Python's smtplib sends each file (dot-stuffing it) and POP3 reads each back.
    let out = python(
        r#"
import os, poplib, smtplib, ssl, sys
# Real mail has lines longer than poplib's 2048-byte default.
poplib._MAXLINE = 1 << 24
smtp, pop3s, cafile, d = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
names = sorted(os.listdir(d))
with smtplib.SMTP('127.0.0.1', smtp, timeout=60) as s:
    for n in names:
        s.sendmail('corpus@example.org', ['carol@example.test'], open(os.path.join(d, n), 'rb').read())
ctx = ssl.create_default_context(cafile=cafile)
p = poplib.POP3_SSL('localhost', pop3s, context=ctx, timeout=60)
p.user('carol@example.test'); p.pass_('Secret123')
count, _ = p.stat()
assert count == len(names), (count, len(names))
bad = 0
for i, n in enumerate(names, 1):
    sent = open(os.path.join(d, n), 'rb').read()
    _, lines, octets = p.retr(i)
    got = b'\r\n'.join(lines) + b'\r\n'
    # Behind the Return-Path and Received lines the server added, the message as sent.
    if not got.endswith(sent) or not got.startswith(b'Return-Path: <corpus@example.org>\r\n') or b'\r\nReceived: from ' not in got:
        bad += 1
        print('differs', n)
p.quit()
print('checked', len(names), 'bad', bad)
"#,
        &[
            &server.smtp.port().to_string(),
            &server.pop3s.port().to_string(),
            server.cert().to_str().unwrap(),
            dir.to_str().unwrap(),
        ],
    );
    assert!(out.contains("checked 3125 bad 0"), "{out}");
}

#[test]
fn quotas_refuse_delivery_and_deletion_frees_space() {
    let server = server();
    server.admin(&["account", "set", "carol@example.test", "--quota", "2kB"]);
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(list.contains("carol@example.test\t0\t2000\t"), "{list}");
    let big = format!("Subject: big\r\n\r\n{}\r\n", "z".repeat(1200));
    assert!(deliver(&server, "carol@example.test", big.as_bytes()).starts_with("250"));
    // Undeclared size: refused at the end of data, nothing stored.
    assert_eq!(
        deliver(&server, "carol@example.test", big.as_bytes()),
        "452 4.2.2 Mailbox full\r\n"
    );
    // Declared size: refused at RCPT.
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO x").unwrap();
    c.cmd("MAIL FROM:<a@example.org> SIZE=1300").unwrap();
    assert_eq!(
        c.cmd("RCPT TO:<carol@example.test>").unwrap(),
        "452 4.2.2 Mailbox full\r\n"
    );
    assert_eq!(server.mail_list("carol@example.test").len(), 1);
    let used = server.mail_list("carol@example.test")[0].1;
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(
        list.contains(&format!("carol@example.test\t{used}\t2000\t")),
        "{list}"
    );
    // Deleting over POP3 frees the space.
    python(
        r#"
import poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3_SSL('localhost', int(sys.argv[1]), context=ctx, timeout=30)
p.user('carol@example.test'); p.pass_('Secret123'); p.dele(1); p.quit()
"#,
        &[
            &server.pop3s.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    assert!(deliver(&server, "carol@example.test", big.as_bytes()).starts_with("250"));
    let bad = server.gannet(&["account", "set", "carol@example.test", "--quota", "lots"]);
    assert_eq!(bad.status.code(), Some(1));
}

#[test]
fn pop3_session_while_imap_deletes() {
    let server = server();
    for i in 0..3 {
        deliver(
            &server,
            "alice@example.test",
            format!("Subject: m{i}\r\n\r\nbody {i}\r\n").as_bytes(),
        );
    }
    let out = python(
        r#"
import imaplib, poplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[3])
p = poplib.POP3_SSL('localhost', int(sys.argv[1]), context=ctx, timeout=30)
p.user('alice@example.test'); p.pass_('Secret123')
print('pop-stat', p.stat()[0])
m = imaplib.IMAP4_SSL('localhost', int(sys.argv[2]), ssl_context=ctx)
m.login('alice@example.test', 'Secret123'); m.select('INBOX')
m.store('1', '+FLAGS', '(\\Deleted)'); m.expunge()
print('imap-left', m.search(None, 'ALL')[1])
# The POP3 session keeps its snapshot; deleting what IMAP already removed is harmless.
print('retr2', p.retr(2)[0])
p.dele(1); p.dele(2)
print('quit', p.quit())
m.noop()
print('imap-after', m.search(None, 'ALL')[1])
"#,
        &[
            &server.pop3s.port().to_string(),
            &server.imaps.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    assert!(out.contains("pop-stat 3"), "{out}");
    assert!(out.contains("imap-left [b'1 2']"), "{out}");
    assert!(out.contains("retr2 b'+OK"), "{out}");
    assert!(out.contains("quit b'+OK"), "{out}");
    assert!(out.contains("imap-after [b'1']"), "{out}");
    // Usage counts the one message left, once.
    let left = server.mail_list("alice@example.test");
    assert_eq!(left.len(), 1);
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(
        list.contains(&format!("alice@example.test\t{}\t", left[0].1)),
        "{list}"
    );
}

/// The server reads a maildrop ahead of a client downloading it in order; a client that
/// goes back, skips ahead, or asks for TOP in between still gets the message it named.
#[test]
fn retr_in_any_order_answers_the_message_named() {
    let server = server();
    const COUNT: usize = 40;
    for i in 1..=COUNT {
        // Sizes from a few hundred bytes to ~60 KB: batches of many lengths.
        let filler = format!("{}\r\n", "x".repeat(70)).repeat((i * 37) % 23 * 40);
        deliver(
            &server,
            "alice@example.test",
            format!("Subject: msg-{i}\r\n\r\nbody {i}\r\n{filler}end {i}\r\n").as_bytes(),
        );
    }
    let out = python(
        r#"
import poplib, ssl, sys
poplib._MAXLINE = 1 << 20
ctx = ssl.create_default_context(cafile=sys.argv[2])
p = poplib.POP3_SSL('localhost', int(sys.argv[1]), context=ctx, timeout=30)
p.user('alice@example.test'); p.pass_('Secret123')
order = list(range(1, 21)) + [5, 3, 30, 31, 32, 2, 40, 39, 21, 22, 23, 24, 1]
bad = []
for n in order:
    if n == 31:
        top = b'\r\n'.join(p.top(25, 0)[1])
        if b'Subject: msg-25\r\n' not in top or b'body 25' in top:
            bad.append(('top', 25))
    text = b'\r\n'.join(p.retr(n)[1])
    if b'Subject: msg-%d\r\n' % n not in text or not text.endswith(b'end %d' % n):
        bad.append(n)
p.quit()
print('retrieved', len(order), 'bad', bad)
"#,
        &[
            &server.pop3s.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    assert!(out.contains("retrieved 33 bad []"), "{out}");
}
