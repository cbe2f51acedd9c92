//! Faults, end to end: a full disk (the data directory on a small tmpfs), kill -9 at
//! random moments under mixed SMTP and IMAP load, a thousand slow clients (slowloris), and
//! malformed TLS on every TLS port. Each asserts what a client sees (the replies), that the
//! server keeps serving, and that nothing acknowledged is lost or damaged.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gannet_tests::{
    connect_from, fd_count, python, strip_trace_headers, RawImap, RawSmtp, Server, Tmpfs,
};

/// Lets the tests log in over plain IMAP on loopback.
const PLAIN_LOGIN: &str = "[auth]\nplaintext_on_loopback = true\n";

/// A deterministic pseudo-random sequence (xorshift64*), so failures replay.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A message of about `size` bytes whose body is base64-like noise (as attachments are:
/// it does not compress), identified by its Subject.
fn noise_message(subject: &str, seed: u64, size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut m = format!(
        "From: <load@example.org>\r\nSubject: {subject}\r\nMessage-ID: <{subject}@faults.example>\r\n\r\n"
    )
    .into_bytes();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    while m.len() < size {
        for _ in 0..76 {
            m.push(ALPHABET[rng.below(64) as usize]);
        }
        m.extend_from_slice(b"\r\n");
    }
    m
}

// ---------------------------------------------------------------- disk full

const FILL_SIZE: usize = 512 * 1024;

fn fill_message(n: usize) -> Vec<u8> {
    noise_message(&format!("fill-{n}"), n as u64, FILL_SIZE)
}

/// Every message in alice's INBOX over IMAP, byte for byte: (n of `fill-n`, as sent) must
/// match `expected` exactly, each once.
fn check_mailbox_over_imap(server: &Server, expected: &[usize]) {
    let out = server.dir.path().join("fetched");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    python(
        r#"
import imaplib, os, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice@example.test', 'Secret123')
m.select('INBOX', readonly=True)
typ, data = m.uid('SEARCH', None, 'ALL')
for uid in data[0].split():
    typ, d = m.uid('FETCH', uid, '(BODY.PEEK[])')
    assert typ == 'OK', (typ, d)
    open(os.path.join(sys.argv[2], uid.decode()), 'wb').write(d[0][1])
m.logout()
"#,
        &[&server.imap.port().to_string(), out.to_str().unwrap()],
    );
    let mut found: HashMap<usize, u32> = HashMap::new();
    for entry in std::fs::read_dir(&out).unwrap() {
        let path = entry.unwrap().path();
        let stored = std::fs::read(&path).unwrap();
        // Delivered over SMTP: after the trace headers; appended: as it was.
        let sent = if stored.starts_with(b"Return-Path: ") {
            strip_trace_headers(&stored).1
        } else {
            &stored[..]
        };
        let subject = sent
            .split(|&b| b == b'\n')
            .find_map(|l| l.strip_prefix(b"Subject: fill-"))
            .unwrap_or_else(|| panic!("{}: no fill subject", path.display()));
        let n: usize = String::from_utf8_lossy(subject).trim().parse().unwrap();
        assert!(
            sent == fill_message(n).as_slice(),
            "message fill-{n} ({}) is damaged",
            path.display()
        );
        *found.entry(n).or_default() += 1;
    }
    let mut got: Vec<usize> = found.keys().copied().collect();
    got.sort_unstable();
    let mut want = expected.to_vec();
    want.sort_unstable();
    assert_eq!(
        got, want,
        "the mailbox holds other messages than those acknowledged"
    );
    assert!(found.values().all(|&c| c == 1), "a message is stored twice");
}

/// An IMAP APPEND of a large message; returns the tagged status ("OK", "NO", ...).
fn imap_append(server: &Server, n: usize) -> String {
    let file = server.dir.path().join("append.eml");
    std::fs::write(&file, fill_message(n)).unwrap();
    python(
        r#"
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice@example.test', 'Secret123')
typ, data = m.append('INBOX', None, None, open(sys.argv[2], 'rb').read())
print(typ, data)
"#,
        &[&server.imap.port().to_string(), file.to_str().unwrap()],
    )
}

