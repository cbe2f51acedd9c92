//! Real SMTP clients (Python smtplib, swaks, curl) against the real `gannet serve`; the mail
//! is read back with `gannet mail get` and compared byte for byte.

use std::process::Command;

use gannet_tests::{python, require_tool, strip_trace_headers, RawSmtp, Server};

/// A message with the things that trip servers up: a line starting with a dot, a line that
/// is only a dot, 8-bit text, a long line.
fn sample_message(subject: &str) -> Vec<u8> {
    let mut m = format!(
        "From: Sender <sender@example.org>\r\nTo: alice@example.test\r\nSubject: {subject}\r\nMessage-ID: <{subject}@example.org>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
    )
    .into_bytes();
    m.extend_from_slice(".leading dot\r\n.\r\n..two dots\r\nGrüße aus Köln\r\n".as_bytes());
    m.extend_from_slice(&[b'x'; 900]);
    m.extend_from_slice(b"\r\nlast line\r\n");
    m
}

fn assert_delivered(server: &Server, address: &str, uid: u32, sent: &[u8], from: &str) {
    let stored = server.mail_get(address, uid);
    let (trace, body) = strip_trace_headers(&stored);
    assert_eq!(body, sent, "body differs; trace headers were:\n{trace}");
    assert!(
        trace.starts_with(&format!("Return-Path: <{from}>\r\nX-Spam-Score: "))
            && trace.contains("\r\nReceived: from "),
        "{trace}"
    );
    assert!(
        trace.contains("by mx.example.test (Gannet) with ESMTP id "),
        "{trace}"
    );
}

const SMTPLIB_SEND: &str = r#"
import smtplib, sys
host, port, rcpt, path = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
data = open(path, 'rb').read()
with smtplib.SMTP(host, port, timeout=30) as s:
    code, _ = s.ehlo('client.example.org')
    assert code == 250
    for ext in ['pipelining', 'size', '8bitmime', 'enhancedstatuscodes', 'smtputf8', 'chunking']:
        assert s.has_extn(ext), ext
    refused = s.sendmail('sender@example.org', [rcpt], data)
    assert refused == {}, refused
print('sent')
"#;

#[test]
fn python_smtplib_message_is_stored_byte_exact() {
    let server = Server::started();
    server.with_example_accounts();
    let msg = sample_message("smtplib");
    let path = server.dir.path().join("msg.eml");
    std::fs::write(&path, &msg).unwrap();
    let port = server.smtp.port().to_string();
    python(
        SMTPLIB_SEND,
        &[
            "127.0.0.1",
            &port,
            "alice@example.test",
            path.to_str().unwrap(),
        ],
    );
    let list = server.mail_list("alice@example.test");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].2, "smtplib");
    assert_delivered(&server, "alice@example.test", 1, &msg, "sender@example.org");
    // Through the alias: the same account.
    python(
        SMTPLIB_SEND,
        &[
            "127.0.0.1",
            &port,
            "bob@example.test",
            path.to_str().unwrap(),
        ],
    );
    assert_eq!(server.mail_list("alice@example.test").len(), 2);
}

#[test]
fn python_smtplib_gets_enhanced_errors() {
    let server = Server::started();
    server.with_example_accounts();
    let port = server.smtp.port().to_string();
    let out = python(
        r#"
import smtplib, sys
# From 127.0.0.2, outside the trusted networks: relaying is refused.
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30, source_address=('127.0.0.2', 0))
s.ehlo('c.example.org')
s.mail('x@example.org')
for r in ['nobody@example.test', 'someone@elsewhere.example', 'carol@example.test']:
    print(r, *s.rcpt(r))
print(*s.vrfy('alice@example.test'))
print(*s.docmd('BOGUS'))
s.quit()
"#,
        &[&port],
    );
    assert!(
        out.contains("nobody@example.test 550 b'5.1.1 Recipient address rejected: user unknown'"),
        "{out}"
    );
    assert!(
        out.contains("someone@elsewhere.example 554 b'5.7.1 Relay access denied'"),
        "{out}"
    );
    assert!(
        out.contains("carol@example.test 250 b'2.1.5 Recipient ok'"),
        "{out}"
    );
    assert!(out.contains("252 b'2.5.0 Cannot VRFY user"), "{out}");
    assert!(out.contains("500 b'5.5.2 Command unrecognized'"), "{out}");
}

