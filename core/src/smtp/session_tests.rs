//! Unit tests of the SMTP session, fed bytes as a client would send them.

use super::*;
use crate::auth::service::AuthOutcome;
use crate::protocol::Protocol;

struct TestEnv {
    next_id: u64,
    admitted: u32,
    rate_limit: u32,
    /// (recipient, reply code) of each refusal the session reported.
    refused: Vec<(String, u16)>,
}

impl Environment for TestEnv {
    fn now(&self) -> i64 {
        1_795_962_630
    }
    fn next_message_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }
    fn route(&self, address: &str) -> RcptRoute {
        match address {
            "alice@example.test" => RcptRoute::Local { account: 1 },
            "bob@example.test" => RcptRoute::Local { account: 2 },
            "postmaster@mx.example.test" => RcptRoute::Local { account: 1 },
            "spam@example.test" => RcptRoute::Report { account: 3 },
            a if a.ends_with("@example.test") => RcptRoute::UnknownUser,
            _ => RcptRoute::Remote,
        }
    }
    fn admit_message(&mut self, _: crate::policy::RateKey) -> bool {
        self.admitted += 1;
        self.admitted <= self.rate_limit
    }
    fn quota_allows(&self, account: u32, bytes: u64) -> bool {
        // bob (account 2) has 500 bytes left.
        account != 2 || bytes <= 500
    }
    fn recipient_refused(&mut self, r: &RecipientRefusal<'_>) {
        self.refused.push((r.recipient.to_string(), r.reply.code));
    }
}

fn config() -> Arc<SessionConfig> {
    Arc::new(SessionConfig {
        hostname: "mx.example.test".into(),
        max_message_size: 1000,
        ..SessionConfig::default()
    })
}

struct Client {
    session: Session,
    env: TestEnv,
    delivered: Vec<Delivery>,
    closed: bool,
}

impl Client {
    fn new() -> Self {
        Client::with_config(config())
    }

    fn with_config(config: Arc<SessionConfig>) -> Self {
        Client::with_policy(
            config,
            ConnectionPolicy::plain("127.0.0.2".parse().unwrap()),
        )
    }

    fn with_policy(config: Arc<SessionConfig>, policy: ConnectionPolicy) -> Self {
        let session = Session::new(config, policy, Vec::new());
        let mut c = Client {
            session,
            env: TestEnv {
                next_id: 0,
                admitted: 0,
                rate_limit: 500,
                refused: Vec::new(),
            },
            delivered: Vec::new(),
            closed: false,
        };
        let greeting = c.output();
        assert_eq!(greeting, "220 mx.example.test ESMTP Gannet\r\n");
        c
    }

    fn output(&mut self) -> String {
        let out = self.session.take_output();
        let text = String::from_utf8(out.clone()).unwrap();
        self.session.buffers().output_written(out);
        text
    }

    /// Sends `input` in pieces of `chunk` bytes and returns everything the server answered.
    fn send_chunked(&mut self, input: &[u8], chunk: usize) -> String {
        let mut answer = String::new();
        for piece in input.chunks(chunk.max(1)) {
            self.session.feed(piece);
            self.run(&mut answer);
        }
        answer
    }

    fn send(&mut self, input: &str) -> String {
        self.send_chunked(input.as_bytes(), usize::MAX)
    }

    fn run(&mut self, answer: &mut String) {
        loop {
            match self.session.step(&mut self.env) {
                Step::NeedInput | Step::Idle => break,
                Step::Close => {
                    self.closed = true;
                    break;
                }
                Step::Request(Request::Deliver) => {
                    let d = self.session.take_delivery(Vec::new()).unwrap();
                    self.delivered.push(d);
                    self.session.delivered(DeliveryOutcome::Stored);
                }
                Step::StartTls => {
                    answer.push_str(&self.output());
                    answer.push_str("[TLS]");
                    self.session.tls_started();
                }
                Step::Authenticate(c) => {
                    let outcome = match (c.username.as_str(), c.password.as_str()) {
                        ("alice@example.test", "Secret123") => AuthOutcome::Success { account: 1 },
                        ("locked@example.test", _) => AuthOutcome::LockedOut,
                        _ => AuthOutcome::Failure,
                    };
                    self.session.auth_result(outcome);
                }
            }
        }
        answer.push_str(&self.output());
    }
}

/// The reply code of every line (a line too short for one is kept whole, to fail the
/// comparison).
fn codes(answer: &str) -> Vec<&str> {
    answer.lines().map(|l| l.get(..3).unwrap_or(l)).collect()
}

