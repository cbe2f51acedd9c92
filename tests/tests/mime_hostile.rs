//! Hostile and odd MIME end to end: messages nested tens of thousands of levels deep sent
//! on the MX port (Python's smtplib) and then fetched over IMAP (imaplib), a Received
//! header with an empty `from` clause on the MX port, and `gannet spam scan` over a
//! directory holding such a message.

use gannet_tests::{python, RawSmtp, Server};

/// `message/rfc822` nested `levels` deep (32 bytes a level).
fn deep_rfc822(levels: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: deep rfc822\r\nMIME-Version: 1.0\r\n".to_vec();
    for _ in 0..levels {
        m.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
    }
    m.extend_from_slice(b"Subject: bottom\r\n\r\nhello from the bottom\r\n");
    m
}

/// `multipart/mixed` nested `levels` deep, a text part at the bottom.
fn deep_multipart(levels: usize) -> Vec<u8> {
    let mut m = b"From: a@example.org\r\nTo: alice@example.test\r\nSubject: deep multipart\r\nMIME-Version: 1.0\r\n".to_vec();
    for i in 0..levels {
        m.extend_from_slice(
            format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                .as_bytes(),
        );
    }
    m.extend_from_slice(b"Content-Type: text/plain\r\n\r\nhello from the bottom\r\n");
    for i in (0..levels).rev() {
        m.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
    }
    m
}

/// Real mail (2001) whose Received header has nothing between `from` and `by`.
const EMPTY_FROM: &str = "Received: from by PPPa165-nas1rack6059.dialinx.net with ESMTP; Sat, 04 Aug 2001 19:10:21 -0700\r\nFrom: Ann <ann@example.org>\r\nTo: alice@example.test\r\nDate: Sat, 04 Aug 2001 19:10:21 -0700\r\nSubject: empty from clause\r\n\r\nHello there.\r\n";

const GOOD: &str = "From: Bob <bob@example.org>\r\nTo: alice@example.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: fine\r\n\r\nA plain note.\r\n";

fn server() -> Server {
    let s = Server::started();
    s.with_example_accounts();
    s
}

#[test]
fn deep_mime_is_accepted_and_fetched_over_imap() {
    let server = server();
    let dir = server.dir.path();
    let files = [
        ("rfc822.eml", deep_rfc822(30_000)),
        ("multipart.eml", deep_multipart(5_000)),
    ];
    for (name, raw) in &files {
        std::fs::write(dir.join(name), raw).unwrap();
    }
    let script = r#"
import imaplib, smtplib, ssl, sys
smtp, imaps, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
def send(data):
    s = smtplib.SMTP('127.0.0.1', smtp, timeout=120)
    s.ehlo('client.example.org')
    s.mail('sender@example.org')
    s.rcpt('alice@example.test')
    code, _ = s.data(data)
    s.quit()
    return code
for path in sys.argv[4:]:
    print('data', send(open(path, 'rb').read()))
ctx = ssl.create_default_context(cafile=cafile)
m = imaplib.IMAP4_SSL('localhost', imaps, ssl_context=ctx)
m.login('alice@example.test', 'Secret123')
print('select', m.select('INBOX')[1])
for n in ('1', '2'):
    typ, data = m.fetch(n, '(BODYSTRUCTURE ENVELOPE BODY.PEEK[1])')
    text = b''.join(d if isinstance(d, bytes) else d[0] + d[1] for d in data)
    print('fetch', n, typ, text[:200])
m.logout()
# The server still serves: one more message, and a new session sees it.
print('after', send(b'Subject: after\r\n\r\nstill here\r\n'))
m = imaplib.IMAP4_SSL('localhost', imaps, ssl_context=ctx)
m.login('alice@example.test', 'Secret123')
print('select-after', m.select('INBOX')[1])
m.logout()
"#;
    let paths: Vec<String> = files
        .iter()
        .map(|(n, _)| dir.join(n).to_str().unwrap().to_string())
        .collect();
    let imaps = server.imaps.port().to_string();
    let smtp = server.smtp.port().to_string();
    let cert = server.cert().to_str().unwrap().to_string();
    let mut args = vec![smtp.as_str(), imaps.as_str(), cert.as_str()];
    args.extend(paths.iter().map(String::as_str));
    let out = python(script, &args);
    assert_eq!(out.matches("data 250").count(), 2, "{out}");
    assert!(out.contains("select [b'2']"), "{out}");
    for n in ["1", "2"] {
        let line = out
            .lines()
            .find(|l| l.starts_with(&format!("fetch {n} OK")))
            .unwrap_or_else(|| panic!("no answer to FETCH {n}: {out}"));
        assert!(line.contains("BODYSTRUCTURE ("), "{line}");
        assert!(line.contains("ENVELOPE ("), "{line}");
    }
    assert!(out.contains("after 250"), "{out}");
    assert!(out.contains("select-after [b'3']"), "{out}");
}

#[test]
fn empty_from_clause_on_the_mx_port_is_accepted_and_delivered() {
    let server = server();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO client.example.org").unwrap();
    let reply = c
        .send_message(
            "ann@example.org",
            "alice@example.test",
            EMPTY_FROM.as_bytes(),
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let list = server.mail_list("alice@example.test");
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0].2, "empty from clause");
    let stored = String::from_utf8(server.mail_get("alice@example.test", list[0].0)).unwrap();
    assert!(stored.contains("X-Spam-Status: "), "scanned: {stored}");
}

#[test]
fn spam_scan_of_a_directory_scans_past_an_odd_message() {
    let server = Server::new("");
    let mail = server.dir.path().join("mail");
    std::fs::create_dir(&mail).unwrap();
    std::fs::write(mail.join("1-empty-from.eml"), EMPTY_FROM).unwrap();
    std::fs::write(mail.join("2-good.eml"), GOOD).unwrap();
    let out = server.gannet(&["spam", "scan", "--json", mail.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].contains("1-empty-from.eml") && lines[0].contains("\"score\""));
    assert!(lines[1].contains("2-good.eml") && lines[1].contains("\"score\""));
    assert!(!text.contains("\"error\""), "{text}");
}
