//! IMAP compliance (issue #18, "IMAP that every client can trust"): `tests/imap-compliance.py`
//! runs named checks, each a small scenario over raw IMAP with its own mailboxes, with the
//! expectations of RFC 9051 sections 6 (commands in every state) and 7 (responses), and of
//! RFC 5256 (SORT, THREAD), RFC 7162 (CONDSTORE, QRESYNC), RFC 6154 (CREATE USE), RFC 5258 and
//! RFC 5819 (LIST-EXTENDED, LIST-STATUS), RFC 4731 (ESEARCH), RFC 3516 (BINARY), RFC 4315
//! (UIDPLUS), RFC 6851 (MOVE) and RFC 3501's \Recent. The checks were also run against
//! Dovecot 2.3; to run them against a server started by hand:
//! `python3 tests/imap-compliance.py --host 127.0.0.1 --port N --user U --password P`.
//!
//! Checks Gannet fails today are skipped by name (KNOWN_FAILURES, each a bug to fix: remove
//! its entry with the fix), so this test catches regressions in all the others.

use gannet_tests::{python, Server};

const SCRIPT: &str = include_str!("../imap-compliance.py");

/// Checks Gannet fails today, with why.
const KNOWN_FAILURES: &[&str] = &[];

#[test]
fn imap_compliance_checks_pass() {
    let mut server = Server::new("[auth]\nplaintext_on_loopback = true\n");
    server.start();
    server.with_example_accounts();
    let port = server.imap.port().to_string();
    let skip = format!("^({})$", KNOWN_FAILURES.join("|"));
    let args: Vec<&str> = vec![
        "--host",
        "127.0.0.1",
        "--port",
        port.as_str(),
        "--user",
        "alice@example.test",
        "--password",
        "Secret123",
        "--user2",
        "carol@example.test",
        "--password2",
        "Secret123",
        "--skip",
        skip.as_str(),
    ];
    // `python` fails the test, with the script's output, when a check fails (the exit
    // status is the number of failures).
    let out = python(SCRIPT, &args);
    println!("{out}");
    assert!(
        out.contains("\nOK: all "),
        "imap-compliance:\n{out}\nserver log:\n{}",
        server.log()
    );
    // Every known failure is still there to be skipped (a typo would skip nothing).
    for name in KNOWN_FAILURES {
        assert!(
            out.contains(&format!(" {name} (--skip)")),
            "{name} is not a check of imap-compliance.py:\n{out}"
        );
    }
}
