//! Unit tests of the IMAP session against hostile input, fed bytes as a client would send
//! them: deep nesting, oversized commands and literals before login, flag keywords that
//! are not atoms, and commands over a large mailbox (bodies asked for in batches).

use super::*;

use crate::store::{mail, Store, StoreOwner};

/// Plays the runtime: an INBOX of `count` messages of `size` bytes each (as the index
/// says; the bodies are short) in a store in memory, and a record of what was asked for.
struct Harness {
    s: Session,
    store: StoreOwner,
    /// The number of bodies each `Request::Blobs` asked for.
    blob_requests: Vec<usize>,
    commits: usize,
    closed: bool,
}

fn blob_of(uid: u32) -> BlobId {
    let mut id = [0; 32];
    id[..4].copy_from_slice(&uid.to_be_bytes());
    id
}

fn body_of(id: &BlobId) -> Vec<u8> {
    let uid = u32::from_be_bytes([id[0], id[1], id[2], id[3]]);
    format!("Subject: m{uid}\r\nFrom: a@b.example\r\n\r\nbody of {uid}\r\n").into_bytes()
}

impl Harness {
    fn new(config: ImapConfig, count: u32, size: u64) -> Harness {
        let mut s = Session::new(
            Arc::new(config),
            ImapPolicy {
                tls: true,
                starttls: true,
                auth_without_tls: false,
            },
            Vec::new(),
        );
        s.take_output();
        let store = Store::open_in_memory().unwrap();
        let mut c = Changes::new();
        c.create_mailbox(1, "INBOX", None, 6);
        for uid in 1..=count {
            c.append(
                1,
                Folder::inbox(),
                NewMail {
                    blob: blob_of(uid),
                    size,
                    internal_date: 0,
                    flags: 0,
                    keywords: Vec::new(),
                    spam_score: None,
                },
            );
        }
        store.store().commit_blocking(c).unwrap();
        Harness {
            s,
            store,
            blob_requests: Vec::new(),
            commits: 0,
            closed: false,
        }
    }

    fn standard() -> Harness {
        Harness::new(ImapConfig::default(), 2, 40)
    }

    /// Feeds `input`, runs the session until it waits, and returns what it wrote.
    fn run(&mut self, input: &[u8]) -> String {
        self.s.feed(input);
        loop {
            match self.s.step(0) {
                Step::NeedInput | Step::Idle => break,
                Step::Close => {
                    self.closed = true;
                    break;
                }
                Step::StartTls => self.s.tls_started(),
                Step::Authenticate => {
                    let c = self.s.take_credentials().unwrap();
                    let ok = c.password == "Secret123";
                    self.s.auth_result(if ok {
                        AuthOutcome::Success { account: 1 }
                    } else {
                        AuthOutcome::Failure
                    });
                }
                Step::Request(Request::Mailbox { account, name }) => {
                    let store = self.store.store();
                    let found = mail::mailbox(store, account, &name).unwrap().map(|m| {
                        let list = mail::list(store, account, m.id).unwrap();
                        (m, list)
                    });
                    self.s.answer(Answer::Mailbox(found));
                }
                Step::Request(Request::Blobs(ids)) => {
                    self.blob_requests.push(ids.len());
                    let map = ids
                        .into_iter()
                        .map(|id| (id, Arc::new(body_of(&id))))
                        .collect();
                    self.s.answer(Answer::Blobs(map));
                }
                Step::Request(Request::Write(changes)) => {
                    self.commits += 1;
                    let applied = self.store.store().commit_blocking(changes);
                    self.s.answer(Answer::Committed(applied));
                }
                Step::Request(Request::Mailboxes { .. }) => {
                    let meta = MailboxMeta {
                        id: 1,
                        uidvalidity: 7,
                        uidnext: 1,
                        highest_modseq: 0,
                        subscribed: true,
                        special_use: None,
                    };
                    let summary = |name: &str| MailboxSummary {
                        name: name.into(),
                        meta: meta.clone(),
                        messages: 0,
                        unseen: 0,
                        deleted: 0,
                        size: 0,
                    };
                    self.s.answer(Answer::Mailboxes {
                        list: vec![summary("INBOX"), summary("Archive/2024"), summary("é")],
                        used: 0,
                        limit: u64::MAX,
                    })
                }
            }
        }
        String::from_utf8_lossy(&self.s.take_output()).into_owned()
    }

    fn login_select(&mut self) {
        let out = self.run(b"l1 LOGIN alice Secret123\r\nl2 SELECT INBOX\r\n");
        assert!(out.contains("l2 OK [READ-WRITE]"), "{out}");
    }
}

/// The session answers `NOOP` with a tagged OK: it survived and is in sync.
fn assert_serving(h: &mut Harness) {
    let out = h.run(b"z9 NOOP\r\n");
    assert!(out.contains("z9 OK"), "{out}");
}

// ---- nesting ----

#[test]
fn deep_lists_before_login_get_bad() {
    let mut h = Harness::standard();
    // Balanced, within the 8 KiB allowed before login: refused for its depth.
    let line = format!("a1 ID {}{}\r\n", "(".repeat(4000), ")".repeat(4000));
    let out = h.run(line.as_bytes());
    assert!(out.starts_with("a1 BAD"), "{out}");
    assert_serving(&mut h);
}