/// Every reply line but the EHLO/HELO answer and 354 carries an enhanced status code of the
/// same class as the reply code (RFC 2034, RFC 3463).
fn assert_enhanced_codes(answer: &str) {
    for line in answer.lines() {
        let (Some(code), Some(text)) = (line.get(..3), line.get(4..)) else {
            panic!("no reply code and text in {line:?}");
        };
        if code == "354" || (code == "250" && !text.starts_with("2.")) {
            continue;
        }
        let enhanced = text.split(' ').next().unwrap();
        let parts: Vec<&str> = enhanced.split('.').collect();
        assert_eq!(parts.len(), 3, "no enhanced code in {line:?}");
        assert_eq!(Some(parts[0]), code.get(..1), "class mismatch in {line:?}");
        assert!(parts.iter().all(|p| p.parse::<u16>().is_ok()), "{line:?}");
    }
}

const ENVELOPE: &str =
    "EHLO client.example\r\nMAIL FROM:<sender@example.org>\r\nRCPT TO:<alice@example.test>\r\n";

#[test]
fn ehlo_advertises_the_extensions() {
    let mut c = Client::new();
    let a = c.send("EHLO client.example\r\n");
    for ext in [
        "PIPELINING",
        "SIZE 1000",
        "8BITMIME",
        "ENHANCEDSTATUSCODES",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert!(
            a.contains(&format!("250-{ext}\r\n")) || a.contains(&format!("250 {ext}\r\n")),
            "{ext} missing in {a}"
        );
    }
    assert!(a.starts_with("250-mx.example.test greets client.example\r\n"));
    assert!(a.ends_with("250 CHUNKING\r\n"));
}

#[test]
fn a_message_is_delivered_behind_trace_headers() {
    let mut c = Client::new();
    let body = "Subject: hi\r\n\r\nHello\r\n";
    let a = c.send(&format!("{ENVELOPE}DATA\r\n{body}.\r\nQUIT\r\n"));
    assert_eq!(
        codes(&a),
        ["250", "250", "250", "250", "250", "250", "250", "250", "250", "354", "250", "221"]
    );
    assert_enhanced_codes(&a);
    assert!(c.closed);
    let d = &c.delivered[0];
    let msg = std::str::from_utf8(d.message()).unwrap();
    assert!(msg.starts_with("Return-Path: <sender@example.org>\r\nReceived: from client.example ([127.0.0.2])\r\n\tby mx.example.test (Gannet) with ESMTP id "));
    assert!(msg.contains("\tfor <alice@example.test>;\r\n\tSun, 29 Nov 2026 14:30:30 +0000\r\n"));
    assert!(msg.ends_with(&format!("+0000\r\n{body}")));
    assert_eq!(d.envelope.reverse_path, "sender@example.org");
    assert_eq!(
        d.envelope.recipients,
        vec![Recipient {
            address: "alice@example.test".into(),
            account: Some(1),
            scan: false
        }]
    );
}

#[test]
fn byte_by_byte_equals_all_at_once() {
    let input = format!("{ENVELOPE}DATA\r\n..dot\r\nline\r\n.\r\nRSET\r\nQUIT\r\n");
    let mut whole = Client::new();
    let a = whole.send(&input);
    for chunk in [1, 2, 3, 5, 8, 13] {
        let mut c = Client::new();
        assert_eq!(c.send_chunked(input.as_bytes(), chunk), a, "chunk {chunk}");
        assert_eq!(c.delivered[0].message(), whole.delivered[0].message());
    }
    assert!(whole.delivered[0]
        .message()
        .ends_with(b"\r\n.dot\r\nline\r\n"));
}

/// Each recipient refused by policy is reported for the trace, with the reply sent;
/// syntax errors are not (they name no recipient).
#[test]
fn refused_recipients_are_reported() {
    let mut c = Client::with_config(Arc::new(SessionConfig {
        max_recipients: 2,
        ..SessionConfig::clone(&config())
    }));
    c.send("EHLO x\r\n");
    let a = c.send(
        "MAIL FROM:<a@b.example> SIZE=900\r\nRCPT TO:<Nobody@example.test>\r\nRCPT TO:<x@elsewhere.example>\r\n\
         RCPT TO:<bob@example.test>\r\nRCPT TO:bad\r\nRCPT TO:<spam@example.test>\r\n\
         RCPT TO:<alice@example.test>\r\nRCPT TO:<postmaster>\r\nRCPT TO:<z@example.test>\r\n",
    );
    assert_eq!(
        codes(&a),
        ["250", "550", "554", "452", "501", "550", "250", "250", "452"]
    );
    assert_eq!(
        c.env.refused,
        [
            ("Nobody@example.test".to_string(), 550),
            ("x@elsewhere.example".to_string(), 554),
            ("bob@example.test".to_string(), 452),
            ("spam@example.test".to_string(), 550),
            ("z@example.test".to_string(), 452),
        ]
    );
}