#[test]
fn a_full_disk_refuses_with_452_keeps_what_it_acknowledged_and_recovers() {
    let mut server = Server::new(PLAIN_LOGIN);
    let Some(_tmpfs) = Tmpfs::mount(&server.data(), "64m") else {
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    };
    // Room to free later, taken before the server starts.
    let filler = server.data().join("filler");
    std::fs::write(&filler, vec![0u8; 24 << 20]).unwrap();
    server.start();
    server.with_example_accounts();

    let mut smtp = RawSmtp::connect(server.smtp).unwrap();
    smtp.cmd("EHLO faults.example").unwrap();
    let mut acked = Vec::new();
    let mut n = 0;
    // Fill until three refusals in a row; the engine may free some space meanwhile (its
    // logs once flushed), so fill again if an APPEND still finds room.
    let mut append_refused = false;
    for round in 0..5 {
        let mut refused = 0;
        while refused < 3 {
            assert!(n < 300, "the disk never filled ({} stored)", acked.len());
            let reply = smtp
                .send_message("load@example.org", "alice@example.test", &fill_message(n))
                .unwrap_or_else(|e| panic!("message {n}: connection lost ({e}): {}", server.log()));
            if reply.starts_with("250") {
                acked.push(n);
                refused = 0;
            } else {
                assert!(reply.starts_with("452 4.3.1"), "message {n}: {reply}");
                refused += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            n += 1;
        }
        let append = imap_append(&server, 10_000 + round);
        if append.starts_with("NO") {
            append_refused = true;
            break;
        }
        assert!(append.starts_with("OK"), "APPEND: {append}");
        acked.push(10_000 + round);
    }
    assert!(append_refused, "APPEND never refused on a full disk");
    assert!(acked.len() >= 10, "only {} stored before full", acked.len());
    // A user can still make room: deleting a message works on the full disk.
    let gone = python(
        r#"
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice@example.test', 'Secret123')
m.select('INBOX')
typ, d = m.uid('FETCH', '1', '(BODY.PEEK[HEADER.FIELDS (SUBJECT)])')
assert typ == 'OK', d
typ, d2 = m.uid('STORE', '1', '+FLAGS', '(\\Deleted)')
assert typ == 'OK', d2
typ, d3 = m.expunge()
assert typ == 'OK', d3
print(d[0][1].decode().split('fill-')[1].strip())
"#,
        &[&server.imap.port().to_string()],
    );
    let gone: usize = gone.trim().parse().unwrap();
    acked.retain(|&m| m != gone);
    // Nothing acknowledged is damaged, nothing refused is there.
    check_mailbox_over_imap(&server, &acked);

    // Space comes back: ingest resumes on the same server, on the same connection.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let reply = smtp
            .send_message("load@example.org", "alice@example.test", &fill_message(n))
            .unwrap();
        if reply.starts_with("250") {
            acked.push(n);
            n += 1;
            break;
        }
        assert!(reply.starts_with("452 4.3.1"), "message {n}: {reply}");
        assert!(
            Instant::now() < deadline,
            "still refusing 60 s after space was freed: {}",
            server.log()
        );
        n += 1;
        std::thread::sleep(Duration::from_millis(500));
    }
    for _ in 0..5 {
        let reply = smtp
            .send_message("load@example.org", "alice@example.test", &fill_message(n))
            .unwrap();
        assert!(
            reply.starts_with("250"),
            "message {n} after recovery: {reply}"
        );
        acked.push(n);
        n += 1;
    }
    let append = imap_append(&server, n);
    assert!(append.starts_with("OK"), "APPEND after recovery: {append}");
    acked.push(n);
    check_mailbox_over_imap(&server, &acked);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    server.terminate(Duration::from_secs(10));
}

