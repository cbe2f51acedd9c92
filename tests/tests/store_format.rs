//! The store's format version, as an image upgrade meets it: a store made before the
//! version was recorded is migrated once (logged) and keeps its mail; a store a newer
//! gannet wrote is refused at start with a message that says so, and left as it was.

use gannet_tests::{RawSmtp, Server};

/// Sets (or, with None, removes) the format version in a stopped server's store, as a
/// newer (or older) gannet would have left it.
fn set_format(server: &Server, version: Option<u32>) {
    let path = server.data().join("store");
    let opts = rocksdb::Options::default();
    let cfs = rocksdb::DB::list_cf(&opts, &path).expect("list column families");
    let db = rocksdb::DB::open_cf(&opts, &path, cfs).expect("open the store");
    let meta = db.cf_handle("meta").expect("the meta column family");
    match version {
        Some(v) => db.put_cf(meta, b"format_version", v.to_be_bytes()),
        None => db.delete_cf(meta, b"format_version"),
    }
    .expect("write");
    db.flush_cf(meta).expect("flush");
}

#[test]
fn older_stores_are_migrated_and_newer_ones_refused() {
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    let mut smtp = RawSmtp::connect(server.smtp).unwrap();
    smtp.cmd("EHLO inside.example").unwrap();
    let reply = smtp
        .send_message(
            "a@inside.example",
            "alice@example.test",
            b"Subject: kept\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    drop(smtp);
    server.terminate(std::time::Duration::from_secs(10));

    // A store from before the version: migrated once, its mail still there.
    set_format(&server, None);
    server.start();
    assert!(
        server.log().contains("store format migration"),
        "{}",
        server.log()
    );
    let subjects: Vec<String> = server
        .mail_list("alice@example.test")
        .into_iter()
        .map(|(_, _, subject)| subject)
        .collect();
    assert_eq!(subjects, ["kept"]);
    server.terminate(std::time::Duration::from_secs(10));
    let migrations = server.log().matches("store format migration done").count();
    server.start();
    server.terminate(std::time::Duration::from_secs(10));
    assert_eq!(
        server.log().matches("store format migration done").count(),
        migrations,
        "the migration ran once"
    );

    // A newer format: refused with a clear message, nothing changed.
    set_format(&server, Some(99));
    let out = server.gannet(&["serve"]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("format 99, written by a newer gannet")
            && text.contains("knows formats up to 1"),
        "{text}"
    );
    let list = server.gannet(&["mail", "list", "alice@example.test"]);
    assert!(!list.status.success(), "the CLI refuses it too");
    set_format(&server, Some(1));
    server.start();
    assert_eq!(server.mail_list("alice@example.test").len(), 1);
}