/// Refusals that are not errors never end the session: past the bound, they are
/// answered but no longer reported.
#[test]
fn refusal_reports_are_bounded_per_session() {
    let mut c = Client::with_config(Arc::new(SessionConfig {
        max_recipients: 1,
        ..SessionConfig::clone(&config())
    }));
    c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\n");
    let over = "RCPT TO:<bob@example.test>\r\n".repeat(MAX_REPORTED_REFUSALS as usize + 10);
    let a = c.send(&over);
    assert!(codes(&a).iter().all(|code| *code == "452"), "{a}");
    assert_eq!(codes(&a).len(), MAX_REPORTED_REFUSALS as usize + 10);
    assert_eq!(c.env.refused.len(), MAX_REPORTED_REFUSALS as usize);
}

#[test]
fn pipelined_commands_are_answered_in_order_in_one_write() {
    let mut c = Client::new();
    c.send("EHLO x\r\n");
    let a = c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n");
    assert_eq!(
        a,
        "250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n550 5.1.1 Recipient address rejected: user unknown\r\n250 2.1.5 Recipient ok\r\n354 End data with <CR><LF>.<CR><LF>\r\n"
    );
    let a = c
        .send("x\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\ny\r\n.\r\nQUIT\r\n");
    assert_eq!(codes(&a), ["250", "250", "250", "354", "250", "221"]);
    assert_eq!(c.delivered.len(), 2);
    assert_eq!(c.delivered[0].envelope.recipients.len(), 2);
    assert_eq!(c.delivered[1].envelope.reverse_path, "");
    // Two recipients: the Received header names neither.
    assert!(!std::str::from_utf8(c.delivered[0].message())
        .unwrap()
        .contains("for <"));
}

#[test]
fn smuggling_sequences_never_end_the_message() {
    for smuggle in ["\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r\n.\r"] {
        let mut c = Client::new();
        let a = c.send(&format!(
            "{ENVELOPE}DATA\r\nSubject: a\r\n\r\nbody{smuggle}MAIL FROM:<evil@example.org>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nsmuggled\r\n"
        ));
        // Still inside the first message: nothing after 354 was answered.
        assert!(
            a.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n"),
            "{smuggle:?}: {a}"
        );
        let a = c.send(".\r\n");
        assert_eq!(a, "554 5.6.0 Message refused: bare CR or LF in message data (lines must end with CRLF)\r\n", "{smuggle:?}");
        assert!(c.delivered.is_empty());
        // The session goes on.
        let a =
            c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nok\r\n.\r\n");
        assert_eq!(codes(&a), ["250", "250", "354", "250"]);
        assert_eq!(c.delivered.len(), 1);
    }
}

#[test]
fn recipient_limit() {
    let mut c = Client::new();
    let mut input = String::from("EHLO x\r\nMAIL FROM:<a@b.example>\r\n");
    for _ in 0..25 {
        input.push_str("RCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\n");
    }
    input.push_str("RCPT TO:<alice@example.test>\r\n");
    let a = c.send(&input);
    assert!(
        a.ends_with("250 2.1.5 Recipient ok\r\n"),
        "duplicates count once"
    );
    let cfg = Arc::new(SessionConfig {
        max_recipients: 2,
        ..(*config()).clone()
    });
    let mut c = Client::with_config(cfg);
    let a = c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<postmaster>\r\n");
    assert!(a.ends_with("452 4.5.3 Too many recipients\r\n"), "{a}");
}

#[test]
fn fifty_first_recipient_is_refused_by_default() {
    let cfg = Arc::new(SessionConfig::default());
    struct Many;
    impl Environment for Many {
        fn now(&self) -> i64 {
            0
        }
        fn next_message_id(&mut self) -> u64 {
            1
        }
        fn route(&self, _: &str) -> RcptRoute {
            RcptRoute::Local { account: 1 }
        }
        fn admit_message(&mut self, _: crate::policy::RateKey) -> bool {
            true
        }
        fn quota_allows(&self, _: u32, _: u64) -> bool {
            true
        }
    }
    let mut s = Session::new(
        cfg,
        ConnectionPolicy::plain("127.0.0.1".parse().unwrap()),
        Vec::new(),
    );
    s.take_output();
    let mut input = String::from("EHLO x\r\nMAIL FROM:<a@b.example>\r\n");
    for i in 0..51 {
        input.push_str(&format!("RCPT TO:<u{i}@example.test>\r\n"));
    }
    s.feed(input.as_bytes());
    assert_eq!(s.step(&mut Many), Step::NeedInput);
    let out = String::from_utf8(s.take_output()).unwrap();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("250 2.1.5")).count(),
        50
    );
    assert_eq!(*lines.last().unwrap(), "452 4.5.3 Too many recipients");
}