// ---------------------------------------------------------------- kill -9

const KILLS: usize = 50;

/// What the clients were told, shared by the load threads.
#[derive(Default)]
struct Ledger {
    /// Subjects of messages that got their 250.
    acked: HashSet<String>,
    /// Subjects whose UID EXPUNGE got its OK.
    expunged: HashSet<String>,
    /// Subjects marked \Deleted whose expunge was not confirmed (the kill came first).
    uncertain: HashSet<String>,
}

/// SMTP ingest until the connection breaks (the kill).
fn ingest(addr: SocketAddr, cycle: usize, ledger: Arc<Mutex<Ledger>>) {
    let Ok(mut c) = RawSmtp::connect(addr) else {
        return;
    };
    if c.cmd("EHLO load.example").is_err() {
        return;
    }
    for i in 0.. {
        let subject = format!("k{cycle}-{i}");
        let body = format!(
            "Subject: {subject}\r\nMessage-ID: <{subject}@faults.example>\r\n\r\nbody of {subject}\r\n{}\r\n",
            "x".repeat(i % 13 * 40)
        );
        match c.send_message("load@example.org", "alice@example.test", body.as_bytes()) {
            Ok(r) if r.starts_with("250") => {
                ledger.lock().unwrap().acked.insert(subject);
            }
            Ok(r) => panic!("{subject}: {r}"),
            Err(_) => return,
        }
    }
}