#[test]
fn commands_not_allowed_before_login_are_refused_unparsed() {
    let mut h = Harness::standard();
    for cmd in [
        "SEARCH",
        "UID SEARCH",
        "STATUS INBOX",
        "SELECT INBOX",
        "FETCH 1",
    ] {
        let line = format!("a1 {cmd} {}\r\n", "(".repeat(8000));
        let out = h.run(line.as_bytes());
        assert_eq!(
            out, "a1 BAD Command not valid before authentication\r\n",
            "{cmd}"
        );
    }
    assert_serving(&mut h);
}

#[test]
fn deep_search_after_login_gets_bad() {
    let mut h = Harness::standard();
    h.login_select();
    for deep in [
        format!("a1 SEARCH {}\r\n", "(".repeat(60_000)),
        format!("a1 SEARCH {}ALL\r\n", "NOT ".repeat(15_000)),
        format!("a1 SEARCH {}ALL ALL\r\n", "OR ".repeat(20_000)),
        format!("a1 STATUS INBOX {}\r\n", "(".repeat(60_000)),
        format!("a1 LIST {}\r\n", "(".repeat(60_000)),
    ] {
        let out = h.run(deep.as_bytes());
        assert!(out.starts_with("a1 BAD"), "{out}");
    }
    assert_serving(&mut h);
}

// ---- LIST patterns ----

#[test]
fn list_patterns_are_answered() {
    let mut h = Harness::standard();
    h.login_select();
    let exponential = format!("a1 LIST \"\" \"{}x\"\r\n", "*%".repeat(18));
    let out = h.run(exponential.as_bytes());
    assert!(out.ends_with("a1 OK LIST completed\r\n"), "{out}");
    let out = h.run(b"a2 LIST \"\" \"abcd\xc3\xa9%\"\r\na3 LIST \"\" \"\xc3\xa9%\"\r\n");
    assert!(out.contains("a2 OK") && out.contains("a3 OK"), "{out}");
    let out = h.run(b"a4 LIST \"\" \"INBO\xc3\xa9\"\r\na5 LIST \"\" Archive/%\r\n");
    assert!(
        out.contains("a4 OK") && out.contains("\"Archive/2024\"\r\na5 OK"),
        "{out}"
    );
}

// ---- sizes before and after login ----

#[test]
fn sync_literal_over_the_limit_before_login_is_refused_unread() {
    let mut h = Harness::standard();
    let out = h.run(b"a1 LOGIN {9000}\r\n");
    assert!(out.starts_with("a1 BAD"), "{out}");
    assert!(!out.contains('+'), "no continuation: {out}");
    assert_serving(&mut h);
    // A small one still gets its continuation.
    let out = h.run(b"a2 LOGIN {5}\r\n");
    assert_eq!(out, "+ Ready for literal data\r\n");
    let out = h.run(b"alice {9}\r\nSecret123\r\n");
    assert!(out.contains("a2 OK"), "{out}");
}

#[test]
fn chained_literals_before_login_are_bounded_in_total() {
    let mut h = Harness::standard();
    let mut cmd = b"a1 LOGIN {5000+}\r\n".to_vec();
    cmd.extend_from_slice(&[b'x'; 5000]);
    cmd.extend_from_slice(b" {4000}\r\n");
    let out = h.run(&cmd);
    assert!(out.starts_with("a1 BAD"), "{out}");
    assert!(!out.contains('+'), "no continuation: {out}");
    assert_serving(&mut h);
}

#[test]
fn non_sync_literal_over_the_limit_before_login_closes() {
    let mut h = Harness::standard();
    let mut cmd = b"a1 LOGIN {50000000+}\r\n".to_vec();
    cmd.extend_from_slice(&[b'x'; 100_000]);
    let out = h.run(&cmd);
    assert!(out.starts_with("a1 BAD"), "{out}");
    assert!(out.contains("* BYE"), "{out}");
    assert!(h.closed);
}

#[test]
fn long_lines_before_login_are_refused() {
    let mut h = Harness::standard();
    let mut cmd = b"a1 LOGIN alice ".to_vec();
    cmd.extend_from_slice(&[b'x'; 9000]);
    let out = h.run(&cmd);
    assert!(out.contains("* BYE"), "{out}");
    assert!(h.closed);
}

#[test]
fn commands_after_login_are_bounded_by_the_message_size() {
    let config = ImapConfig {
        max_literal: 100_000,
        ..ImapConfig::default()
    };
    let mut h = Harness::new(config, 2, 40);
    h.login_select();
    // After login 8 KiB is no limit: a message-sized literal is fine.
    let mut cmd = b"a1 APPEND INBOX {20000+}\r\n".to_vec();
    cmd.extend_from_slice(&[b'x'; 20000]);
    cmd.extend_from_slice(b"\r\n");
    let out = h.run(&cmd);
    assert!(out.contains("a1 OK"), "{out}");
    // Literals that each fit but together pass the message size plus a little.
    let mut cmd = b"a2 ID ({90000+}\r\n".to_vec();
    cmd.extend_from_slice(&[b'x'; 90000]);
    cmd.extend_from_slice(b" {90000}\r\n");
    let out = h.run(&cmd);
    assert!(out.starts_with("a2 NO [TOOBIG]"), "{out}");
    assert!(!out.contains('+'), "no continuation: {out}");
    assert_serving(&mut h);
}

