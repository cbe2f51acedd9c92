//! The mail store under racing writers, end to end: several IMAP sessions of one account
//! and SMTP delivery at once, over a thousand rounds of EXPUNGE, STORE, COPY, MOVE,
//! APPEND, RENAME, SUBSCRIBE, CREATE and DELETE on the same messages and mailboxes.
//!
//! Every session records what it sees: which Message-ID each (mailbox, UIDVALIDITY, UID)
//! holds, and which UIDs its own EXPUNGE or MOVE removed. A UID that shows another message
//! later (overwritten, or reused) or comes back after its expunge (resurrected) fails the
//! test; at the end `gannet check` must find the counters and UIDs consistent, with the
//! server running, and again after a `kill -9` in the middle of a second run.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gannet_tests::{RawImap, RawSmtp, Server};

const PLAIN_LOGIN: &str = "[auth]\nplaintext_on_loopback = true\n";
const BOXES: [&str; 3] = ["INBOX", "A", "B"];
/// Rounds per IMAP session; four sessions.
const ROUNDS: usize = 300;
const SESSIONS: usize = 4;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

/// What all sessions saw, shared.
#[derive(Default)]
struct Seen {
    /// (mailbox, UIDVALIDITY, UID) -> Message-ID.
    holds: HashMap<(String, u32, u32), String>,
    /// (mailbox, UIDVALIDITY, UID) removed by an EXPUNGE or MOVE that said so, with the
    /// time (`clock`) its removal was confirmed.
    removed: HashMap<(String, u32, u32), u64>,
    /// Counts confirmed removals.
    clock: u64,
    violations: Vec<String>,
}

impl Seen {
    /// A listing loaded after `epoch` (the clock when its SELECT was sent) shows `uid`:
    /// wrong if its removal was confirmed before then (a later one may not show yet:
    /// a session's view is the mailbox as it was at SELECT).
    fn saw(&mut self, epoch: u64, mailbox: &str, validity: u32, uid: u32, id: &str) {
        let key = (mailbox.to_string(), validity, uid);
        if self.removed.get(&key).is_some_and(|at| *at <= epoch) {
            self.violations.push(format!(
                "{mailbox} UID {uid} came back after its expunge ({id})"
            ));
        }
        match self.holds.get(&key) {
            Some(before) if before != id => self.violations.push(format!(
                "{mailbox} UID {uid} held {before}, now {id}: overwritten or reused"
            )),
            Some(_) => {}
            None => {
                self.holds.insert(key, id.to_string());
            }
        }
    }
}

fn login(server: &Server) -> RawImap {
    let mut c = RawImap::connect(server.imap).expect("connect");
    let (_, ok) = c.cmd("LOGIN alice@example.test Secret123").unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    c
}

/// The UIDVALIDITY in a SELECT's untagged lines.
fn validity(lines: &[String]) -> Option<u32> {
    lines.iter().find_map(|l| {
        let at = l.find("[UIDVALIDITY ")? + 13;
        l.get(at..)?.split(']').next()?.parse().ok()
    })
}

/// `* n FETCH (UID u BODY[HEADER.FIELDS (MESSAGE-ID)] {k}` then `Message-ID: <...>`:
/// every UID in order, with its Message-ID when the body could still be read (another
/// session may have expunged it since this one's view was loaded).
fn uid_ids(lines: &[String]) -> Vec<(u32, Option<String>)> {
    let mut out: Vec<(u32, Option<String>)> = Vec::new();
    for l in lines {
        if l.starts_with("* ") && l.contains(" FETCH (UID ") {
            if let Some(uid) = l
                .split("UID ")
                .nth(1)
                .and_then(|r| r.split(' ').next())
                .and_then(|u| u.parse().ok())
            {
                out.push((uid, None));
            }
        } else if let (Some(last), Some(id)) = (out.last_mut(), l.strip_prefix("Message-ID: ")) {
            last.1.get_or_insert_with(|| id.trim().to_string());
        }
    }
    out
}

/// The UIDs an EXPUNGE removed are not named by number in the reply (sequence numbers
/// are); the session lists before and after instead.
fn listing(c: &mut RawImap) -> Vec<(u32, Option<String>)> {
    let (lines, ok) = c
        .cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        .unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    uid_ids(&lines)
}

