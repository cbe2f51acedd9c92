//! The `gannet` command line: admin commands with and without a running server.

use std::process::{Command, Stdio};

use gannet_tests::{gannet_bin, python, RawSmtp, Server};

#[test]
fn weak_passwords_are_refused_with_a_clear_error() {
    let server = Server::new("");
    server.admin(&["domain", "add", "example.test"]);
    for weak in ["short1A", "nouppercase1", "NoDigitsAtAll"] {
        let out = server.gannet(&["account", "add", "dave@example.test", "--password", weak]);
        assert_eq!(out.status.code(), Some(1), "{weak}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("at least 8 characters, with an upper-case letter and a digit"),
            "{err}"
        );
    }
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(!list.contains("dave"));
}

#[test]
fn admin_records_without_a_server() {
    let server = Server::new("");
    server.with_example_accounts();
    assert_eq!(server.admin(&["domain", "list"]), b"example.test\n");
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(
        list.contains("1\talice@example.test\t0\t1000000000\tmedium\n"),
        "{list}"
    );
    assert!(list.contains("\tcarol@example.test\t"), "{list}");
    // Errors exit 1 and say why.
    for args in [
        &["domain", "add", "example.test"][..],
        &[
            "account",
            "add",
            "x@unhosted.test",
            "--password",
            "Secret123",
        ],
        &[
            "account",
            "add",
            "alice@example.test",
            "--password",
            "Secret123",
        ],
        &["alias", "add", "x@example.test", "nobody@example.test"],
        &["mail", "get", "alice@example.test", "7"],
        &["mail", "list", "nobody@example.test"],
    ] {
        let out = server.gannet(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).starts_with("gannet: "),
            "{args:?}"
        );
    }
}

#[test]
fn admin_changes_apply_to_a_running_server_at_once() {
    let server = Server::started();
    // From 127.0.0.2: not a trusted network, so no relaying.
    let mut c = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    c.cmd("EHLO x.example").unwrap();
    c.cmd("MAIL FROM:<a@example.org>").unwrap();
    assert!(c
        .cmd("RCPT TO:<alice@example.test>")
        .unwrap()
        .starts_with("554 5.7.1"));
    server.admin(&["domain", "add", "example.test"]);
    assert!(c
        .cmd("RCPT TO:<alice@example.test>")
        .unwrap()
        .starts_with("550 5.1.1"));
    server.admin(&[
        "account",
        "add",
        "alice@example.test",
        "--password",
        "Secret123",
    ]);
    assert!(c
        .cmd("RCPT TO:<alice@example.test>")
        .unwrap()
        .starts_with("250 2.1.5"));
    // No catch-all unless asked for; then unknown addresses go to it.
    assert!(c
        .cmd("RCPT TO:<random@example.test>")
        .unwrap()
        .starts_with("550 5.1.1"));
    server.admin(&["alias", "add", "@example.test", "alice@example.test"]);
    assert!(c
        .cmd("RCPT TO:<random@example.test>")
        .unwrap()
        .starts_with("250 2.1.5"));
    c.send(b"DATA\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("354"));
    c.send(b"Subject: to both\r\n\r\nhi\r\n.\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("250 2.0.0"));
    // Two recipients, one account: one copy.
    assert_eq!(server.mail_list("alice@example.test").len(), 1);
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    let size = server.mail_list("alice@example.test")[0].1;
    assert!(
        list.contains(&format!("alice@example.test\t{size}\t")),
        "{list}"
    );
}

#[test]
fn serve_logs_json_when_asked() {
    let server = Server::new("");
    let child = Command::new(gannet_bin())
        .args(["--log-format", "json", "serve", "--config"])
        .arg(&server.config)
        .arg("--data")
        .arg(server.data())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while RawSmtp::connect(server.smtp).is_err() {
        assert!(std::time::Instant::now() < deadline, "server did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines.len() >= 2, "{log}");
    for line in lines {
        assert!(
            line.starts_with('{') && line.ends_with('}') && line.contains("\"level\":"),
            "{line}"
        );
    }
    assert!(log.contains("gannet serving"));
}

/// `gannet store-stats` (what the soak benchmark samples) tells the engine's memory and
/// the messages held in the mailbox listings, from the running server.
#[test]
fn store_stats_report_memory_and_listed_messages() {
    let mut server = Server::new("[auth]\nplaintext_on_loopback = true\n");
    server.start();
    server.with_example_accounts();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO x.example").unwrap();
    for n in 0..3 {
        let body = format!("Subject: stats {n}\r\n\r\nhello\r\n");
        let reply = c
            .send_message("a@example.org", "alice@example.test", body.as_bytes())
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    let stats = |server: &Server| -> serde_json::Value {
        serde_json::from_slice(&server.admin(&["store-stats"])).expect("store-stats is JSON")
    };
    let before = stats(&server);
    assert!(before["memtable_bytes"].as_u64().unwrap() > 0, "{before}");
    for key in [
        "table_readers_bytes",
        "block_cache_bytes",
        "block_cache_pinned_bytes",
        "c_heap_bytes",
        "c_heap_free_bytes",
    ] {
        assert!(before[key].is_u64(), "{key} missing: {before}");
    }
    // Where the process's memory is: resident pages by kind and mimalloc's committed
    // memory, which holds RocksDB's too: glibc's heap stays (all but) empty although
    // the engine has allocated its memtables and cache entries.
    for key in ["rss_anon_bytes", "rss_file_bytes", "heap_committed_bytes"] {
        assert!(before[key].as_u64().unwrap_or(0) > 0, "{key}: {before}");
    }
    let glibc = before["c_heap_in_use_bytes"].as_u64().unwrap();
    assert!(
        glibc < 1 << 20,
        "glibc's heap holds {glibc} bytes: {before}"
    );
    // A POP3 login lists the maildrop: its listing is then held in memory.
    let listed = python(
        "import poplib, sys\n\
         p = poplib.POP3('127.0.0.1', int(sys.argv[1]), timeout=30)\n\
         p.user('alice@example.test'); p.pass_('Secret123')\n\
         print(p.stat()[0]); p.quit()\n",
        &[&server.pop3.port().to_string()],
    );
    assert_eq!(listed.trim(), "3");
    let after = stats(&server);
    assert_eq!(after["listed_messages"].as_u64(), Some(3), "{after}");
}
