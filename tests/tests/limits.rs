//! Resource caps against the real binary: the process-wide connection cap, the
//! unauthenticated session lifetime (a client trickling commands is still cut), and the
//! per-account login lockout that guesses spread over many addresses run into.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use gannet_tests::{connect_from, RawSmtp, Server};

/// A line-oriented client (IMAP or POP3) for exact control of the bytes.
struct Lines {
    reader: BufReader<TcpStream>,
}

impl Lines {
    fn open(stream: TcpStream) -> Lines {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Lines {
            reader: BufReader::new(stream),
        }
    }

    fn line(&mut self) -> Option<String> {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(n) if n > 0 => Some(line),
            _ => None,
        }
    }

    fn send(&mut self, text: &str) -> bool {
        self.reader.get_mut().write_all(text.as_bytes()).is_ok()
    }

    /// Reads until the tagged reply of `tag`; the whole answer.
    fn until_tagged(&mut self, tag: &str) -> String {
        let mut all = String::new();
        while let Some(line) = self.line() {
            all.push_str(&line);
            if line.starts_with(&format!("{tag} ")) {
                break;
            }
        }
        all
    }
}

/// Past `limits.max_connections` a new connection gets 421 at once, trusted clients
/// included; a place is free again when a connection ends.
#[test]
fn the_process_connection_cap_holds() {
    let mut server = Server::new("[limits]\nmax_connections = 3\n");
    server.start();
    // The start-up probe's connection holds a place until the server sees it close, so
    // each of the three is retried until it is greeted rather than refused.
    let open: Vec<RawSmtp> = (0..3).map(|_| greeted(server.smtp)).collect();
    let mut extra = Lines::open(TcpStream::connect(server.smtp).unwrap());
    let line = extra.line().unwrap_or_default();
    assert!(line.starts_with("421 4.3.2"), "{line}");
    assert!(extra.line().is_none(), "closed after the refusal");
    let mut imap = Lines::open(TcpStream::connect(server.imap).unwrap());
    let line = imap.line().unwrap_or_default();
    assert!(line.starts_with("* BYE"), "{line}");
    drop(open);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = Lines::open(TcpStream::connect(server.smtp).unwrap());
        if c.line().unwrap_or_default().starts_with("220") {
            break;
        }
        assert!(Instant::now() < deadline, "places never freed");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An SMTP connection that got its 220 greeting, retried for up to 10 s while the
/// process is still full.
fn greeted(addr: std::net::SocketAddr) -> RawSmtp {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let c = RawSmtp::connect(addr).unwrap();
        if c.greeting().starts_with("220") {
            return c;
        }
        assert!(Instant::now() < deadline, "never greeted");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A client that never logs in is closed after `limits.unauthenticated_lifetime`
/// however busy it keeps the line; on the MX port each accepted message restarts the
/// clock, so a sender that keeps delivering is never cut.
#[test]
fn unauthenticated_sessions_have_a_lifetime() {
    let mut server =
        Server::new("[limits]\nunauthenticated_lifetime = \"3s\"\nidle_timeout = \"60s\"\n");
    server.start();
    server.with_example_accounts();
    let started = Instant::now();
    let mut imap = Lines::open(connect_from(server.imap, "127.0.0.2").unwrap());
    imap.line();
    let mut pop3 = Lines::open(connect_from(server.pop3, "127.0.0.2").unwrap());
    pop3.line();
    let mut smtp = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    smtp.cmd("EHLO trickle.example").unwrap();
    let mut sender = RawSmtp::connect_from(server.smtp, "127.0.0.3").unwrap();
    sender.cmd("EHLO sender.example").unwrap();
    let (mut imap_open, mut pop3_open, mut smtp_open) = (true, true, true);
    for i in 0..8 {
        std::thread::sleep(Duration::from_millis(1000));
        if imap_open {
            imap.send(&format!("n{i} NOOP\r\n"));
            let answer = imap.until_tagged(&format!("n{i}"));
            imap_open = answer.contains(&format!("n{i} OK"));
        }
        if pop3_open {
            // NOOP before login is refused with -ERR; the lifetime's end says "timeout".
            pop3.send("NOOP\r\n");
            pop3_open = pop3.line().is_some_and(|l| !l.contains("timeout"));
        }
        if smtp_open {
            smtp_open = smtp.cmd("NOOP").is_ok_and(|r| r.starts_with("250"));
        }
        let reply = sender
            .send_message(
                "s@sender.example",
                "alice@example.test",
                b"Subject: steady\r\n\r\nhi\r\n",
            )
            .unwrap();
        assert!(
            reply.starts_with("250"),
            "the steady sender was cut: {reply}"
        );
    }
    let elapsed = started.elapsed();
    assert!(!imap_open, "IMAP session lived {elapsed:?}");
    assert!(!smtp_open, "SMTP session lived {elapsed:?}");
    assert!(!pop3_open, "POP3 session lived {elapsed:?}");
}

/// Wrong passwords for one account from several addresses, none of them reaching the
/// per-address limit, lock the account: even the right password is then refused.
#[test]
fn distributed_guessing_locks_the_account() {
    let mut server = Server::new(
        "[auth]\nplaintext_on_loopback = true\nmax_failures = 100\nmax_account_failures = 4\n",
    );
    server.start();
    server.with_example_accounts();
    let login = |source: &str, password: &str| -> String {
        let mut c = Lines::open(connect_from(server.imap, source).unwrap());
        c.line();
        c.send(&format!("a LOGIN alice@example.test {password}\r\n"));
        c.until_tagged("a")
    };
    for (i, source) in ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
        .iter()
        .enumerate()
    {
        let answer = login(source, &format!("Wrong{i}pass"));
        assert!(answer.contains("a NO"), "{answer}");
    }
    let answer = login("127.0.0.6", "Secret123");
    assert!(
        answer.contains("a NO") || answer.contains("* BYE Too many failed logins"),
        "the locked account let a login in: {answer}"
    );
    assert!(!answer.contains("a OK"), "{answer}");
    // Another account is not affected.
    let mut c = Lines::open(connect_from(server.imap, "127.0.0.6").unwrap());
    c.line();
    c.send("b LOGIN carol@example.test Secret123\r\n");
    assert!(c.until_tagged("b").contains("b OK"));
}