/// One session's rounds; `stop` ends it early (the kill).
fn session(server: &Server, n: usize, seen: &Mutex<Seen>, stop: &AtomicBool, rounds: &AtomicUsize) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (n as u64 + 1));
    let Ok(mut c) = RawImap::connect(server.imap) else {
        return;
    };
    if c.cmd("LOGIN alice@example.test Secret123").is_err() {
        return;
    }
    let mut appended = 0;
    for _ in 0..ROUNDS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mailbox = BOXES[rng.below(3) as usize];
        let epoch = seen.lock().unwrap().clock;
        let Ok((lines, ok)) = c.cmd(&format!("SELECT {mailbox}")) else {
            return;
        };
        let Some(valid) = validity(&lines).filter(|_| ok.starts_with("OK")) else {
            continue;
        };
        let Ok((lines, _)) = c.cmd("UID FETCH 1:* (UID BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)])")
        else {
            return;
        };
        let before = uid_ids(&lines);
        {
            let mut s = seen.lock().unwrap();
            for (uid, id) in &before {
                if let Some(id) = id {
                    s.saw(epoch, mailbox, valid, *uid, id);
                }
            }
        }
        let other = BOXES[rng.below(3) as usize];
        let command = match rng.below(11) {
            0 | 1 => "STORE 1:4 +FLAGS (\\Deleted)".to_string(),
            2 => "STORE 1:* -FLAGS (\\Deleted)".to_string(),
            3 => "STORE 2:6 +FLAGS (\\Seen $Race)".to_string(),
            4 | 5 => "EXPUNGE".to_string(),
            6 => format!("COPY 1:2 {other}"),
            7 => format!("MOVE 1:2 {other}"),
            8 => {
                appended += 1;
                let body = format!(
                    "Message-ID: <append-{n}-{appended}@race>\r\nSubject: a\r\n\r\nappended\r\n"
                );
                format!("APPEND {other} {{{}+}}\r\n{body}", body.len())
            }
            9 => ["RENAME C D", "RENAME D C", "SUBSCRIBE C", "UNSUBSCRIBE D"]
                [rng.below(4) as usize]
                .to_string(),
            _ => {
                ["CREATE E", "DELETE E", "FETCH 1:3 BODY[TEXT]"][rng.below(3) as usize].to_string()
            }
        };
        let Ok((lines, ok)) = c.cmd(&command) else {
            return;
        };
        // A message number beyond the mailbox gets BAD (RFC 9051 9): allowed when the
        // set went past what this client had been shown.
        let beyond_known = command
            .split_whitespace()
            .nth(1)
            .and_then(|set| set.rsplit(':').next())
            .and_then(|last| last.parse::<usize>().ok())
            .is_some_and(|last| last > before.len());
        let refused_range = ok.contains("Message number beyond the mailbox") && beyond_known;
        if ok.starts_with("BAD") && !refused_range {
            seen.lock()
                .unwrap()
                .violations
                .push(format!("{command}: {ok}"));
        }
        if (command == "EXPUNGE" || command.starts_with("MOVE")) && ok.starts_with("OK") {
            // Sequence numbers of EXPUNGE lines, in the order given: map them to UIDs
            // through the listing before (each line shifts the later ones).
            let mut uids: Vec<u32> = before.iter().map(|(u, _)| *u).collect();
            let mut s = seen.lock().unwrap();
            for l in &lines {
                if let Some(seq) = l
                    .strip_prefix("* ")
                    .and_then(|r| r.strip_suffix(" EXPUNGE"))
                    .and_then(|n| n.parse::<usize>().ok())
                {
                    // Lines for messages this session had not listed yet (arrived
                    // meanwhile) cannot be told apart: only count those listed.
                    if seq >= 1 && seq <= uids.len() {
                        let uid = uids.remove(seq - 1);
                        s.clock += 1;
                        let at = s.clock;
                        s.removed.insert((mailbox.to_string(), valid, uid), at);
                    }
                }
            }
        }
        rounds.fetch_add(1, Ordering::Relaxed);
    }
    let _ = c.cmd("LOGOUT");
}

