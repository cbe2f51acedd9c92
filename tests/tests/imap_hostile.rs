//! IMAP against hostile clients, end to end over raw TCP (the point is the bytes): deep
//! nesting before and after login, LIST patterns that backtrack or are not ASCII, and
//! oversized literals and AUTHENTICATE lines before login. After each attack the server
//! must still answer: a fresh connection logs in and the SMTP listener greets.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use gannet_tests::{RawSmtp, Server};

/// A minimal IMAP client that sends exact bytes and reads lines.
struct RawImap {
    reader: BufReader<TcpStream>,
}

impl RawImap {
    fn connect(addr: SocketAddr) -> RawImap {
        let stream = TcpStream::connect(addr).expect("connect to IMAP");
        stream.set_nodelay(true).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut c = RawImap {
            reader: BufReader::new(stream),
        };
        let greeting = c.line();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        c
    }

    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// One line; "" when the server closed the connection (a reset too: a server that
    /// closes on unread input resets the connection).
    fn line(&mut self) -> String {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(_) => String::from_utf8_lossy(&line).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => String::new(),
            Err(e) => panic!("reading a reply: {e}"),
        }
    }

    /// Lines up to the one tagged `tag`, or to the end of the connection.
    fn until_tagged(&mut self, tag: &str) -> String {
        let mut all = String::new();
        loop {
            let line = self.line();
            all.push_str(&line);
            if line.is_empty() || line.starts_with(&format!("{tag} ")) {
                return all;
            }
        }
    }

    fn cmd(&mut self, tag: &str, command: &[u8]) -> String {
        let mut bytes = format!("{tag} ").into_bytes();
        bytes.extend_from_slice(command);
        bytes.extend_from_slice(b"\r\n");
        self.send(&bytes).expect("send a command");
        self.until_tagged(tag)
    }

    fn login(addr: SocketAddr) -> RawImap {
        let mut c = RawImap::connect(addr);
        let out = c.cmd("l1", b"LOGIN alice@example.test Secret123");
        assert!(out.contains("l1 OK"), "{out}");
        c
    }
}

fn server() -> Server {
    let mut s = Server::new("[auth]\nplaintext_on_loopback = true\n");
    s.start();
    s.with_example_accounts();
    s
}

/// The server still serves: IMAP logs in on a new connection, SMTP greets.
fn assert_serving(server: &Server) {
    let mut c = RawImap::login(server.imap);
    let out = c.cmd("z1", b"SELECT INBOX");
    assert!(out.contains("z1 OK"), "{out}");
    let mut smtp = RawSmtp::connect(server.smtp).expect("SMTP still answers");
    let r = smtp.cmd("EHLO check.example").unwrap();
    assert!(r.starts_with("250"), "{r}");
}

fn deep(prefix: &str, levels: usize) -> Vec<u8> {
    let mut b = prefix.as_bytes().to_vec();
    b.extend(std::iter::repeat_n(b'(', levels));
    b
}

#[test]
fn deep_nesting_before_and_after_login() {
    let server = server();
    // Before login: 60,000 levels fit the ordinary line limit but not the 8 KiB a command
    // may have before login; 8,000 fit and are refused for their depth or state.
    let mut c = RawImap::connect(server.imap);
    let out = c.cmd("a1", &deep("ID ", 60_000));
    assert!(out.contains("a1 BAD") || out.contains("* BYE"), "{out}");
    let mut c = RawImap::connect(server.imap);
    let out = c.cmd("a2", &deep("ID ", 8_000));
    assert!(out.starts_with("a2 BAD"), "{out}");
    let out = c.cmd("a3", &deep("SEARCH ", 8_000));
    assert!(out.starts_with("a3 BAD"), "{out}");
    let out = c.cmd("a4", b"NOOP");
    assert!(out.starts_with("a4 OK"), "{out}");
    // After login the command is parsed, and refused at 64 levels.
    let mut c = RawImap::login(server.imap);
    let out = c.cmd("b1", b"SELECT INBOX");
    assert!(out.contains("b1 OK"), "{out}");
    let out = c.cmd("b2", &deep("SEARCH ", 60_000));
    assert!(out.starts_with("b2 BAD"), "{out}");
    let mut nots = b"UID SEARCH ".to_vec();
    nots.extend(b"NOT ".repeat(15_000));
    nots.extend_from_slice(b"ALL");
    let out = c.cmd("b3", &nots);
    assert!(out.starts_with("b3 BAD"), "{out}");
    let out = c.cmd("b4", &deep("STATUS INBOX ", 60_000));
    assert!(out.starts_with("b4 BAD"), "{out}");
    let out = c.cmd("b5", b"NOOP");
    assert!(out.contains("b5 OK"), "{out}");
    assert_serving(&server);
}