#[test]
fn swaks_delivers_and_is_refused_where_it_must_be() {
    require_tool("swaks");
    let server = Server::started();
    server.with_example_accounts();
    // swaks sends the file as it is, without dot-stuffing: keep dots out of this one.
    let msg: Vec<u8> = String::from_utf8(sample_message("swaks"))
        .unwrap()
        .replace(
            "\r\n.leading dot\r\n.\r\n..two dots\r\n",
            "\r\nno dots here\r\n",
        )
        .into_bytes();
    let path = server.dir.path().join("swaks.eml");
    // swaks ends the data with CRLF . CRLF after the file, adding a CRLF of its own.
    std::fs::write(&path, &msg[..msg.len() - 2]).unwrap();
    let swaks = |to: &str| {
        Command::new("swaks")
            .args([
                "--server",
                &server.smtp.to_string(),
                "--from",
                "sw@example.org",
                "--to",
                to,
            ])
            // From 127.0.0.2, outside the trusted networks: relaying is refused.
            .args(["--local-interface", "127.0.0.2"])
            .args(["--helo", "swaks.example.org", "--data"])
            .arg(&path)
            .output()
            .unwrap()
    };
    let ok = swaks("carol@example.test");
    let transcript = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{transcript}");
    assert!(
        transcript.contains("<-  250 2.0.0 Message accepted for delivery"),
        "{transcript}"
    );
    assert_delivered(&server, "carol@example.test", 1, &msg, "sw@example.org");

    let unknown = swaks("nobody@example.test");
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stdout).contains("<** 550 5.1.1"));
    let relay = swaks("victim@elsewhere.example");
    assert!(
        !relay.status.success(),
        "{}",
        String::from_utf8_lossy(&relay.stdout)
    );
    assert!(String::from_utf8_lossy(&relay.stdout).contains("<** 554 5.7.1 Relay access denied"));
    assert_eq!(server.mail_list("carol@example.test").len(), 1);
}

#[test]
fn curl_smtp_upload_is_stored_byte_exact() {
    require_tool("curl");
    let server = Server::started();
    server.with_example_accounts();
    let msg = sample_message("curl");
    let path = server.dir.path().join("curl.eml");
    std::fs::write(&path, &msg).unwrap();
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--max-time", "30"])
        .arg(format!("smtp://{}/client.example.org", server.smtp))
        .args([
            "--mail-from",
            "curl@example.org",
            "--mail-rcpt",
            "alice@example.test",
            "--upload-file",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_delivered(&server, "alice@example.test", 1, &msg, "curl@example.org");
}

#[test]
fn bdat_chunks_from_a_raw_client() {
    let server = Server::started();
    server.with_example_accounts();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    assert!(c
        .cmd("EHLO raw.example.org")
        .unwrap()
        .contains("250-CHUNKING"));
    let part1 = b"Subject: chunked\r\n\r\nfirst part, ";
    let part2 = b"second part\r\n.\r\n";
    c.send(
        format!(
            "MAIL FROM:<raw@example.org>\r\nRCPT TO:<alice@example.test>\r\nBDAT {}\r\n",
            part1.len()
        )
        .as_bytes(),
    )
    .unwrap();
    c.send(part1).unwrap();
    c.send(format!("BDAT {} LAST\r\n", part2.len()).as_bytes())
        .unwrap();
    c.send(part2).unwrap();
    assert!(c.reply().unwrap().starts_with("250 2.1.0"));
    assert!(c.reply().unwrap().starts_with("250 2.1.5"));
    assert_eq!(
        c.reply().unwrap(),
        format!("250 2.0.0 {} octets received\r\n", part1.len())
    );
    assert_eq!(
        c.reply().unwrap(),
        "250 2.0.0 Message accepted for delivery\r\n"
    );
    let stored = server.mail_get("alice@example.test", 1);
    let (_, body) = strip_trace_headers(&stored);
    assert_eq!(body, [&part1[..], &part2[..]].concat());
}

#[test]
fn smuggled_message_is_never_accepted() {
    let server = Server::started();
    server.with_example_accounts();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO attacker.example").unwrap();
    let attack = b"Subject: outer\r\n\r\nhello\n.\nMAIL FROM:<ceo@example.test>\r\nRCPT TO:<carol@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsend money\r\n";
    let r = c
        .send_message("attacker@example.org", "alice@example.test", attack)
        .unwrap();
    assert!(r.starts_with("554 5.6.0"), "{r}");
    // The session is still usable and nothing was stored for anyone.
    assert!(c.cmd("NOOP").unwrap().starts_with("250 2.0.0"));
    assert!(server.mail_list("alice@example.test").is_empty());
    assert!(server.mail_list("carol@example.test").is_empty());
}

#[test]
fn oversized_message_is_refused_and_session_continues() {
    let mut server = Server::new("[limits]\nmax_message_size = \"100kB\"\n");
    server.start();
    server.with_example_accounts();
    let port = server.smtp.port().to_string();
    let out = python(
        r#"
import smtplib, sys
s = smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30)
s.ehlo('c.example.org')
print('size', s.esmtp_features['size'])
big = b'Subject: big\r\n\r\n' + (b'y' * 78 + b'\r\n') * 2000
# sendmail() would declare SIZE=; send the stream undeclared, as some clients do.
s.mail('x@example.org')
s.rcpt('alice@example.test')
code, text = s.data(big)
print('refused', code, text.decode())
try:
    s.sendmail('x@example.org', ['alice@example.test'], big)
except smtplib.SMTPSenderRefused as e:
    print('declared', e.smtp_code, e.smtp_error.decode())
s.sendmail('x@example.org', ['alice@example.test'], b'Subject: small\r\n\r\nok\r\n')
print('small ok')
s.quit()
"#,
        &[&port],
    );
    assert!(out.contains("size 100000"), "{out}");
    assert!(
        out.contains("refused 552 5.3.4 Message too big for system"),
        "{out}"
    );
    assert!(out.contains("declared 552 5.3.4"), "{out}");
    assert!(out.contains("small ok"), "{out}");
    let list = server.mail_list("alice@example.test");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].2, "small");
}

