//! Durability: kill -9 the server while clients send 2,000 messages; after a restart every
//! message that got its 250 is stored exactly once and nothing is corrupt.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gannet_tests::{strip_trace_headers, RawSmtp, Server};

const MESSAGES: usize = 2000;
const CLIENTS: usize = 4;

fn body(n: usize) -> Vec<u8> {
    let mut b =
        format!("Subject: crash-{n}\r\nMessage-ID: <{n}@crash.example>\r\n\r\n").into_bytes();
    for i in 0..(n % 7 + 1) * 20 {
        b.extend_from_slice(format!("line {i} of message {n}\r\n").as_bytes());
    }
    b
}

#[test]
fn kill_dash_nine_loses_no_acknowledged_message() {
    let mut server = Server::started();
    server.with_example_accounts();
    let addr = server.smtp;
    let next = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (next, acked) = (next.clone(), acked.clone());
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(120);
                let mut conn: Option<RawSmtp> = None;
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= MESSAGES || Instant::now() > deadline {
                        break;
                    }
                    if conn.is_none() {
                        // The server may be down: a message that finds no server is dropped,
                        // never retried (a retry could store it twice without a 250 lost).
                        conn = RawSmtp::connect(addr)
                            .ok()
                            .and_then(|mut c| c.cmd("EHLO crash.example").ok().map(|_| c));
                        if conn.is_none() {
                            std::thread::sleep(Duration::from_millis(20));
                            continue;
                        }
                    }
                    let c = conn.as_mut().unwrap();
                    match c.send_message("load@example.org", "alice@example.test", &body(n)) {
                        Ok(reply) if reply.starts_with("250") => acked.lock().unwrap().push(n),
                        _ => conn = None,
                    }
                }
            })
        })
        .collect();
    // Kill in the middle of the stream.
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 600 {
        assert!(Instant::now() < deadline, "clients too slow");
        std::thread::sleep(Duration::from_millis(1));
    }
    server.kill();
    let at_kill = acked.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(300));
    server.start();
    for c in clients {
        c.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() > at_kill,
        "clients sent to the restarted server too"
    );
    assert!(
        acked.len() < MESSAGES,
        "some messages must have met the dead server"
    );

    let list = server.mail_list("alice@example.test");
    let mut stored: HashMap<usize, Vec<(u32, u64)>> = HashMap::new();
    for (uid, size, subject) in &list {
        let n: usize = subject
            .strip_prefix("crash-")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("corrupt subject {subject:?} at UID {uid}"));
        stored.entry(n).or_default().push((*uid, *size));
    }
    for n in &acked {
        let copies = stored.get(n).map_or(0, Vec::len);
        assert_eq!(
            copies, 1,
            "message {n} got 250 but is stored {copies} times"
        );
    }
    for (n, copies) in &stored {
        assert_eq!(copies.len(), 1, "message {n} stored {} times", copies.len());
    }
    // UIDs are unique and increasing.
    let uids: Vec<u32> = list.iter().map(|m| m.0).collect();
    assert!(uids.windows(2).all(|w| w[0] < w[1]));
    // Every stored message is intact: check a spread of them byte for byte.
    for (uid, _, subject) in list.iter().step_by(list.len() / 40 + 1) {
        let n: usize = subject["crash-".len()..].parse().unwrap();
        let raw = server.mail_get("alice@example.test", *uid);
        let (_, b) = strip_trace_headers(&raw);
        assert_eq!(b, body(n), "message {n} (UID {uid}) corrupt");
    }
    let log = server.log();
    assert!(!log.contains("panicked"), "{log}");
}