/// IMAP flag changes and single-message expunges until the connection breaks.
fn churn(addr: SocketAddr, seed: u64, ledger: Arc<Mutex<Ledger>>) {
    let mut rng = Rng(seed | 1);
    let Ok(mut c) = RawImap::connect(addr) else {
        return;
    };
    let ok = |r: std::io::Result<(Vec<String>, String)>| match r {
        Ok((lines, status)) if status.starts_with("OK") => Some(lines),
        Ok((_, status)) => panic!("IMAP: {status}"),
        Err(_) => None,
    };
    if ok(c.cmd("LOGIN alice@example.test Secret123")).is_none()
        || ok(c.cmd("SELECT INBOX")).is_none()
    {
        return;
    }
    loop {
        let Some(lines) = ok(c.cmd("UID SEARCH ALL")) else {
            return;
        };
        let uids: Vec<u32> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("* SEARCH"))
            .flat_map(|l| l.split_whitespace().filter_map(|u| u.parse().ok()))
            .collect();
        if uids.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let uid = uids[rng.below(uids.len() as u64) as usize];
        let Some(lines) = ok(c.cmd(&format!(
            "UID FETCH {uid} (BODY.PEEK[HEADER.FIELDS (SUBJECT)])"
        ))) else {
            return;
        };
        let Some(subject) = lines
            .iter()
            .find_map(|l| l.strip_prefix("Subject: "))
            .map(str::to_string)
        else {
            continue; // Expunged meanwhile by nobody else: cannot happen, but harmless.
        };
        if rng.below(3) == 0 {
            ledger.lock().unwrap().uncertain.insert(subject.clone());
            if ok(c.cmd(&format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"))).is_none()
                || ok(c.cmd(&format!("UID EXPUNGE {uid}"))).is_none()
            {
                return;
            }
            let mut l = ledger.lock().unwrap();
            l.uncertain.remove(&subject);
            l.expunged.insert(subject);
        } else {
            let flag = ["\\Seen", "\\Flagged", "$Work"][rng.below(3) as usize];
            let op = if rng.below(2) == 0 { "+" } else { "-" };
            if ok(c.cmd(&format!("UID STORE {uid} {op}FLAGS ({flag})"))).is_none() {
                return;
            }
        }
    }
}

/// After a restart: every acknowledged message present once, every expunged one gone,
/// nothing twice, and the account's usage the sum of its messages' sizes.
fn check_after_restart(server: &Server, ledger: &Ledger, cycle: usize) {
    let list = server.mail_list("alice@example.test");
    let mut copies: HashMap<&str, usize> = HashMap::new();
    for (_, _, subject) in &list {
        *copies.entry(subject.as_str()).or_default() += 1;
    }
    for (subject, n) in &copies {
        assert_eq!(*n, 1, "cycle {cycle}: {subject} stored {n} times");
    }
    for subject in &ledger.acked {
        let n = copies.get(subject.as_str()).copied().unwrap_or(0);
        if ledger.expunged.contains(subject) {
            assert_eq!(n, 0, "cycle {cycle}: {subject} was expunged but is back");
        } else if !ledger.uncertain.contains(subject) {
            assert_eq!(n, 1, "cycle {cycle}: {subject} got 250 but is missing");
        }
    }
    let sizes: u64 = list.iter().map(|m| m.1).sum();
    let accounts = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    let used: u64 = accounts
        .lines()
        .find_map(|l| l.split_once("\talice@example.test\t"))
        .and_then(|(_, l)| l.split('\t').next())
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no usage for alice in {accounts}"));
    assert_eq!(
        used, sizes,
        "cycle {cycle}: usage is not the sum of the sizes"
    );
}

#[test]
fn kill_dash_nine_in_a_loop_under_mixed_load() {
    let started = Instant::now();
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    server.with_example_accounts();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(0x6a09_e667_f3bc_c908);
    for cycle in 0..KILLS {
        if cycle > 0 {
            server.start();
            check_after_restart(&server, &ledger.lock().unwrap(), cycle);
        }
        let (smtp, imap) = (server.smtp, server.imap);
        let load = [
            {
                let ledger = ledger.clone();
                std::thread::spawn(move || ingest(smtp, cycle, ledger))
            },
            {
                let ledger = ledger.clone();
                let seed = rng.next();
                std::thread::spawn(move || churn(imap, seed, ledger))
            },
        ];
        std::thread::sleep(Duration::from_millis(100 + rng.below(900)));
        server.kill();
        for t in load {
            t.join().expect("a load thread failed");
        }
    }
    server.start();
    let ledger = ledger.lock().unwrap();
    check_after_restart(&server, &ledger, KILLS);
    assert!(
        ledger.acked.len() >= 200,
        "only {} acked",
        ledger.acked.len()
    );
    assert!(
        ledger.expunged.len() >= 20,
        "only {} expunged",
        ledger.expunged.len()
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "{KILLS} kills in {:?}: {} acknowledged, {} expunged, {} uncertain",
        started.elapsed(),
        ledger.acked.len(),
        ledger.expunged.len(),
        ledger.uncertain.len()
    );
}

// ---------------------------------------------------------------- slowloris

const SLOW_IPS: usize = 200;
const SLOW_PER_IP: usize = 5;
/// The idle timeout in the test's configuration: longer than the slow clients' pace, so
/// only a limit on a whole request (not on silence) can end them.
const SLOW_IDLE: Duration = Duration::from_secs(15);
const SLOW_PACE: Duration = Duration::from_secs(10);

/// A complete, normal SMTP transaction; returns how long it took.
fn normal_transaction(server: &Server) -> Duration {
    let t = Instant::now();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO normal.example").unwrap();
    let r = c
        .send_message(
            "someone@example.org",
            "alice@example.test",
            b"Subject: normal\r\n\r\nhello\r\n",
        )
        .unwrap();
    assert!(r.starts_with("250"), "{r}");
    c.cmd("QUIT").unwrap();
    t.elapsed()
}

#[test]
fn a_thousand_slow_clients_neither_block_others_nor_stay_forever() {
    let mut server = Server::new(&format!(
        "[limits]\nidle_timeout = \"{}s\"\n",
        SLOW_IDLE.as_secs()
    ));
    server.start();
    server.with_example_accounts();
    let pid = server.pid();
    let baseline = fd_count(pid);
    // 200 addresses, 5 connections each (the per-address limit): 4 SMTP, 1 IMAP.
    let mut slow = Vec::new();
    for i in 0..SLOW_IPS {
        let source = format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250);
        for j in 0..SLOW_PER_IP {
            let port = if j == 0 { server.imap } else { server.smtp };
            let s = connect_from(port, &source)
                .unwrap_or_else(|e| panic!("connect from {source}: {e}"));
            s.set_nonblocking(true).unwrap();
            slow.push(s);
        }
    }
    let opened = Instant::now();
    // One byte each, every SLOW_PACE, spread evenly; on a thread of its own.
    let stop = Arc::new(AtomicBool::new(false));
    let closed = Arc::new(Mutex::new(0usize));
    let trickle = {
        let (stop, closed) = (stop.clone(), closed.clone());
        std::thread::spawn(move || {
            let step = SLOW_PACE / slow.len() as u32;
            let mut alive: Vec<Option<TcpStream>> = slow.into_iter().map(Some).collect();
            let mut sink = [0u8; 512];
            'outer: loop {
                for slot in alive.iter_mut() {
                    if stop.load(Ordering::Relaxed) {
                        break 'outer;
                    }
                    if let Some(s) = slot {
                        // Drain what the server said; EOF or an error: it closed us.
                        let gone = loop {
                            match s.read(&mut sink) {
                                Ok(0) => break true,
                                Ok(_) => continue,
                                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                    break false
                                }
                                Err(_) => break true,
                            }
                        };
                        if gone || s.write(b"E").is_err() {
                            *slot = None;
                            *closed.lock().unwrap() += 1;
                        }
                    }
                    std::thread::sleep(step);
                }
            }
        })
    };
    let total = SLOW_IPS * SLOW_PER_IP;
    let mut peak = 0;
    let mut worst = Duration::ZERO;
    // Normal clients are served while the slow ones hold their connections.
    while opened.elapsed() < SLOW_IDLE - Duration::from_secs(3) {
        peak = peak.max(fd_count(pid));
        worst = worst.max(normal_transaction(&server));
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        peak >= baseline + total * 9 / 10,
        "the slow clients were not all connected: {peak} descriptors, {baseline} before"
    );
    assert!(
        worst < Duration::from_secs(1),
        "a normal transaction took {worst:?}"
    );
    // A request must arrive whole within the idle timeout: each slow client is cut at
    // most SLOW_IDLE after its first byte, which it sent within SLOW_PACE.
    let limit = SLOW_IDLE + SLOW_PACE + Duration::from_secs(10);
    let mut now = fd_count(pid);
    while now > baseline + 20 && opened.elapsed() < limit {
        worst = worst.max(normal_transaction(&server));
        std::thread::sleep(Duration::from_millis(500));
        now = fd_count(pid);
    }
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    assert!(
        now <= baseline + 20,
        "{:?} after the slow clients connected the server still has {now} descriptors \
         ({baseline} before, {peak} at the peak); the clients saw {} of {total} closed",
        opened.elapsed(),
        closed.lock().unwrap()
    );
    assert!(
        worst < Duration::from_secs(1),
        "a normal transaction took {worst:?}"
    );
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
    eprintln!(
        "slowloris: peak {peak} descriptors ({baseline} idle), freed after {:?}; slowest normal transaction {worst:?}",
        opened.elapsed()
    );
}

