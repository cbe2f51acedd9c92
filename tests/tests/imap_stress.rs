//! Several IMAP sessions of one account on one mailbox at once (issue #18, "IMAP that
//! every client can trust"): `tests/imap-stress.py` sends random FETCH, STORE, EXPUNGE,
//! APPEND, COPY, MOVE, NOOP, CHECK and SEARCH (and their UID forms) in five sessions for
//! ten seconds, keeps each session's view from the untagged responses it got, and fails on
//! what RFC 9051 and RFC 3501 forbid: keywords shown before a FLAGS response announced
//! them, sequence numbers beyond the count a session was told, EXPUNGE while answering
//! FETCH/STORE/SEARCH, UIDs out of order or changing, sessions that disagree after they
//! all went quiet, BAD or NO [SERVERBUG] for well-formed commands, dropped connections.
//! One run with a fixed seed, one with a seed from the time (printed, to run it again:
//! `python3 tests/imap-stress.py --seed N ...` against a server started by hand).

use std::time::{SystemTime, UNIX_EPOCH};

use gannet_tests::{python, Server};

const SCRIPT: &str = include_str!("../imap-stress.py");

const FIXED_SEED: u64 = 18;

/// Runs the script against the server's plaintext IMAP port as alice; its output.
/// `python` fails the test, with the script's output, when it exits non-zero.
fn stress(server: &Server, seed: u64, extra: &[&str]) -> String {
    let port = server.imap.port().to_string();
    let seed = seed.to_string();
    let mut args: Vec<&str> = vec![
        "--host",
        "127.0.0.1",
        "--port",
        port.as_str(),
        "--user",
        "alice@example.test",
        "--password",
        "Secret123",
        "--sessions",
        "5",
        "--seconds",
        "10",
        "--seed",
        seed.as_str(),
        // \Recent and flags changed by others are checked too: Gannet implements both.
        "--strict",
    ];
    args.extend_from_slice(extra);
    python(SCRIPT, &args)
}

#[test]
fn five_sessions_on_one_mailbox_stay_consistent() {
    let mut server = Server::new("[auth]\nplaintext_on_loopback = true\n");
    server.start();
    server.with_example_accounts();
    let time_seed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        % 1_000_000;
    println!("imap-stress seeds: {FIXED_SEED} (fixed), {time_seed} (from the time)");
    eprintln!("imap-stress seeds: {FIXED_SEED} (fixed), {time_seed} (from the time)");
    // The second run has two of the five sessions ENABLE IMAP4rev2.
    let runs: [(u64, &[&str]); 2] = [(FIXED_SEED, &[]), (time_seed, &["--rev2-fraction", "0.4"])];
    for (seed, extra) in runs {
        let out = stress(&server, seed, extra);
        println!("{out}");
        assert!(
            out.contains(&format!("\nOK (seed {seed})")),
            "imap-stress seed {seed}:\n{out}\nserver log:\n{}",
            server.log()
        );
    }
}