#[test]
fn sigterm_stops_cleanly_and_data_survives_a_restart() {
    let mut server = Server::started();
    server.with_example_accounts();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO x.example").unwrap();
    assert!(c
        .send_message(
            "a@example.org",
            "alice@example.test",
            b"Subject: before\r\n\r\nx\r\n"
        )
        .unwrap()
        .starts_with("250"));
    // An idle session is told the server is going away.
    let status = server
        .terminate(std::time::Duration::from_secs(15))
        .expect("stopped in time");
    assert!(status.success(), "exit status {status}");
    assert_eq!(
        c.reply().unwrap(),
        "421 4.3.2 Service shutting down, try again later\r\n"
    );
    assert!(server.log().contains("stopped"));
    // Admin commands work without a server, on the same data.
    assert_eq!(server.mail_list("alice@example.test").len(), 1);
    server.start();
    let list = server.mail_list("alice@example.test");
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].2, "before");
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO x.example").unwrap();
    assert!(c
        .send_message(
            "a@example.org",
            "alice@example.test",
            b"Subject: after\r\n\r\nx\r\n"
        )
        .unwrap()
        .starts_with("250"));
    let list = server.mail_list("alice@example.test");
    assert_eq!((list[1].0, list[1].2.as_str()), (2, "after"));
}

#[test]
fn idle_clients_are_disconnected_with_421() {
    let mut server = Server::new("[limits]\nidle_timeout = \"1s\"\n");
    server.start();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    assert!(c.cmd("EHLO idle.example").unwrap().starts_with("250"));
    let started = std::time::Instant::now();
    assert_eq!(
        c.reply().unwrap(),
        "421 4.4.2 Idle timeout, closing connection\r\n"
    );
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert!(c.reply().is_err(), "the connection is closed after the 421");
}

#[test]
fn too_many_errors_close_the_connection() {
    let server = Server::started();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.send(&b"NONSENSE\r\n".repeat(30)).unwrap();
    for _ in 0..20 {
        assert_eq!(c.reply().unwrap(), "500 5.5.2 Command unrecognized\r\n");
    }
    assert_eq!(
        c.reply().unwrap(),
        "421 4.7.0 Too many errors, closing connection\r\n"
    );
    assert!(c.reply().is_err());
}

#[test]
fn load_generator_pipelined_messages_all_arrive() {
    let server = Server::started();
    server.with_example_accounts();
    for flags in [&["--pipelining", "--reuse"][..], &[]] {
        let out = Command::new(gannet_tests::bin("gannet-bench"))
            .args([
                "smtp",
                "--target",
                &server.smtp.to_string(),
                "--count",
                "300",
                "--size",
                "2048",
            ])
            .args([
                "--concurrency",
                "8",
                "--to",
                "carol@example.test",
                "--max-seconds",
                "60",
            ])
            .args(flags)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("result ok=300 failed=0"), "{text}");
    }
    let list = server.mail_list("carol@example.test");
    assert_eq!(list.len(), 600);
    assert!(list.iter().all(|(_, _, subject)| subject == "gannet-bench"));
}
