//! Unit tests of a whole session: logging in, then a command of each family in turn; and
//! errors, literals and their limits.

use super::test_support::Harness;

/// A session (TLS or not) over the standard store, its greeting checked.
fn session(tls: bool) -> Harness {
    let h = Harness::with_tls(tls);
    assert!(h.greeting.starts_with("* OK [CAPABILITY IMAP4rev2"));
    h
}

#[test]
fn login_select_fetch_store_search() {
    let mut h = session(true);
    let out = h.run("a1 LOGIN alice Wrong1\r\na2 LOGIN alice Secret123\r\n");
    assert!(
        out.contains("a1 NO [AUTHENTICATIONFAILED]") && out.contains("a2 OK [CAPABILITY"),
        "{out}"
    );
    let out = h.run("a3 SELECT inbox\r\n");
    assert!(
        out.contains("* 2 EXISTS\r\n")
            && out.contains("[UIDVALIDITY 7]")
            && out.ends_with("a3 OK [READ-WRITE] SELECT completed\r\n"),
        "{out}"
    );
    let out = h.run("a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])\r\n");
    assert!(
        out.contains(
            "* 1 FETCH (UID 1 FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n)"
        ),
        "{out}"
    );
    assert_eq!(h.commits, 0, "PEEK sets no flag");
    let out = h.run("a5 FETCH 1 BODY[TEXT]\r\n");
    assert!(
        out.contains("BODY[TEXT] {13}\r\nhello there\r\n FLAGS (\\Seen))"),
        "{out}"
    );
    assert_eq!(h.commits, 1);
    let out = h.run("a6 SEARCH UNSEEN\r\na7 UID SEARCH TEXT \"there\" SEEN\r\n");
    assert!(
        out.contains("* SEARCH\r\n") && out.contains("* SEARCH 1 2\r\n"),
        "{out}"
    );
    let out = h.run("a8 STORE 2 +FLAGS (\\Deleted)\r\na9 EXPUNGE\r\n");
    assert!(
        out.contains("* 2 FETCH (FLAGS (\\Seen \\Deleted))")
            && out.contains("* 2 EXPUNGE\r\na9 OK"),
        "{out}"
    );
    let out = h.run("b1 LOGOUT\r\n");
    assert!(out.starts_with("* BYE"));
}

#[test]
fn errors_and_literals() {
    let mut h = session(false);
    let out = h.run("a1 LOGIN alice Secret123\r\n");
    assert!(out.starts_with("a1 NO [PRIVACYREQUIRED]"), "{out}");
    let out = h.run("a2 SELECT INBOX\r\nBOGUS\r\na3 FROB\r\n");
    assert!(
        out.contains("a2 BAD") && out.contains("* BAD") && out.contains("a3 BAD"),
        "{out}"
    );
    // A synchronizing literal gets a continuation; a too-large one is refused unread.
    let mut h = session(true);
    let out = h.run("a1 LOGIN {5}\r\n");
    assert_eq!(out, "+ Ready for literal data\r\n");
    let out = h.run("alice {9}\r\nSecret123\r\n");
    assert!(out.contains("a1 OK"), "{out}");
    let out = h.run("a2 APPEND INBOX {999999999999}\r\na3 NOOP\r\n");
    assert!(out.starts_with("a2 NO [TOOBIG]"), "{out}");
}