#[test]
fn list_patterns_that_backtrack_or_are_not_ascii() {
    let server = server();
    let mut c = RawImap::login(server.imap);
    let out = c.cmd("a1", b"CREATE aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    assert!(out.contains("a1 OK"), "{out}");
    // Exponential for a backtracking matcher: 36 wildcards over a 30-character name.
    let pattern = format!("LIST \"\" \"{}x\"", "*%".repeat(18));
    let out = c.cmd("a2", pattern.as_bytes());
    assert!(out.ends_with("a2 OK LIST completed\r\n"), "{out}");
    let out = c.cmd("a3", "LIST \"\" \"abcdé%\"".as_bytes());
    assert!(out.contains("a3 OK"), "{out}");
    let out = c.cmd("a4", "LIST \"\" \"é%\"".as_bytes());
    assert!(out.contains("a4 OK"), "{out}");
    let out = c.cmd("a5", "LIST \"\" \"INBOé*\"".as_bytes());
    assert!(out.contains("a5 OK"), "{out}");
    // One recursion per pattern byte would overflow the stack here.
    let pattern = format!("LIST \"\" {}", "*".repeat(60_000));
    let out = c.cmd("a6", pattern.as_bytes());
    assert!(out.contains("a6 OK"), "{out}");
    assert_serving(&server);
}

/// The server's resident memory, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[test]
fn literals_before_login_are_bounded() {
    let server = server();
    // A synchronizing literal over 8 KiB: refused without a continuation.
    let mut c = RawImap::connect(server.imap);
    let out = c.cmd("a1", b"LOGIN {9000}");
    assert!(out.starts_with("a1 BAD"), "{out}");
    let out = c.cmd("a2", b"NOOP");
    assert!(out.starts_with("a2 OK"), "{out}");
    // A non-synchronizing one: BAD, and the connection ends (its bytes would follow).
    let mut c = RawImap::connect(server.imap);
    let out = c.cmd("a3", b"LOGIN {50000000+}");
    assert!(out.starts_with("a3 BAD"), "{out}");
    let bye = c.line();
    assert!(bye.starts_with("* BYE"), "{bye}");
    assert_eq!(c.line(), "", "closed");
    // Chained literals of 40 MB sent anyway: the server does not keep them.
    let before = rss_kib(server.pid());
    let mut c = RawImap::connect(server.imap);
    let chunk = vec![b'x'; 1 << 20];
    let _ = c.send(b"a4 LOGIN {20000000+}\r\n");
    for i in 0..40 {
        if i == 20 {
            let _ = c.send(b" {20000000+}\r\n");
        }
        if c.send(&chunk).is_err() {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    let after = rss_kib(server.pid());
    assert!(
        after < before + 16 * 1024,
        "resident memory grew from {before} KiB to {after} KiB"
    );
    let mut rest = Vec::new();
    let _ = c.reader.read_to_end(&mut rest);
    assert_serving(&server);
}

#[test]
fn authenticate_response_line_is_bounded() {
    let server = server();
    let mut c = RawImap::connect(server.imap);
    c.send(b"a1 AUTHENTICATE PLAIN\r\n").unwrap();
    assert_eq!(c.line(), "+ \r\n");
    // A megabyte and no end of line yet: refused once past 8 KiB.
    c.send(&vec![b'A'; 1 << 20]).unwrap();
    let out = c.until_tagged("a1");
    assert!(out.starts_with("a1 BAD"), "{out}");
    // The rest of that line is skipped, not taken for commands.
    c.send(b"AAAA\r\n").unwrap();
    let out = c.cmd("a2", b"NOOP");
    assert_eq!(out, "a2 OK NOOP completed\r\n");
    assert_serving(&server);
}
