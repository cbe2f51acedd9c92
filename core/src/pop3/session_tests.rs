//! Unit tests of the POP3 session, fed lines as a client sends them.

use super::*;
use crate::protocol::Protocol;

fn session(policy: Pop3Policy) -> Session {
    let mut s = Session::new(Arc::new(Pop3Config::default()), policy, Vec::new());
    let greeting = String::from_utf8(s.take_output()).unwrap();
    assert!(greeting.starts_with("+OK Gannet POP3 server"));
    s
}

fn tls() -> Pop3Policy {
    Pop3Policy {
        tls: true,
        stls: true,
        auth_without_tls: false,
    }
}

const MESSAGE: &[u8] = b"Subject: one\r\nFrom: a@b\r\n\r\nline 1\r\n.dotted\r\nline 3\r\n";

/// Feeds `input` and plays the runtime: alice/Secret123 is account 7; the maildrop holds
/// two messages; `in_use` makes opening fail.
fn run(s: &mut Session, input: &str, in_use: bool, committed: &mut Vec<u32>) -> String {
    s.feed(input.as_bytes());
    loop {
        match s.step() {
            Step::NeedInput | Step::Close | Step::Idle => break,
            Step::StartTls => s.tls_started(),
            Step::Authenticate(c) => {
                let ok = c.username == "alice@example.test" && c.password == "Secret123";
                s.auth_result(if ok {
                    AuthOutcome::Success { account: 7 }
                } else {
                    AuthOutcome::Failure
                });
            }
            Step::Request(Request::OpenMaildrop { account }) => {
                assert_eq!(account, 7);
                s.maildrop_opened(if in_use {
                    Err(MaildropError::InUse)
                } else {
                    Ok(vec![
                        DropMessage {
                            uid: 3,
                            size: MESSAGE.len() as u64,
                            uidl: "100.3".into(),
                        },
                        DropMessage {
                            uid: 5,
                            size: 10,
                            uidl: "100.5".into(),
                        },
                    ])
                });
            }
            Step::Request(Request::Retrieve { uid, top }) => {
                assert_eq!(uid, 3);
                s.message_read(Some(MESSAGE), top);
            }
            Step::Request(Request::Commit { deleted }) => {
                committed.extend(deleted);
                s.committed(true);
            }
        }
    }
    String::from_utf8(s.take_output()).unwrap()
}

#[test]
fn a_whole_session() {
    let mut s = session(tls());
    let mut done = Vec::new();
    assert_eq!(
        run(
            &mut s,
            "USER alice@example.test\r\nPASS Secret123\r\n",
            false,
            &mut done
        ),
        "+OK send PASS\r\n+OK maildrop locked and ready, 2 messages (62 octets)\r\n"
    );
    assert_eq!(
        run(&mut s, "STAT\r\nLIST\r\nUIDL 2\r\n", false, &mut done),
        "+OK 2 62\r\n+OK 2 messages\r\n1 52\r\n2 10\r\n.\r\n+OK 2 100.5\r\n"
    );
    assert_eq!(
        run(&mut s, "RETR 1\r\n", false, &mut done),
        "+OK 52 octets\r\nSubject: one\r\nFrom: a@b\r\n\r\nline 1\r\n..dotted\r\nline 3\r\n.\r\n"
    );
    assert_eq!(
        run(&mut s, "TOP 1 1\r\n", false, &mut done),
        "+OK 52 octets\r\nSubject: one\r\nFrom: a@b\r\n\r\nline 1\r\n.\r\n"
    );
    assert_eq!(run(&mut s, "DELE 2\r\nDELE 2\r\nSTAT\r\nRSET\r\nSTAT\r\nDELE 1\r\nLIST 1\r\nRETR 9\r\n", false, &mut done),
        "+OK message 2 deleted\r\n-ERR Message 2 already deleted\r\n+OK 1 52\r\n+OK maildrop has 2 messages\r\n+OK 2 62\r\n+OK message 1 deleted\r\n-ERR Message 1 already deleted\r\n-ERR No such message\r\n");
    assert!(done.is_empty(), "nothing is removed before QUIT");
    assert_eq!(
        run(&mut s, "QUIT\r\n", false, &mut done),
        "+OK Gannet POP3 server signing off\r\n"
    );
    assert_eq!(done, vec![3]);
}