#[test]
fn authenticate_response_line_is_bounded() {
    let mut h = Harness::standard();
    let out = h.run(b"a1 AUTHENTICATE PLAIN\r\n");
    assert_eq!(out, "+ \r\n");
    let out = h.run(&[b'A'; 9000]);
    assert!(out.starts_with("a1 BAD"), "{out}");
    // The rest of the over-long line is skipped, not taken for commands.
    let out = h.run(b"AAAA\r\nz1 NOOP\r\n");
    assert_eq!(out, "z1 OK NOOP completed\r\n");
    // A whole over-long line at once.
    let out = h.run(b"a2 AUTHENTICATE PLAIN\r\n");
    assert_eq!(out, "+ \r\n");
    let mut line = vec![b'A'; 9000];
    line.extend_from_slice(b"\r\nz2 NOOP\r\n");
    let out = h.run(&line);
    assert!(
        out.starts_with("a2 BAD") && out.ends_with("z2 OK NOOP completed\r\n"),
        "{out}"
    );
}

// ---- flag keywords ----

#[test]
fn keywords_that_are_not_atoms_are_refused() {
    let mut h = Harness::standard();
    h.login_select();
    for cmd in [
        &b"a1 STORE 1 +FLAGS ({8}\r\nfoo\r\nbar)\r\n"[..],
        b"a1 STORE 1 +FLAGS (\"a\r\n",
        b"a1 STORE 1 +FLAGS (\"a b\")\r\n",
        b"a1 STORE 1 FLAGS {3}\r\na\nb\r\n",
        b"a1 APPEND INBOX ({3}\r\na\nb) {1}\r\nx\r\n",
    ] {
        let out = h.run(cmd);
        assert!(out.starts_with("a1 BAD"), "{out}");
        assert!(!out.contains("FETCH"), "{out}");
    }
    assert_eq!(h.commits, 0);
    let out = h.run(b"a2 STORE 1 +FLAGS ($Junk)\r\n");
    assert!(out.contains("* 1 FETCH (FLAGS ($Junk))"), "{out}");
}

// ---- large mailboxes ----

#[test]
fn fetch_asks_for_bodies_in_batches() {
    let mut h = Harness::new(ImapConfig::default(), 300, 100);
    h.login_select();
    let out = h.run(b"a1 FETCH 1:* BODY.PEEK[]\r\n");
    assert!(out.ends_with("a1 OK FETCH completed\r\n"), "{out}");
    assert_eq!(out.matches(" FETCH (BODY[] {").count(), 300);
    assert!(out.contains("* 300 FETCH (BODY[] {"));
    assert_eq!(h.blob_requests.iter().sum::<usize>(), 300);
    assert!(
        h.blob_requests.iter().all(|&n| n <= 64),
        "{:?}",
        h.blob_requests
    );
    // Marking \Seen is one commit at the end, whatever the number of batches.
    let out = h.run(b"a2 FETCH 1:* (FLAGS BODY[TEXT])\r\n");
    assert_eq!(out.matches("FLAGS (\\Seen)").count(), 300, "{out}");
    assert!(out.ends_with("a2 OK FETCH completed\r\n"));
    assert_eq!(h.commits, 1);
}

#[test]
fn fetch_batches_are_bounded_in_bytes() {
    // 3 MB each: at most two or three to a batch of 8 MB.
    let mut h = Harness::new(ImapConfig::default(), 20, 3_000_000);
    h.login_select();
    let out = h.run(b"a1 UID FETCH 1:* (UID BODY.PEEK[HEADER])\r\n");
    assert!(out.ends_with("a1 OK FETCH completed\r\n"), "{out}");
    assert_eq!(h.blob_requests.iter().sum::<usize>(), 20);
    assert!(
        h.blob_requests.iter().all(|&n| n <= 3),
        "{:?}",
        h.blob_requests
    );
}

#[test]
fn search_reads_bodies_in_batches() {
    let mut h = Harness::new(ImapConfig::default(), 300, 100);
    h.login_select();
    let out = h.run(b"a1 SEARCH TEXT \"body of 2\"\r\n");
    assert!(out.contains("* SEARCH 2 20 "), "{out}");
    assert!(out.ends_with("a1 OK SEARCH completed\r\n"), "{out}");
    assert_eq!(h.blob_requests.iter().sum::<usize>(), 300);
    assert!(
        h.blob_requests.iter().all(|&n| n <= 64),
        "{:?}",
        h.blob_requests
    );
    let out = h.run(b"a2 UID SEARCH NOT BODY \"of 1\" 1:20\r\n");
    assert!(out.contains("* SEARCH 2 3 4 5 6 7 8 9 20\r\n"), "{out}");
}
