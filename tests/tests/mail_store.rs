//! The mail store's rules seen from outside: special-use folders cannot be deleted and are
//! found by their attribute (a renamed Junk still gets spam), deleted mail gives its
//! space back, and `gannet check` finds a store consistent.

use std::path::Path;

use gannet_tests::{RawImap, RawSmtp, Server};

const PLAIN_LOGIN: &str = "[auth]\nplaintext_on_loopback = true\n";

/// Seven points with the default rules: spam at the high level (5).
const SPAMMY: &str = "From: Lucky <win@prizes.example>\r\nTo: you@example.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: news\r\n\r\nYou have won the lottery!\r\nClaim your prize and buy viagra.\r\n";

fn login(server: &Server, user: &str) -> RawImap {
    let mut c = RawImap::connect(server.imap).expect("connect");
    let (_, ok) = c.cmd(&format!("LOGIN {user} Secret123")).unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    c
}

fn in_box(server: &Server, address: &str, mailbox: &str) -> usize {
    let out = server.admin(&["mail", "list", address, "--mailbox", mailbox]);
    String::from_utf8(out).unwrap().lines().count()
}

#[test]
fn junk_cannot_be_deleted_and_a_renamed_junk_still_gets_spam() {
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    server.with_example_accounts();
    server.admin(&[
        "account",
        "set",
        "carol@example.test",
        "--spam-level",
        "high",
    ]);
    let mut c = login(&server, "carol@example.test");
    for special in ["Junk", "Trash", "Sent", "Drafts", "INBOX"] {
        let (_, reply) = c.cmd(&format!("DELETE {special}")).unwrap();
        assert!(
            reply.starts_with("NO [CANNOT]"),
            "DELETE {special}: {reply}"
        );
    }
    let (_, reply) = c.cmd("RENAME Junk Spam").unwrap();
    assert!(reply.starts_with("OK"), "{reply}");
    let (lines, _) = c.cmd("LIST \"\" *").unwrap();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\\Junk") && l.ends_with("\"Spam\"")),
        "{lines:?}"
    );
    let mut smtp = RawSmtp::connect(server.smtp).unwrap();
    smtp.cmd("EHLO test.example").unwrap();
    let reply = smtp
        .send_message(
            "win@prizes.example",
            "carol@example.test",
            SPAMMY.as_bytes(),
        )
        .unwrap();
    assert!(reply.starts_with("250"), "spam for a renamed Junk: {reply}");
    assert_eq!(in_box(&server, "carol@example.test", "Spam"), 1);
    assert_eq!(in_box(&server, "carol@example.test", "INBOX"), 0);
    let (_, reply) = c.cmd("DELETE Spam").unwrap();
    assert!(reply.starts_with("NO [CANNOT]"), "{reply}");
}

/// Bytes in the files under `dir`.
fn size_of(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = entry.metadata().unwrap();
        total += if meta.is_dir() {
            size_of(&entry.path())
        } else {
            meta.len()
        };
    }
    total
}

/// About `size` bytes that do not compress (message bodies are stored LZ4-compressed).
fn noise(seed: u64, size: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut out = String::with_capacity(size + size / 76 * 2);
    while out.len() < size {
        for _ in 0..76 {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            out.push(ALPHABET[(x.wrapping_mul(0x2545_f491_4f6c_dd1d) % 64) as usize] as char);
        }
        out.push_str("\r\n");
    }
    out
}

/// A server with the example accounts, compacted, and the size of its empty store.
fn empty_server() -> (Server, u64) {
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    server.with_example_accounts();
    server.admin(&["compact"]);
    let empty = size_of(&server.data().join("store"));
    (server, empty)
}