#[test]
fn plaintext_login_needs_tls_and_stls_resets() {
    let mut s = session(Pop3Policy {
        tls: false,
        stls: true,
        auth_without_tls: false,
    });
    let mut done = Vec::new();
    let capa = run(&mut s, "CAPA\r\n", false, &mut done);
    assert!(
        capa.contains("STLS\r\n") && !capa.contains("USER\r\n"),
        "{capa}"
    );
    assert!(run(&mut s, "USER alice@example.test\r\n", false, &mut done).starts_with("-ERR [AUTH]"));
    // Injection: what follows STLS in the same packet is dropped.
    assert_eq!(
        run(&mut s, "STLS\r\nUSER evil\r\n", false, &mut done),
        "+OK Begin TLS negotiation\r\n"
    );
    let capa = run(&mut s, "CAPA\r\n", false, &mut done);
    assert!(
        capa.contains("USER\r\n") && capa.contains("SASL PLAIN\r\n") && !capa.contains("STLS"),
        "{capa}"
    );
    assert_eq!(
        run(&mut s, "PASS x\r\n", false, &mut done),
        "-ERR USER first\r\n"
    );
}

#[test]
fn auth_plain_failures_and_in_use() {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let mut s = session(tls());
    let mut done = Vec::new();
    let out = run(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64("\0alice@example.test\0nope")),
        false,
        &mut done,
    );
    assert_eq!(out, "-ERR [AUTH] Authentication failed\r\n");
    assert_eq!(run(&mut s, "AUTH PLAIN\r\n", false, &mut done), "+ \r\n");
    assert_eq!(
        run(&mut s, "!!!\r\n", false, &mut done),
        "-ERR Cannot decode the response\r\n"
    );
    let out = run(
        &mut s,
        &format!("AUTH PLAIN {}\r\n", b64("\0alice@example.test\0Secret123")),
        true,
        &mut done,
    );
    assert_eq!(
        out,
        "-ERR [IN-USE] Mailbox in use by another POP3 session\r\n"
    );
    assert_eq!(
        run(&mut s, "STAT\r\n", true, &mut done),
        "-ERR Not allowed before authentication\r\n"
    );
    assert_eq!(
        run(&mut s, "QUIT\r\n", true, &mut done),
        "+OK Gannet POP3 server signing off\r\n"
    );
}

#[test]
fn garbage_is_answered_and_limited() {
    let mut s = session(tls());
    let mut done = Vec::new();
    let out = run(&mut s, &"XYZZY\r\n".repeat(25), false, &mut done);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 21);
    assert!(lines.iter().all(|l| l.starts_with("-ERR")));
    let long = format!("USER {}\r\nNOOP\r\n", "x".repeat(5000));
    let mut s = session(tls());
    assert!(run(&mut s, &long, false, &mut done).starts_with("-ERR Line too long"));
}

#[test]
fn stuffing_and_top() {
    let mut out = Vec::new();
    byte_stuff(b".a\r\nb\r\n.\r\n", &mut out);
    assert_eq!(out, b"..a\r\nb\r\n..\r\n.\r\n");
    out.clear();
    byte_stuff(b"no newline at end", &mut out);
    assert_eq!(out, b"no newline at end\r\n.\r\n");
    out.clear();
    byte_stuff(b"a\r\n..b\n.\n.c\r\n.", &mut out);
    assert_eq!(out, b"a\r\n...b\n..\n..c\r\n..\r\n.\r\n");
    assert_eq!(top_of(b"H: 1\r\n\r\na\r\nb\r\n", 0), b"H: 1\r\n\r\n");
    assert_eq!(
        top_of(b"H: 1\r\n\r\na\r\nb\r\n", 5),
        b"H: 1\r\n\r\na\r\nb\r\n"
    );
}