// ---------------------------------------------------------------- malformed TLS

/// A real ClientHello, as Python's ssl module sends it.
fn client_hello() -> Vec<u8> {
    let hex = python(
        r#"
import ssl, sys
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
s = ctx.wrap_bio(i, o, server_hostname='mx.example.test')
try:
    s.do_handshake()
except ssl.SSLWantReadError:
    pass
sys.stdout.write(o.read().hex())
"#,
        &[],
    );
    (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// Bytes that are not a valid ClientHello, by name; `true`: the client then closes its
/// side (otherwise it waits for the server to give up).
fn malformed(hello: &[u8]) -> Vec<(&'static str, Vec<u8>, bool)> {
    let mut rng = Rng(0xbb67_ae85_84ca_a73b);
    let garbage: Vec<u8> = (0..600).map(|_| rng.next() as u8).collect();
    let mut bad_length = hello.to_vec();
    bad_length[6..9].copy_from_slice(&[0xff, 0xff, 0xff]);
    let mut bad_version = hello.to_vec();
    bad_version[9..11].copy_from_slice(&[0x7f, 0x7f]);
    let mut oversized = vec![0x16, 0x03, 0x01, 0xff, 0xff];
    oversized.extend_from_slice(&garbage[..100]);
    let mut sslv2 = vec![
        0x80, 0x2e, 0x01, 0x00, 0x02, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10,
    ];
    sslv2.extend_from_slice(&garbage[..40]);
    let mut hello_twice = hello.to_vec();
    hello_twice.extend_from_slice(hello);
    let mut alert_first = vec![0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28];
    alert_first.extend_from_slice(hello);
    vec![
        ("garbage", garbage.clone(), false),
        ("http", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(), false),
        ("truncated hello", hello[..hello.len() / 2].to_vec(), true),
        ("record header only", hello[..5].to_vec(), true),
        ("handshake length too large", bad_length, true),
        ("unknown version in hello", bad_version, true),
        ("oversized record", oversized, false),
        ("sslv2 hello", sslv2, false),
        (
            "empty records",
            [0x16, 0x03, 0x01, 0x00, 0x00].repeat(64),
            true,
        ),
        ("hello twice", hello_twice, false),
        ("alert before hello", alert_first, false),
    ]
}

/// Reads one line byte by byte (so no TLS byte after it is consumed).
fn read_line(s: &mut TcpStream) -> String {
    let mut line = Vec::new();
    let mut b = [0u8];
    while s.read(&mut b).unwrap_or(0) == 1 {
        line.push(b[0]);
        if b[0] == b'\n' {
            break;
        }
    }
    String::from_utf8_lossy(&line).into_owned()
}

#[derive(Clone, Copy, Debug)]
enum Start {
    Implicit,
    SmtpStarttls,
    ImapStarttls,
    Pop3Stls,
}

/// Connects and, for STARTTLS ports, asks to start TLS; returns the stream ready for the
/// client's first TLS byte.
fn tls_ready(addr: SocketAddr, start: Start) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut expect = |send: &[u8], want: &str| {
        if !send.is_empty() {
            s.write_all(send).unwrap();
        }
        loop {
            let line = read_line(&mut s);
            assert!(!line.is_empty(), "{start:?}: closed before TLS");
            let last = line.len() < 4 || line.as_bytes()[3] != b'-';
            if line.starts_with(want) && last {
                return;
            }
            assert!(
                line.starts_with('*') || line.starts_with("250-") || line.starts_with("220-"),
                "{start:?}: {line}"
            );
        }
    };
    match start {
        Start::Implicit => {}
        Start::SmtpStarttls => {
            expect(b"", "220");
            expect(b"EHLO tls.example\r\n", "250");
            expect(b"STARTTLS\r\n", "220");
        }
        Start::ImapStarttls => {
            expect(b"", "* OK");
            expect(b"a STARTTLS\r\n", "a OK");
        }
        Start::Pop3Stls => {
            expect(b"", "+OK");
            expect(b"STLS\r\n", "+OK");
        }
    }
    s
}

/// Waits for the server to close the connection; how long it took (None: still open at
/// `limit`).
fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(t.elapsed())?;
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut buf) {
            Ok(0) => return Some(t.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return None
            }
            Err(_) => return Some(t.elapsed()),
        }
    }
}

