//! Unit tests of details of RFC 9051 / RFC 3501 that a compliance tester checks and real
//! clients depend on: several LIST patterns, LSUB's \Noselect parents, STATUS on the
//! selected mailbox, keywords that look like other tokens.

use super::test_support::Harness;

fn with_folders(names: &[&str]) -> Harness {
    let mut h = Harness::standard();
    for name in names {
        h.create_mailbox(name);
    }
    h.login();
    h
}

#[test]
fn list_takes_several_patterns() {
    let mut h = with_folders(&["a", "a/x", "a/y", "b", "b/c", "b/d"]);
    let out = h.run("a1 LIST \"\" (a/* b/c)\r\n");
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" \"a/x\"\r\n\
         * LIST (\\HasNoChildren) \"/\" \"a/y\"\r\n\
         * LIST (\\HasNoChildren) \"/\" \"b/c\"\r\n\
         a1 OK LIST completed\r\n"
    );
}

#[test]
fn lsub_shows_unsubscribed_parents_of_subscribed_children_as_noselect() {
    let mut h = with_folders(&["work", "work/2024", "work/2025", "play"]);
    // New mailboxes are subscribed: leave only work/2024 and play.
    for name in ["work", "work/2025"] {
        let out = h.run(&format!("s UNSUBSCRIBE {name}\r\n"));
        assert!(out.starts_with("s OK"), "{out}");
    }
    // `%` stops at the hierarchy delimiter: "work" is listed, \Noselect, because a child
    // is subscribed (RFC 3501 6.3.9).
    let out = h.run("a1 LSUB \"\" %\r\n");
    assert!(out.contains("* LSUB () \"/\" \"play\"\r\n"), "{out}");
    assert!(
        out.contains("* LSUB (\\Noselect) \"/\" \"work\"\r\n"),
        "{out}"
    );
    assert!(!out.contains("2024"), "{out}");
    // `*` lists the subscribed child itself and no parent.
    let out = h.run("a2 LSUB \"\" *\r\n");
    assert!(out.contains("* LSUB () \"/\" \"work/2024\"\r\n"), "{out}");
    assert!(!out.contains("\"work\"\r\n"), "{out}");
    assert!(!out.contains("2025"), "{out}");
}

#[test]
fn status_of_the_selected_mailbox_says_nothing_else() {
    let mut h = Harness::standard();
    h.login_select();
    h.deliver("INBOX", b"Subject: new\r\n\r\nx\r\n", 0);
    let out = h.run("a1 STATUS INBOX (MESSAGES UIDNEXT)\r\n");
    assert_eq!(
        out,
        "* STATUS \"INBOX\" (MESSAGES 3 UIDNEXT 4)\r\na1 OK STATUS completed\r\n"
    );
}

#[test]
fn atoms_like_nil_are_keywords() {
    let mut h = Harness::standard();
    h.login_select();
    let out = h.run("a1 STORE 1 +FLAGS NIL\r\n");
    assert!(out.contains("* 1 FETCH (FLAGS (NIL))\r\n"), "{out}");
    assert!(out.ends_with("a1 OK STORE completed\r\n"), "{out}");
    let out = h.run("a2 STORE 2 +FLAGS (NIL $x)\r\n");
    assert!(
        out.contains("* 2 FETCH (FLAGS (\\Seen NIL $x))\r\n"),
        "{out}"
    );
    let out = h.run("a3 SEARCH KEYWORD NIL\r\n");
    assert_eq!(out, "* SEARCH 1 2\r\na3 OK SEARCH completed\r\n");
}

#[test]
fn a_silent_store_still_tells_of_another_sessions_change() {
    let mut a = Harness::standard();
    a.login_select();
    let mut b = a.another();
    b.login_select();
    let out = b.run("b1 STORE 1 +FLAGS (\\Flagged)\r\n");
    assert!(out.contains("* 1 FETCH (FLAGS (\\Flagged))"), "{out}");
    // A did not know of \Flagged: its silent STORE shows the flags as they are now.
    assert_eq!(
        a.run("a1 STORE 1 +FLAGS.SILENT (\\Seen)\r\n"),
        "* 1 FETCH (FLAGS (\\Seen \\Flagged))\r\na1 OK STORE completed\r\n"
    );
    assert_eq!(a.run("a2 NOOP\r\n"), "a2 OK NOOP completed\r\n");
    // Nothing unexpected: silent stays silent.
    assert_eq!(
        a.run("a3 STORE 1 -FLAGS.SILENT (\\Seen)\r\n"),
        "a3 OK STORE completed\r\n"
    );
}