/// Sends `count` messages of ~20 KB of noise over one SMTP session, message `n` (its
/// noise seeded by `n`) to `recipient(n)`.
fn send_noise(server: &Server, count: u64, recipient: impl Fn(u64) -> &'static str) {
    let mut smtp = RawSmtp::connect(server.smtp).unwrap();
    smtp.cmd("EHLO test.example").unwrap();
    for n in 0..count {
        let body = format!("Subject: m{n}\r\n\r\n{}", noise(n, 20_000));
        let reply = smtp
            .send_message("load@example.org", recipient(n), body.as_bytes())
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
}

/// Deletes and expunges every message in `user`'s INBOX; how many went.
fn expunge_inbox(server: &Server, user: &str) -> u64 {
    let mut c = login(server, user);
    c.cmd("SELECT INBOX").unwrap();
    let (_, ok) = c.cmd("STORE 1:* +FLAGS.SILENT (\\Deleted)").unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    let (lines, ok) = c.cmd("EXPUNGE").unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    lines.len() as u64
}

/// Mail of two accounts arriving together shares blob files: when one account's is
/// deleted every file is half garbage, and `compact` must still give that half back
/// (the background collection only copies bodies out of the oldest files).
#[test]
fn half_of_every_blob_file_deleted_is_given_back() {
    const MESSAGES: u64 = 800;
    let (server, empty) = empty_server();
    let store = server.data().join("store");
    send_noise(&server, MESSAGES, |n| {
        if n % 2 == 0 {
            "alice@example.test"
        } else {
            "carol@example.test"
        }
    });
    server.admin(&["compact"]);
    let full = size_of(&store);
    assert_eq!(expunge_inbox(&server, "alice@example.test"), MESSAGES / 2);
    server.admin(&["compact"]);
    let after = size_of(&store);
    eprintln!("store: {empty} bytes empty, {full} with {MESSAGES} messages, {after} after half");
    // Half the messages' room back, within a fifth of that half.
    let freed = full.saturating_sub(after);
    assert!(
        freed > (full - empty) * 2 / 5,
        "deleted mail in shared blob files still takes room: {empty} -> {full} -> {after}"
    );
    let mut c = login(&server, "carol@example.test");
    let (lines, ok) = c.cmd("SELECT INBOX").unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    assert!(
        lines
            .iter()
            .any(|l| l == &format!("* {} EXISTS", MESSAGES / 2)),
        "{lines:?}"
    );
    let (lines, ok) = c.cmd(&format!("FETCH {} BODY[]", MESSAGES / 2)).unwrap();
    assert!(ok.starts_with("OK"), "{ok}");
    let sent = noise(MESSAGES - 1, 20_000);
    let sent: Vec<&str> = sent.lines().collect();
    assert!(
        sent.iter().all(|line| lines.iter().any(|l| l == line)),
        "the last message's body is intact"
    );
    let report = String::from_utf8(server.admin(&["check"])).unwrap();
    assert!(report.contains("consistent"), "{report}");
}

#[test]
fn expunged_mail_gives_its_space_back() {
    const MESSAGES: u64 = 1000;
    let (server, empty) = empty_server();
    let store = server.data().join("store");
    send_noise(&server, MESSAGES, |_| "alice@example.test");
    server.admin(&["compact"]);
    let full = size_of(&store);
    assert!(
        full > empty + MESSAGES * 15_000,
        "the messages take room: {empty} -> {full}"
    );
    assert_eq!(expunge_inbox(&server, "alice@example.test"), MESSAGES);
    server.admin(&["compact"]);
    let after = size_of(&store);
    eprintln!("store: {empty} bytes empty, {full} with {MESSAGES} messages, {after} after expunge");
    // Back to within a tenth of what the messages took.
    assert!(
        after < empty + (full - empty) / 10,
        "expunged mail still takes room: {empty} -> {full} -> {after}"
    );
    let accounts = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(
        accounts.contains("alice@example.test\t0\t"),
        "usage back to 0: {accounts}"
    );
    let report = String::from_utf8(server.admin(&["check"])).unwrap();
    assert!(report.contains("consistent"), "{report}");
}