/// A normal TLS client on every TLS port (implicit and STARTTLS) with Python's ssl.
fn normal_tls_clients(server: &Server) {
    let out = python(
        r#"
import imaplib, poplib, smtplib, socket, ssl, sys
smtp, submissions, imap, imaps, pop3, pop3s, cafile = sys.argv[1:]
ctx = ssl.create_default_context(cafile=cafile)
ctx.check_hostname = False
for port in (submissions, imaps, pop3s):
    s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(port)), timeout=10))
    print(port, s.recv(200)[:4])
    s.close()
c = smtplib.SMTP('127.0.0.1', int(smtp), timeout=10)
c.starttls(context=ctx)
print('smtp', c.ehlo()[0])
c.quit()
m = imaplib.IMAP4('127.0.0.1', int(imap))
m.starttls(ssl_context=ctx)
print('imap', m.capability()[0])
m.logout()
p = poplib.POP3('127.0.0.1', int(pop3), timeout=10)
p.stls(context=ctx)
print('pop3', p.capa() is not None)
p.quit()
"#,
        &[
            &server.smtp.port().to_string(),
            &server.submissions.port().to_string(),
            &server.imap.port().to_string(),
            &server.imaps.port().to_string(),
            &server.pop3.port().to_string(),
            &server.pop3s.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    let greetings = [
        (server.submissions, "b'220 '"),
        (server.imaps, "b'* OK'"),
        (server.pop3s, "b'+OK '"),
    ];
    for (port, greeting) in greetings {
        assert!(
            out.contains(&format!("{} {greeting}", port.port())),
            "{out}"
        );
    }
    for want in ["smtp 250", "imap OK", "pop3 True"] {
        assert!(out.contains(want), "{want}: {out}");
    }
}