#[test]
fn rename_inbox_moves_its_messages_and_leaves_it_empty() {
    let mut h = Harness::standard();
    h.login();
    let out = h.run("a1 RENAME INBOX Old\r\n");
    assert_eq!(out, "a1 OK RENAME completed\r\n");
    assert_eq!(h.messages("INBOX").len(), 0);
    assert_eq!(h.messages("Old").len(), 2);
    let out = h.run("a2 STATUS INBOX (MESSAGES)\r\n");
    assert!(
        out.starts_with("* STATUS \"INBOX\" (MESSAGES 0)\r\n"),
        "{out}"
    );
    let out = h.run("a3 RENAME INBOX Old\r\n");
    assert!(out.starts_with("a3 NO [ALREADYEXISTS]"), "{out}");
}

#[test]
fn create_with_a_special_use_attribute() {
    let mut h = Harness::standard();
    h.login();
    assert_eq!(
        h.run("a1 CREATE Archive (USE (\\Archive))\r\n"),
        "a1 OK CREATE completed\r\n"
    );
    let out = h.run("a2 LIST \"\" Archive\r\n");
    assert!(
        out.starts_with("* LIST (\\HasNoChildren \\Archive) \"/\" \"Archive\"\r\n"),
        "{out}"
    );
    let out = h.run("a3 CREATE Everything (USE (\\All))\r\n");
    assert!(out.starts_with("a3 NO [USEATTR]"), "{out}");
}

#[test]
fn binary_size_is_the_decoded_size() {
    let mut h = Harness::standard();
    let multipart = b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\
        Content-Type: text/plain\r\n\r\npart one\r\n--b\r\n\
        Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        AAECAw==\r\n--b--\r\n";
    h.deliver("INBOX", multipart, 0);
    h.login_select();
    let out = h.run("a1 FETCH 3 (BINARY.SIZE[2] BINARY.SIZE[1])\r\n");
    assert_eq!(
        out,
        "* 3 FETCH (BINARY.SIZE[2] 4 BINARY.SIZE[1] 8)\r\na1 OK FETCH completed\r\n"
    );
    let out = h.run("a2 CAPABILITY\r\n");
    for cap in [
        "BINARY",
        "STATUS=SIZE",
        "CREATE-SPECIAL-USE",
        "UTF8=ACCEPT",
        "CONDSTORE",
    ] {
        assert!(out.contains(&format!(" {cap}")), "{cap}: {out}");
    }
}

#[test]
fn rev1_clients_name_mailboxes_in_modified_utf7() {
    let mut h = Harness::standard();
    h.login();
    assert_eq!(
        h.run("a1 CREATE &AOk-t&AOk-\r\n"),
        "a1 OK CREATE completed\r\n"
    );
    // Kept in UTF-8...
    assert_eq!(h.messages("été").len(), 0);
    // ...shown in modified UTF-7 to this client, in UTF-8 to one that enabled UTF8=ACCEPT.
    let out = h.run("a2 LIST \"\" &AOk-*\r\n");
    assert_eq!(
        out,
        "* LIST (\\HasNoChildren) \"/\" \"&AOk-t&AOk-\"\r\na2 OK LIST completed\r\n"
    );
    let out = h.run("a3 STATUS &AOk-t&AOk- (MESSAGES)\r\n");
    assert!(
        out.starts_with("* STATUS \"&AOk-t&AOk-\" (MESSAGES 0)\r\n"),
        "{out}"
    );
    let out = h.run("a4 CREATE bad&name\r\n");
    assert!(out.starts_with("a4 BAD"), "{out}");
    let mut u = h.another();
    u.login();
    assert_eq!(
        u.run("e ENABLE UTF8=ACCEPT\r\n"),
        "* ENABLED UTF8=ACCEPT\r\ne OK ENABLE completed\r\n"
    );
    let out = u.run("b1 LIST \"\" \"ét*\"\r\n");
    assert!(
        out.starts_with("* LIST (\\HasNoChildren) \"/\" {5}\r\nété\r\n"),
        "{out}"
    );
}

