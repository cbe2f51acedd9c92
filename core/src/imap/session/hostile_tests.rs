//! Unit tests of the IMAP session against hostile input, fed bytes as a client would send
//! them: deep nesting, oversized commands and literals before login, flag keywords that
//! are not atoms, and commands over a large mailbox (bodies asked for in batches).

use super::test_support::Harness;
use super::ImapConfig;

/// An INBOX of `count` messages of `size` bytes each (as the index says; the bodies are
/// short: message `uid` is "body of {uid}"), and mailboxes Archive/2024 and é.
fn inbox_of(config: ImapConfig, count: u32, size: u64) -> Harness {
    let h = Harness::empty(config, true);
    for name in ["INBOX", "Archive/2024", "é"] {
        h.create_mailbox(name);
    }
    for uid in 1..=count {
        let body = format!("Subject: m{uid}\r\nFrom: a@b.example\r\n\r\nbody of {uid}\r\n");
        assert_eq!(h.deliver_sized("INBOX", body.as_bytes(), size, 0), uid);
    }
    h.forget_recent("INBOX");
    h
}

fn standard() -> Harness {
    inbox_of(ImapConfig::default(), 2, 40)
}

/// The session answers `NOOP` with a tagged OK: it survived and is in sync.
fn assert_serving(h: &mut Harness) {
    let out = h.run(b"z9 NOOP\r\n");
    assert!(out.contains("z9 OK"), "{out}");
}

// ---- nesting ----

#[test]
fn deep_lists_before_login_get_bad() {
    let mut h = standard();
    // Balanced, within the 8 KiB allowed before login: refused for its depth.
    let line = format!("a1 ID {}{}\r\n", "(".repeat(4000), ")".repeat(4000));
    let out = h.run(line.as_bytes());
    assert!(out.starts_with("a1 BAD"), "{out}");
    assert_serving(&mut h);
}

#[test]
fn commands_not_allowed_before_login_are_refused_unparsed() {
    let mut h = standard();
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
    let mut h = standard();
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
    let mut h = standard();
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
    let mut h = standard();
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
    let mut h = standard();
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
    let mut h = standard();
    let mut cmd = b"a1 LOGIN {50000000+}\r\n".to_vec();
    cmd.extend_from_slice(&[b'x'; 100_000]);
    let out = h.run(&cmd);
    assert!(out.starts_with("a1 BAD"), "{out}");
    assert!(out.contains("* BYE"), "{out}");
    assert!(h.closed);
}

#[test]
fn long_lines_before_login_are_refused() {
    let mut h = standard();
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
    let mut h = inbox_of(config, 2, 40);
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
    let mut h = standard();
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
    let mut h = standard();
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
    let mut h = inbox_of(ImapConfig::default(), 300, 100);
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
    let mut h = inbox_of(ImapConfig::default(), 20, 3_000_000);
    h.login_select();
    let out = h.run(b"a1 UID FETCH 1:* (UID BODY.PEEK[TEXT])\r\n");
    assert!(out.ends_with("a1 OK FETCH completed\r\n"), "{out}");
    assert_eq!(h.blob_requests.iter().sum::<usize>(), 20);
    assert!(
        h.blob_requests.iter().all(|&n| n <= 3),
        "{:?}",
        h.blob_requests
    );
    // Header blocks come many to a batch, but a message without one comes whole: the
    // same bound in bytes.
    let out = h.run(b"a2 UID FETCH 1:* (UID BODY.PEEK[HEADER])\r\n");
    assert!(out.ends_with("a2 OK FETCH completed\r\n"), "{out}");
    assert_eq!(h.header_requests.iter().sum::<usize>(), 20);
    assert!(
        h.header_requests.iter().all(|&n| n <= 3),
        "{:?}",
        h.header_requests
    );
}

#[test]
fn search_reads_bodies_in_batches() {
    let mut h = inbox_of(ImapConfig::default(), 300, 100);
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
    // A header key reads header blocks only, up to 1,024 at a time.
    let before = h.blob_requests.len();
    let out = h.run(b"a3 SEARCH SUBJECT \"nothing like it\"\r\n");
    assert!(out.ends_with("a3 OK SEARCH completed\r\n"), "{out}");
    assert_eq!(h.blob_requests.len(), before);
    assert_eq!(h.header_requests, [300]);
}