/// The test's idle timeout: a client that stalls in the middle of a handshake is cut by it.
const TLS_IDLE: Duration = Duration::from_secs(5);

#[test]
fn malformed_tls_closes_the_connection_and_the_server_serves_on() {
    let mut server = Server::new(&format!(
        "[limits]\nidle_timeout = \"{}s\"\n",
        TLS_IDLE.as_secs()
    ));
    server.start();
    let hello = client_hello();
    assert_eq!(hello[0], 0x16, "not a TLS record: {hello:02x?}");
    let targets = [
        (server.submissions, Start::Implicit),
        (server.imaps, Start::Implicit),
        (server.pop3s, Start::Implicit),
        (server.smtp, Start::SmtpStarttls),
        (server.submission, Start::SmtpStarttls),
        (server.imap, Start::ImapStarttls),
        (server.pop3, Start::Pop3Stls),
    ];
    for (name, bytes, half_close) in malformed(&hello) {
        for (addr, start) in targets {
            let mut s = tls_ready(addr, start);
            // The server may close before everything is written: that is the point.
            let _ = s.write_all(&bytes);
            if half_close {
                let _ = s.shutdown(Shutdown::Write);
            }
            let took = wait_closed(&mut s, Duration::from_secs(3));
            assert!(
                took.is_some(),
                "{name} on {start:?} ({addr}): still open after 3 s"
            );
        }
    }
    // Stalled halfway through a hello: cut by the idle timeout, all ports at once.
    let stalled: Vec<_> = targets
        .iter()
        .map(|&(addr, start)| {
            let hello = hello.clone();
            std::thread::spawn(move || {
                let mut s = tls_ready(addr, start);
                s.write_all(&hello[..hello.len() / 2]).unwrap();
                let took = wait_closed(&mut s, TLS_IDLE + Duration::from_secs(5));
                (start, addr, took)
            })
        })
        .collect();
    for t in stalled {
        let (start, addr, took) = t.join().unwrap();
        assert!(
            took.is_some(),
            "a hello stalled halfway on {start:?} ({addr}) still open after {:?}",
            TLS_IDLE + Duration::from_secs(5)
        );
    }
    normal_tls_clients(&server);
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}