#[test]
fn append_takes_a_literal8() {
    let mut h = Harness::standard();
    h.login();
    let out = h.run(b"a1 APPEND INBOX ~{10+}\r\nA: b\r\n\r\n\x00\x01\r\n".as_slice());
    assert!(out.starts_with("a1 OK [APPENDUID 7 3]"), "{out}");
    let stored = h.messages("INBOX");
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[2].1.size, 10);
}

#[test]
fn search_matches_decoded_encoded_words() {
    let mut h = Harness::standard();
    h.deliver(
        "INBOX",
        b"Subject: =?UTF-8?Q?caf=C3=A9_cr=C3=A8me?=\r\nFrom: a@b.example\r\n\r\nx\r\n",
        0,
    );
    h.login_select();
    let out = h.run(b"a1 SEARCH CHARSET UTF-8 SUBJECT {5}\r\ncaf\xc3\xa9\r\n".as_slice());
    assert!(out.contains("* SEARCH 3\r\n"), "{out}");
}

#[test]
fn recursivematch_lists_parents_of_subscribed_mailboxes() {
    let mut h = with_folders(&["p", "p/q", "p/q/r"]);
    for name in ["p", "p/q"] {
        h.run(&format!("u UNSUBSCRIBE {name}\r\n"));
    }
    let out = h.run("a1 LIST (SUBSCRIBED RECURSIVEMATCH) \"\" %\r\n");
    assert!(
        out.contains("* LIST (\\HasChildren) \"/\" \"p\" (\"CHILDINFO\" (\"SUBSCRIBED\"))\r\n"),
        "{out}"
    );
    // Without RECURSIVEMATCH, only subscribed mailboxes.
    let out = h.run("a2 LIST (SUBSCRIBED) \"\" %\r\n");
    assert!(!out.contains("\"p\""), "{out}");
}

/// RFC 9051 6.3.7: DELETE keeps the mailbox's subscription; LIST (SUBSCRIBED) shows it
/// `\NonExistent`, LSUB `\Noselect`; a mailbox created again under the name is
/// subscribed; UNSUBSCRIBE forgets it, with or without the mailbox.
#[test]
fn a_subscription_outlives_its_mailbox() {
    let mut h = with_folders(&["gone"]);
    h.run("s SUBSCRIBE gone\r\n");
    let out = h.run("d DELETE gone\r\n");
    assert!(out.contains("d OK"), "{out}");
    let out = h.run("a1 LIST (SUBSCRIBED) \"\" gone\r\n");
    assert!(
        out.contains("* LIST (\\NonExistent \\Subscribed) \"/\" \"gone\"\r\n"),
        "{out}"
    );
    let out = h.run("a2 LSUB \"\" gone\r\n");
    assert!(
        out.contains("* LSUB (\\Noselect) \"/\" \"gone\"\r\n"),
        "{out}"
    );
    // Not in a plain LIST: there is no such mailbox.
    let out = h.run("a3 LIST \"\" gone\r\n");
    assert!(!out.contains("\"gone\""), "{out}");
    // Created again: subscribed.
    h.run("c CREATE gone\r\n");
    let out = h.run("a4 LIST (SUBSCRIBED) \"\" gone\r\n");
    assert!(
        out.contains("\\Subscribed) \"/\" \"gone\"\r\n") && !out.contains("NonExistent"),
        "{out}"
    );
    // Deleted again, then unsubscribed without a mailbox: gone from the subscriptions.
    h.run("d2 DELETE gone\r\n");
    let out = h.run("u UNSUBSCRIBE gone\r\n");
    assert!(out.contains("u OK"), "{out}");
    let out = h.run("a5 LSUB \"\" gone\r\n");
    assert!(!out.contains("\"gone\""), "{out}");
    // Subscribing to a name with no mailbox is still refused.
    let out = h.run("s2 SUBSCRIBE nowhere\r\n");
    assert!(out.contains("s2 NO"), "{out}");
}