/// Delivers messages to alice until `stop`; returns how many got 250.
fn deliver(server: &Server, stop: &AtomicBool, tag: &str) -> usize {
    let mut sent = 0;
    let Ok(mut smtp) = RawSmtp::connect(server.smtp) else {
        return 0;
    };
    if smtp.cmd("EHLO race.example").is_err() {
        return 0;
    }
    while !stop.load(Ordering::Relaxed) && sent < 2000 {
        let body = format!("Message-ID: <smtp-{tag}-{sent}@race>\r\nSubject: s\r\n\r\nhi\r\n");
        match smtp.send_message("load@example.org", "alice@example.test", body.as_bytes()) {
            Ok(reply) if reply.starts_with("250") => sent += 1,
            _ => break,
        }
    }
    sent
}

/// Runs the sessions and the SMTP sender; with `kill_after`, kills the server then.
fn race(server: &Server, tag: &str, kill_after: Option<Duration>) -> (usize, Seen) {
    let seen = Mutex::new(Seen::default());
    let stop = AtomicBool::new(false);
    let rounds = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let server_ref = server;
        let sender = scope.spawn(|| deliver(server_ref, &stop, tag));
        let sessions: Vec<_> = (0..SESSIONS)
            .map(|n| {
                let (seen, stop, rounds) = (&seen, &stop, &rounds);
                scope.spawn(move || session(server_ref, n, seen, stop, rounds))
            })
            .collect();
        if let Some(after) = kill_after {
            std::thread::sleep(after);
            // SAFETY: SIGKILL to the server we started.
            unsafe { libc::kill(server_ref.pid() as i32, libc::SIGKILL) };
        }
        for s in sessions {
            s.join().unwrap();
        }
        stop.store(true, Ordering::Relaxed);
        sender.join().unwrap();
    });
    (rounds.into_inner(), seen.into_inner().unwrap())
}

fn check(server: &Server) -> String {
    let out = server.gannet(&["check"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "gannet check: {text}");
    text
}

#[test]
fn racing_sessions_never_resurrect_overwrite_or_miscount() {
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    server.with_example_accounts();
    let mut c = login(&server);
    for name in ["A", "B", "C"] {
        let (_, ok) = c.cmd(&format!("CREATE {name}")).unwrap();
        assert!(ok.starts_with("OK"), "{ok}");
    }
    drop(c);
    let started = Instant::now();
    let (rounds, seen) = race(&server, "one", None);
    assert!(
        seen.violations.is_empty(),
        "{} violations, first: {:?}",
        seen.violations.len(),
        &seen.violations[..seen.violations.len().min(5)]
    );
    assert!(rounds >= 1000, "only {rounds} rounds");
    assert!(!seen.removed.is_empty() && seen.holds.len() > 50);
    // The listing after the race agrees with what was seen.
    let mut c = login(&server);
    let mut final_seen = Seen {
        removed: seen.removed.clone(),
        holds: seen.holds.clone(),
        clock: seen.clock,
        ..Seen::default()
    };
    let epoch = final_seen.clock;
    for mailbox in BOXES {
        let (lines, _) = c.cmd(&format!("SELECT {mailbox}")).unwrap();
        let valid = validity(&lines).unwrap();
        for (uid, id) in listing(&mut c) {
            let id = id.unwrap_or_else(|| format!("no body for UID {uid}"));
            final_seen.saw(epoch, mailbox, valid, uid, &id);
        }
    }
    assert!(
        final_seen.violations.is_empty(),
        "{:?}",
        final_seen.violations
    );
    drop(c);
    let report = check(&server);
    assert!(report.contains("consistent"), "{report}");
    // Usage as the account list shows it: the sum of the stored sizes, never negative.
    let accounts = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(!accounts.contains("\t-"), "{accounts}");
    eprintln!(
        "{rounds} rounds, {} UIDs seen, {} removed, in {:?}",
        seen.holds.len(),
        seen.removed.len(),
        started.elapsed()
    );

    // Again, killed in the middle: the store opens consistent.
    let (_, killed) = race(&server, "two", Some(Duration::from_millis(1500)));
    assert!(killed.violations.is_empty(), "{:?}", killed.violations);
    server.kill();
    let report = check(&server);
    assert!(report.contains("consistent"), "{report}");
    server.start();
    let mut c = login(&server);
    let (_, ok) = c.cmd("SELECT INBOX").unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
}