#[test]
fn declared_size_over_the_limit_is_refused_at_mail() {
    let mut c = Client::new();
    let a = c.send(
        "EHLO x\r\nMAIL FROM:<a@b.example> SIZE=1001\r\nMAIL FROM:<a@b.example> SIZE=1000\r\n",
    );
    assert!(a.contains("552 5.3.4 Message size exceeds fixed maximum message size\r\n"));
    assert!(a.ends_with("250 2.1.0 Sender ok\r\n"));
}

#[test]
fn oversized_data_is_read_to_the_end_and_refused() {
    let mut c = Client::new();
    let big = "x".repeat(98) + "\r\n";
    let a = c.send(&format!("{ENVELOPE}DATA\r\n{}", big.repeat(20)));
    assert!(a.ends_with("354 End data with <CR><LF>.<CR><LF>\r\n"));
    let a = c.send(&format!("{}.\r\nNOOP\r\n", big.repeat(5)));
    assert_eq!(
        a,
        "552 5.3.4 Message too big for system\r\n250 2.0.0 Ok\r\n"
    );
    assert!(c.delivered.is_empty());
    let a =
        c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nsmall\r\n.\r\n");
    assert_eq!(codes(&a), ["250", "250", "354", "250"]);
}

#[test]
fn too_long_lines_are_refused() {
    let mut c = Client::new();
    let a = c.send(&format!("EHLO {}\r\nNOOP\r\n", "a".repeat(600)));
    assert_eq!(a, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
    // A long line arriving in pieces, longer than the buffer threshold.
    let a = c.send_chunked(
        format!("NOOP {}\r\nNOOP\r\n", "b".repeat(5000)).as_bytes(),
        700,
    );
    assert_eq!(a, "500 5.5.2 Line too long\r\n250 2.0.0 Ok\r\n");
    // 510 characters + CRLF = 512 is still fine.
    let a = c.send(&format!("NOOP {}\r\n", "c".repeat(505)));
    assert_eq!(a, "250 2.0.0 Ok\r\n");
}

#[test]
fn twenty_bad_commands_close_the_session() {
    let mut c = Client::new();
    let a = c.send(&"BOGUS\r\n".repeat(25));
    let lines: Vec<&str> = a.lines().collect();
    assert_eq!(lines.len(), 21);
    assert!(lines[..20]
        .iter()
        .all(|l| *l == "500 5.5.2 Command unrecognized"));
    assert_eq!(lines[20], "421 4.7.0 Too many errors, closing connection");
    assert!(c.closed);
}

#[test]
fn sequence_errors() {
    let mut c = Client::new();
    let a = c.send("MAIL FROM:<a@b.example>\r\nEHLO x\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nMAIL FROM:<a@b.example>\r\nMAIL FROM:<a@b.example>\r\nDATA\r\nRCPT TO:<someone@elsewhere.example>\r\nRCPT TO:<nobody@example.test>\r\nDATA\r\n");
    assert_eq!(
        a,
        "503 5.5.1 Send HELO/EHLO first\r\n\
         250-mx.example.test greets x\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250-8BITMIME\r\n250-ENHANCEDSTATUSCODES\r\n250-SMTPUTF8\r\n250 CHUNKING\r\n\
         503 5.5.1 Need MAIL command first\r\n\
         503 5.5.1 Need MAIL command first\r\n\
         250 2.1.0 Sender ok\r\n\
         503 5.5.1 Sender already specified\r\n\
         554 5.5.1 No valid recipients\r\n\
         554 5.7.1 Relay access denied\r\n\
         550 5.1.1 Recipient address rejected: user unknown\r\n\
         554 5.5.1 No valid recipients\r\n"
    );
    assert_enhanced_codes(&a);
}

#[test]
fn other_commands() {
    let mut c = Client::new();
    let a = c.send("HELO x\r\nVRFY alice\r\nNOOP\r\nRSET\r\nHELP\r\nEXPN list\r\nSTARTTLS\r\nDATA extra\r\nMAIL FROM:<a@b.example> BODY=BINARYMIME\r\nMAIL FROM:<bad address@x>\r\nQUIT\r\n");
    assert_eq!(
        a,
        "250 mx.example.test\r\n\
         252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery\r\n\
         250 2.0.0 Ok\r\n\
         250 2.0.0 Ok\r\n\
         214-2.0.0 Gannet SMTP; commands:\r\n214 2.0.0 EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP\r\n\
         502 5.5.1 Command not implemented\r\n\
         502 5.5.1 Command not implemented\r\n\
         501 5.5.4 Syntax error in parameters or arguments\r\n\
         555 5.5.4 Unsupported parameter\r\n\
         501 5.1.7 Bad sender address syntax\r\n\
         221 2.0.0 Bye\r\n"
    );
    // VRFY never reveals whether a user exists.
    let mut c = Client::new();
    assert_eq!(
        c.send("VRFY nobody@example.test\r\n"),
        c.send("VRFY alice@example.test\r\n")
    );
}

#[test]
fn helo_sessions_say_smtp_in_received() {
    let mut c = Client::new();
    c.send("HELO old.example\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\r\n.\r\n");
    assert!(std::str::from_utf8(c.delivered[0].message())
        .unwrap()
        .contains("with SMTP id"));
}

#[test]
fn smtputf8_is_required_for_non_ascii_addresses() {
    let mut c = Client::new();
    let a = c.send("EHLO x\r\nMAIL FROM:<jöran@example.org>\r\nMAIL FROM:<jöran@example.org> SMTPUTF8\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\r\n.\r\n");
    assert!(a.contains("553 5.6.7 "));
    assert!(a.ends_with("250 2.0.0 Message accepted for delivery\r\n"));
    let msg = std::str::from_utf8(c.delivered[0].message()).unwrap();
    assert!(msg.contains("with UTF8SMTP id"));
    assert!(c.delivered[0].envelope.smtputf8);
}

#[test]
fn bdat_chunks_make_one_message() {
    for chunk in [1, 4, 1000] {
        let mut c = Client::new();
        let input = format!("{ENVELOPE}BDAT 12\r\nSubject: x\r\nBDAT 6 LAST\r\n\r\nhi\r\nQUIT\r\n");
        let a = c.send_chunked(input.as_bytes(), chunk);
        assert!(
            a.ends_with("250 2.0.0 12 octets received\r\n250 2.0.0 Message accepted for delivery\r\n221 2.0.0 Bye\r\n"),
            "{a}"
        );
        let msg = c.delivered[0].message();
        assert!(
            msg.ends_with(b"+0000\r\nSubject: x\r\n\r\nhi\r\n"),
            "chunk {chunk}: {:?}",
            String::from_utf8_lossy(msg)
        );
    }
}

#[test]
fn bdat_content_is_not_parsed_as_commands_or_unstuffed() {
    let mut c = Client::new();
    let body = "..x\r\n.\r\nQUIT\r\n";
    let a = c.send(&format!(
        "{ENVELOPE}BDAT {} LAST\r\n{body}NOOP\r\n",
        body.len()
    ));
    assert!(
        a.ends_with("250 2.0.0 Message accepted for delivery\r\n250 2.0.0 Ok\r\n"),
        "{a}"
    );
    assert!(c.delivered[0].message().ends_with(body.as_bytes()));
}

#[test]
fn bdat_without_transaction_reads_the_chunk_then_refuses() {
    let mut c = Client::new();
    let a = c.send("EHLO x\r\nBDAT 6 LAST\r\nQUIT\r\nNOOP\r\n");
    assert!(
        a.ends_with("503 5.5.1 Need MAIL command first\r\n250 2.0.0 Ok\r\n"),
        "{a}"
    );
    assert!(!c.closed);
}

#[test]
fn bdat_then_data_is_refused_and_oversize_bdat_is_refused_at_last() {
    let mut c = Client::new();
    let a = c.send(&format!("{ENVELOPE}BDAT 2\r\nabDATA\r\n"));
    assert!(a.ends_with("503 5.5.1 DATA not allowed after BDAT\r\n"));
    let mut c = Client::new();
    let chunk = "y".repeat(600);
    let a = c.send(&format!(
        "{ENVELOPE}BDAT 600\r\n{chunk}BDAT 600 LAST\r\n{chunk}NOOP\r\n"
    ));
    assert!(
        a.ends_with("552 5.3.4 Message too big for system\r\n250 2.0.0 Ok\r\n"),
        "{a}"
    );
    assert!(c.delivered.is_empty());
}

#[test]
fn bdat_with_bare_lf_is_refused() {
    let mut c = Client::new();
    let a = c.send(&format!("{ENVELOPE}BDAT 4 LAST\r\na\nb\n"));
    assert!(a.ends_with(
        "554 5.6.0 Message refused: bare CR or LF in message data (lines must end with CRLF)\r\n"
    ));
}

#[test]
fn storage_failure_is_a_temporary_error() {
    let mut c = Client::new();
    c.session
        .feed(format!("{ENVELOPE}DATA\r\nx\r\n.\r\n").as_bytes());
    assert_eq!(c.session.step(&mut c.env), Step::Request(Request::Deliver));
    let d = c.session.take_delivery(Vec::new()).unwrap();
    assert!(d.message().ends_with(b"x\r\n"));
    c.session.delivered(DeliveryOutcome::Failed);
    assert_eq!(c.session.step(&mut c.env), Step::NeedInput);
    assert!(c
        .output()
        .ends_with("451 4.3.0 Local error in processing, try again later\r\n"));
    assert!(c.session.is_idle());
}

#[test]
fn garbage_never_panics_and_is_always_answered() {
    // A deterministic pseudo-random byte soup, with protocol words mixed in.
    let words: [&[u8]; 10] = [
        b"MAIL FROM:<a@b.example>\r\n",
        b"RCPT TO:<alice@example.test>\r\n",
        b"DATA\r\n",
        b"BDAT 5\r\n",
        b"BDAT 3 LAST\r\n",
        b".\r\n",
        b"\r\n",
        b"\n",
        b"\xff\x00",
        b"EHLO x\r\n",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..300 {
        let mut c = Client::new();
        let mut input = Vec::new();
        for _ in 0..40 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(3) {
                input.push((seed >> 8) as u8);
            } else {
                input.extend_from_slice(words[(seed >> 16) as usize % words.len()]);
            }
        }
        let answer = c.send_chunked(&input, (seed % 17 + 1) as usize);
        for line in answer.lines() {
            assert!(
                line.get(..3)
                    .is_some_and(|code| code.parse::<u16>().is_ok()),
                "{line:?}"
            );
        }
        assert_enhanced_codes(&answer);
    }
}

fn tls_policy() -> ConnectionPolicy {
    ConnectionPolicy {
        starttls: true,
        ..ConnectionPolicy::plain("127.0.0.2".parse().unwrap())
    }
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn starttls_is_offered_then_resets_the_session() {
    let mut c = Client::with_policy(config(), tls_policy());
    let a = c.send("EHLO x\r\n");
    assert!(
        a.contains("250-STARTTLS\r\n") || a.contains("250 STARTTLS\r\n"),
        "{a}"
    );
    assert!(!a.contains("AUTH"), "no AUTH before TLS: {a}");
    // Injection: commands pipelined after STARTTLS are discarded, never run under TLS.
    let a = c.send("MAIL FROM:<a@b.example>\r\nSTARTTLS\r\nMAIL FROM:<evil@b.example>\r\nRCPT TO:<alice@example.test>\r\n");
    assert_eq!(
        a,
        "250 2.1.0 Sender ok\r\n220 2.0.0 Ready to start TLS\r\n[TLS]"
    );
    // After TLS: a new EHLO is needed; AUTH is offered, STARTTLS is not.
    let a = c.send("MAIL FROM:<a@b.example>\r\nEHLO x\r\n");
    assert!(a.starts_with("503 5.5.1 Send HELO/EHLO first\r\n"), "{a}");
    assert!(
        a.contains("250-AUTH PLAIN LOGIN\r\n") || a.contains("250 AUTH PLAIN LOGIN\r\n"),
        "{a}"
    );
    assert!(!a.contains("STARTTLS"));
    assert_eq!(c.send("STARTTLS\r\n"), "503 5.5.1 TLS already active\r\n");
    let msg = {
        c.send("MAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\r\n.\r\n");
        String::from_utf8(c.delivered[0].message().to_vec()).unwrap()
    };
    assert!(msg.contains("with ESMTPS id"), "{msg}");
}

#[test]
fn starttls_not_offered_without_a_certificate() {
    let mut c = Client::new();
    assert!(!c.send("EHLO x\r\n").contains("STARTTLS"));
    assert_eq!(
        c.send("STARTTLS\r\n"),
        "502 5.5.1 Command not implemented\r\n"
    );
}

#[test]
fn auth_requires_tls_then_plain_and_login_work() {
    let mut c = Client::with_policy(config(), tls_policy());
    c.send("EHLO x\r\n");
    assert_eq!(
        c.send(&format!(
            "AUTH PLAIN {}\r\n",
            b64("\0alice@example.test\0Secret123")
        )),
        "530 5.7.0 Must issue a STARTTLS command first\r\n"
    );
    c.send("STARTTLS\r\n");
    c.send("EHLO x\r\n");
    assert_eq!(
        c.send("AUTH CRAM-MD5\r\n"),
        "504 5.5.4 Unrecognized authentication type\r\n"
    );
    assert_eq!(
        c.send(&format!(
            "AUTH PLAIN {}\r\n",
            b64("\0alice@example.test\0wrong")
        )),
        "535 5.7.8 Authentication credentials invalid\r\n"
    );
    assert_eq!(
        c.send("AUTH PLAIN !!!\r\n"),
        "501 5.5.2 Cannot decode the response\r\n"
    );
    assert_eq!(c.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(c.send("*\r\n"), "501 5.0.0 Authentication cancelled\r\n");
    assert_eq!(c.send("AUTH LOGIN\r\n"), "334 VXNlcm5hbWU6\r\n");
    assert_eq!(
        c.send(&format!("{}\r\n", b64("alice@example.test"))),
        "334 UGFzc3dvcmQ6\r\n"
    );
    assert_eq!(
        c.send(&format!("{}\r\n", b64("Secret123"))),
        "235 2.7.0 Authentication successful\r\n"
    );
    assert_eq!(
        c.send("AUTH PLAIN\r\n"),
        "503 5.5.1 Already authenticated\r\n"
    );
    assert!(c.session.authenticated() == Some(1));
    // Relaying is now allowed; sending as someone else is not.
    let a = c.send("MAIL FROM:<carol@example.test>\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<friend@elsewhere.example>\r\nDATA\r\nhi\r\n.\r\n");
    assert!(
        a.starts_with("553 5.7.1 Sender address rejected: not owned by user\r\n250 2.1.0"),
        "{a}"
    );
    assert!(
        a.ends_with("250 2.0.0 Message accepted for delivery\r\n"),
        "{a}"
    );
    assert_eq!(c.delivered[0].envelope.recipients[0].account, None);
    assert!(std::str::from_utf8(c.delivered[0].message())
        .unwrap()
        .contains("with ESMTPSA id"));
}

#[test]
fn auth_plain_with_empty_initial_response_and_lockout() {
    let mut c = Client::with_policy(
        config(),
        ConnectionPolicy {
            tls: true,
            ..tls_policy()
        },
    );
    c.send("EHLO x\r\n");
    assert_eq!(c.send("AUTH PLAIN\r\n"), "334 \r\n");
    assert_eq!(
        c.send(&format!("{}\r\n", b64("\0alice@example.test\0Secret123"))),
        "235 2.7.0 Authentication successful\r\n"
    );
    let mut c = Client::with_policy(
        config(),
        ConnectionPolicy {
            tls: true,
            ..tls_policy()
        },
    );
    c.send("EHLO x\r\n");
    let a = c.send(&format!(
        "AUTH PLAIN {}\r\nNOOP\r\n",
        b64("\0locked@example.test\0x")
    ));
    assert_eq!(
        a,
        "421 4.7.0 Too many failed authentication attempts, try again later\r\n"
    );
    assert!(c.closed);
}

#[test]
fn submission_requires_auth_and_relay_needs_auth_or_trust() {
    let sub = ConnectionPolicy {
        submission: true,
        ..tls_policy()
    };
    let mut c = Client::with_policy(config(), sub);
    assert_eq!(
        c.send("EHLO x\r\nMAIL FROM:<alice@example.test>\r\n")
            .lines()
            .last()
            .unwrap(),
        "530 5.7.0 Must issue a STARTTLS command first"
    );
    c.send("STARTTLS\r\n");
    c.send("EHLO x\r\n");
    assert_eq!(
        c.send("MAIL FROM:<alice@example.test>\r\n"),
        "530 5.7.0 Authentication required\r\n"
    );
    // MX port, untrusted: no relay.
    let mut c = Client::new();
    let a = c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\n");
    assert!(a.ends_with("554 5.7.1 Relay access denied\r\n"));
    // Trusted network: relay, counted once per message against the IP.
    let trusted = ConnectionPolicy {
        trusted: true,
        ..ConnectionPolicy::plain("127.0.0.1".parse().unwrap())
    };
    let mut c = Client::with_policy(config(), trusted);
    c.env.rate_limit = 1;
    let a = c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<x@elsewhere.example>\r\nRCPT TO:<y@elsewhere.example>\r\nDATA\r\nm\r\n.\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nRCPT TO:<z@elsewhere.example>\r\n");
    assert!(a.ends_with("250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n451 4.7.1 Message rate limit exceeded, try again later\r\n"), "{a}");
    assert_eq!(c.delivered[0].envelope.recipients.len(), 2);
}

#[test]
fn authenticated_rate_limit_applies_at_mail() {
    let mut c = Client::with_policy(
        config(),
        ConnectionPolicy {
            tls: true,
            ..tls_policy()
        },
    );
    c.env.rate_limit = 2;
    c.send(&format!(
        "EHLO x\r\nAUTH PLAIN {}\r\n",
        b64("\0alice@example.test\0Secret123")
    ));
    let one = "MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\nm\r\n.\r\n";
    c.send(one);
    c.send(one);
    assert_eq!(
        c.send("MAIL FROM:<alice@example.test>\r\n"),
        "451 4.7.1 Message rate limit exceeded, try again later\r\n"
    );
    assert_eq!(c.delivered.len(), 2);
}

#[test]
fn spam_reports_are_taken_from_authenticated_users_only() {
    let mut outside = Client::new();
    let a =
        outside.send("EHLO x\r\nMAIL FROM:<alice@example.test>\r\nRCPT TO:<spam@example.test>\r\n");
    assert!(
        a.ends_with("550 5.7.1 Spam reports are accepted from authenticated users only\r\n"),
        "{a}"
    );
    let mut user = Client::with_policy(
        config(),
        ConnectionPolicy {
            tls: true,
            ..tls_policy()
        },
    );
    user.send(&format!(
        "EHLO x\r\nAUTH PLAIN {}\r\n",
        b64("\0alice@example.test\0Secret123")
    ));
    let a = user.send(
        "MAIL FROM:<alice@example.test>\r\nRCPT TO:<spam@example.test>\r\nDATA\r\nm\r\n.\r\n",
    );
    assert!(a.contains("250 2.1.5 Recipient ok\r\n"), "{a}");
    let to = &user.delivered[0].envelope.recipients[0];
    assert_eq!(
        (to.address.as_str(), to.account),
        ("spam@example.test", Some(3))
    );
}

#[test]
fn full_mailboxes_are_refused_at_rcpt_and_data() {
    let mut c = Client::new();
    let a = c.send("EHLO x\r\nMAIL FROM:<a@b.example> SIZE=400\r\nRCPT TO:<bob@example.test>\r\nRSET\r\nMAIL FROM:<a@b.example> SIZE=500\r\nRCPT TO:<bob@example.test>\r\nRCPT TO:<alice@example.test>\r\n");
    assert!(a.ends_with("250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.0.0 Ok\r\n250 2.1.0 Sender ok\r\n250 2.1.5 Recipient ok\r\n250 2.1.5 Recipient ok\r\n"), "{a}");
    let a = c.send("RSET\r\nMAIL FROM:<a@b.example> SIZE=501\r\nRCPT TO:<bob@example.test>\r\n");
    assert!(a.ends_with("452 4.2.2 Mailbox full\r\n"), "{a}");
    let cfg = Arc::new(SessionConfig {
        over_quota_permanent: true,
        ..(*config()).clone()
    });
    let mut c = Client::with_config(cfg);
    let a = c.send("EHLO x\r\nMAIL FROM:<a@b.example> SIZE=501\r\nRCPT TO:<bob@example.test>\r\n");
    assert!(a.ends_with("552 5.2.2 Mailbox full\r\n"), "{a}");
    // At the end of data the runtime finds the mailbox full: nothing is stored.
    c.session.feed(
        b"RSET\r\nMAIL FROM:<a@b.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nx\r\n.\r\n",
    );
    assert_eq!(c.session.step(&mut c.env), Step::Request(Request::Deliver));
    c.session.take_delivery(Vec::new()).unwrap();
    c.session.delivered(DeliveryOutcome::OverQuota);
    c.session.step(&mut c.env);
    assert!(c.output().ends_with("552 5.2.2 Mailbox full\r\n"));
}

/// Refused recipients count as client errors: a client probing for addresses (or for a
/// relay) is cut off after `max_bad_commands` refusals, like any other misbehaving one.
#[test]
fn address_probing_is_cut_off() {
    let mut c = Client::new();
    c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\n");
    let mut answer = String::new();
    for i in 0..30 {
        answer.push_str(&c.send(&format!("RCPT TO:<nobody{i}@example.test>\r\n")));
        if c.closed {
            break;
        }
    }
    assert!(c.closed, "{answer}");
    assert_eq!(codes(&answer).iter().filter(|c| **c == "550").count(), 20);
    assert!(
        answer.ends_with("421 4.7.0 Too many errors, closing connection\r\n"),
        "{answer}"
    );

    let mut c = Client::new();
    c.send("EHLO x\r\nMAIL FROM:<a@b.example>\r\n");
    for i in 0..30 {
        c.send(&format!("RCPT TO:<someone{i}@elsewhere.example>\r\n"));
    }
    assert!(c.closed, "relay probing must end the session");
}

/// A SIZE= declaration reserves no memory before the data arrives: thousands of sessions
/// declaring 50 MB must not cost 50 MB each.
#[test]
fn declared_size_reserves_nothing() {
    let cfg = Arc::new(SessionConfig {
        max_message_size: 50_000_000,
        ..(*config()).clone()
    });
    let mut c = Client::with_config(cfg);
    let a = c.send("EHLO x\r\nMAIL FROM:<a@b.example> SIZE=49000000\r\n");
    assert!(a.ends_with("250 2.1.0 Sender ok\r\n"), "{a}");
    let room = c.session.prepare_read();
    let buf = c.session.buffers().take_input(room);
    assert!(
        buf.capacity() < 1 << 20,
        "{} bytes reserved",
        buf.capacity()
    );
    c.session.buffers().input_filled(buf);
}

#[test]
fn a_new_ehlo_keeps_the_login() {
    let mut c = Client::with_policy(
        config(),
        ConnectionPolicy {
            tls: true,
            ..tls_policy()
        },
    );
    let a = c.send(&format!(
        "EHLO x\r\nAUTH PLAIN {}\r\n",
        b64("\0alice@example.test\0Secret123")
    ));
    assert!(
        a.ends_with("235 2.7.0 Authentication successful\r\n"),
        "{a}"
    );
    c.send("EHLO again\r\n");
    assert_eq!(
        c.send("MAIL FROM:<alice@example.test>\r\n"),
        "250 2.1.0 Sender ok\r\n"
    );
}
