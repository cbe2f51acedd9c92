//! Hostile input on the SMTP side and the files the server leaves on disk, against the
//! real binary: every malformed command gets its reply and the server serves on, probing
//! clients are cut off, and nothing in the data directory is readable by other users.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use gannet_tests::{RawSmtp, Server};

/// A multi-byte character where MAIL or RCPT expect their keyword: 501, and the same
/// connection goes on to deliver a message.
#[test]
fn non_ascii_commands_are_answered() {
    let server = Server::started();
    server.with_example_accounts();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO client.example").unwrap();
    for line in [
        "MAIL FROMé:<a@b.example>",
        "MAIL FRé",
        "RCPT TOé:<alice@example.test>",
        "MAIL FROM:<a@b.example> SIZEé=1",
    ] {
        let reply = c.cmd(line).unwrap();
        assert!(reply.starts_with("5"), "{line}: {reply}");
    }
    let reply = c
        .send_message(
            "a@b.example",
            "alice@example.test",
            b"Subject: still here\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    assert_eq!(server.mail_list("alice@example.test").len(), 1);
}

/// A client probing addresses is cut off after 20 refusals with 421.
#[test]
fn address_probing_is_cut_off() {
    let server = Server::started();
    server.with_example_accounts();
    let mut c = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    c.cmd("EHLO prober.example").unwrap();
    c.cmd("MAIL FROM:<p@prober.example>").unwrap();
    let mut refused = 0;
    let mut last = String::new();
    for i in 0..40 {
        match c.cmd(&format!("RCPT TO:<guess{i}@example.test>")) {
            Ok(reply) if reply.starts_with("550") => refused += 1,
            Ok(reply) => {
                last = reply;
                break;
            }
            Err(_) => break,
        }
    }
    assert_eq!(refused, 20, "{last}");
    assert!(last.starts_with("421"), "{last}");
}

/// Walks `dir`; every entry's mode bits for group and others.
fn loose_modes(dir: &Path, out: &mut Vec<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = std::fs::symlink_metadata(entry.path()).unwrap();
        if meta.permissions().mode() & 0o077 != 0 {
            out.push(format!(
                "{:o} {}",
                meta.permissions().mode(),
                entry.path().display()
            ));
        }
        if meta.is_dir() {
            loose_modes(&entry.path(), out);
        }
    }
}

/// The data directory holds all mail and the password hashes: it and everything in it
/// (store files, certificate key, control socket) are the server user's alone, also when
/// the directory existed before with looser modes.
#[test]
fn the_data_directory_is_private() {
    let mut server = Server::new("");
    std::fs::create_dir_all(server.data()).unwrap();
    std::fs::set_permissions(server.data(), std::fs::Permissions::from_mode(0o755)).unwrap();
    server.start();
    server.with_example_accounts();
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO client.example").unwrap();
    let reply = c
        .send_message(
            "a@b.example",
            "alice@example.test",
            b"Subject: private\r\n\r\nhi\r\n",
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");
    let mode = std::fs::metadata(server.data())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700, "data directory mode {mode:o}");
    let mut loose = Vec::new();
    loose_modes(&server.data(), &mut loose);
    assert!(loose.is_empty(), "readable by others: {loose:#?}");
}
