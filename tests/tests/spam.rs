//! The spam engine end to end: `gannet spam scan`, `gannet rules check` and `rules reload`,
//! and delivery over SMTP to INBOX or Junk by each account's level and whitelist.

use gannet_tests::{RawSmtp, Server};

/// 20-30% HTML and a .biz link: the two built-in example rules, 1.3 points.
const EXAMPLE: &str = "From: a@example.org\r\nTo: b@example.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: deals\r\nMIME-Version: 1.0\r\nContent-Type: text/html\r\n\r\n<div><b>Great deals today at http://deals.shop.biz/today</b></div>\r\n";

/// Scores 7: a prescription drug (3) and a lottery to claim (4).
const SPAMMY: &str = "From: Lucky <win@prizes.example>\r\nTo: you@example.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: news\r\n\r\nYou have won the lottery!\r\nClaim your prize and buy viagra.\r\n";

#[test]
fn spam_scan_cli_and_rules_check() {
    let server = Server::new("");
    let dir = server.dir.path();
    std::fs::write(dir.join("a.eml"), EXAMPLE).unwrap();
    std::fs::write(dir.join("b.eml"), SPAMMY).unwrap();
    let out = server.gannet(&[
        "spam",
        "scan",
        "--json",
        dir.join("a.eml").to_str().unwrap(),
        dir.join("b.eml").to_str().unwrap(),
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(
        lines[0].contains("\"score\":1.3")
            && lines[0].contains("BIZ_TLD")
            && lines[0].contains("HTML_20_30"),
        "{text}"
    );
    assert!(
        lines[1].contains("\"score\":7.0")
            && lines[1].contains("GANNET_LOTTERY")
            && lines[1].contains("GANNET_DRUGS"),
        "{text}"
    );
    let check = String::from_utf8(server.admin(&["rules", "check"])).unwrap();
    assert!(check.starts_with("loaded 23 rules"), "{check}");
    assert!(check.contains("skipped: 0"), "{check}");
}

/// A directory `mail` in the server's: every `step`-th message of the corpus (spam and
/// ham, sorted), `count` of them, as 000.eml…, then SPAMMY as 999.eml.
fn mail_dir(server: &Server, step: usize, count: usize) -> std::path::PathBuf {
    let dir = server.dir.path().join("mail");
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files: Vec<_> = ["spam", "ham"]
        .iter()
        .flat_map(|d| std::fs::read_dir(corpus.join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for (i, f) in files.iter().step_by(step).take(count).enumerate() {
        std::fs::copy(f, dir.join(format!("{i:03}.eml"))).unwrap();
    }
    std::fs::write(dir.join("999.eml"), SPAMMY).unwrap();
    dir
}

/// `spam scan --jobs N` scans on N threads: the same verdicts in the files' order as on
/// one, and a summary on standard error.
#[test]
fn spam_scan_on_several_threads_keeps_the_order() {
    let server = Server::new("");
    let dir = mail_dir(&server, 40, 60);
    let scan = |jobs: &str| {
        let out = server.gannet(&[
            "spam",
            "scan",
            "--json",
            "--jobs",
            jobs,
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success());
        (
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    };
    let (one, summary) = scan("1");
    let (three, summary3) = scan("3");
    assert_eq!(one.lines().count(), 61, "{one}");
    assert_eq!(one, three);
    assert!(
        one.lines().last().unwrap().contains("\"score\":7.0"),
        "{one}"
    );
    assert!(
        summary.starts_with("scanned 61 messages") && summary.contains("on 1 threads"),
        "{summary}"
    );
    assert!(
        summary3.contains("on 3 threads") && summary3.contains("rules loaded in"),
        "{summary3}"
    );
}

/// With a server running on the data directory, `spam scan` sends the files to it and
/// its scan threads score them: the same verdicts as a scan here (`--local`), in the
/// files' order, over several batches; a file that cannot be read is reported and the
/// others are still scanned.
#[test]
fn spam_scan_goes_through_the_running_server() {
    let mut server = Server::new("");
    // More than one batch (256 messages a batch).
    let dir = mail_dir(&server, 5, 300);
    fn scan_json(server: &Server, extra: &[&str]) -> (bool, String, String) {
        let mut args = vec!["spam", "scan", "--json"];
        args.extend_from_slice(extra);
        let out = server.gannet(&args);
        (
            out.status.success(),
            String::from_utf8(out.stdout).unwrap(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
    let path = dir.to_str().unwrap();
    let (ok, here, summary) = scan_json(&server, &[path]);
    assert!(ok && summary.contains("rules loaded in"), "{summary}");
    assert!(!summary.contains("running server"), "{summary}");
    server.start();
    let (ok, through, summary) = scan_json(&server, &[path]);
    assert!(ok, "{summary}");
    assert!(
        summary.starts_with("scanned 301 messages")
            && summary.contains("on the running server")
            && summary.contains("Bayes not ready"),
        "{summary}"
    );
    assert_eq!(through.lines().count(), 301, "{through}");
    assert_eq!(here, through);
    assert!(
        through.lines().last().unwrap().contains("\"score\":7.0"),
        "{through}"
    );
    // `--local` scans here even so (the store is the server's: no Bayes).
    let (ok, local, summary) = scan_json(&server, &["--local", path]);
    assert!(ok && summary.contains("rules loaded in"), "{summary}");
    assert_eq!(here, local);
    // A missing file fails the command; the others are scored.
    let missing = dir.join("nonexistent.eml");
    let (ok, partial, summary) = scan_json(
        &server,
        &[missing.to_str().unwrap(), &format!("{path}/999.eml")],
    );
    assert!(!ok, "{summary}");
    assert!(summary.contains("nonexistent.eml"), "{summary}");
    assert_eq!(partial.lines().count(), 1, "{partial}");
    assert!(partial.contains("\"score\":7.0"), "{partial}");
}

fn deliver(server: &Server, to: &[&str], body: &str) {
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO test.example").unwrap();
    c.cmd("MAIL FROM:<win@prizes.example>").unwrap();
    for r in to {
        assert!(c.cmd(&format!("RCPT TO:<{r}>")).unwrap().starts_with("250"));
    }
    c.send(b"DATA\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("354"));
    c.send(body.as_bytes()).unwrap();
    c.send(b".\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("250"));
}

fn in_box(server: &Server, address: &str, mailbox: &str) -> Vec<String> {
    let out = server.admin(&["mail", "list", address, "--mailbox", mailbox]);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The first message of an account's Junk folder, as stored.
fn first_in_junk(server: &Server, address: &str) -> String {
    let out = server.admin(&["mail", "get", address, "1", "--mailbox", "Junk"]);
    String::from_utf8(out).unwrap()
}

#[test]
fn levels_and_whitelist_route_to_inbox_or_junk() {
    let server = Server::started();
    server.with_example_accounts();
    for a in ["dave", "erin", "frank"] {
        server.admin(&[
            "account",
            "add",
            &format!("{a}@example.test"),
            "--password",
            "Secret123",
        ]);
    }
    server.admin(&[
        "account",
        "set",
        "carol@example.test",
        "--spam-level",
        "high",
    ]);
    server.admin(&["account", "set", "dave@example.test", "--spam-level", "off"]);
    server.admin(&["account", "set", "erin@example.test", "--spam-level", "low"]);
    server.admin(&[
        "account",
        "set",
        "frank@example.test",
        "--spam-level",
        "high",
    ]);
    server.admin(&["whitelist", "add", "frank@example.test", "*@prizes.example"]);
    let bad = server.gannet(&[
        "account",
        "set",
        "alice@example.test",
        "--spam-level",
        "paranoid",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    // One message, one scan, six different outcomes.
    deliver(
        &server,
        &[
            "alice@example.test",
            "carol@example.test",
            "dave@example.test",
            "erin@example.test",
            "frank@example.test",
        ],
        SPAMMY,
    );
    assert_eq!(
        in_box(&server, "alice@example.test", "INBOX").len(),
        1,
        "medium (10): 7 points is not spam"
    );
    assert_eq!(
        in_box(&server, "carol@example.test", "Junk").len(),
        1,
        "high (5): spam goes to Junk"
    );
    assert!(in_box(&server, "carol@example.test", "INBOX").is_empty());
    assert_eq!(
        in_box(&server, "dave@example.test", "INBOX").len(),
        1,
        "off"
    );
    assert_eq!(
        in_box(&server, "erin@example.test", "INBOX").len(),
        1,
        "low (15)"
    );
    assert_eq!(
        in_box(&server, "frank@example.test", "INBOX").len(),
        1,
        "whitelisted sender skips the filter"
    );
    let junk = first_in_junk(&server, "carol@example.test");
    assert!(junk.contains("X-Spam-Flag: YES\r\nX-Spam-Score: 7.0\r\nX-Spam-Level: *******\r\nX-Spam-Status: Yes, score=7.0 required=5.0 tests=GANNET_DRUGS,GANNET_LOTTERY\r\n"), "{junk}");
    let inbox = String::from_utf8(server.mail_get("alice@example.test", 1)).unwrap();
    assert!(
        inbox.contains(
            "X-Spam-Status: No, score=7.0 required=10.0 tests=GANNET_DRUGS,GANNET_LOTTERY\r\n"
        ),
        "{inbox}"
    );
    assert!(!inbox.contains("X-Spam-Flag"));
    let white = String::from_utf8(server.mail_get("frank@example.test", 1)).unwrap();
    assert!(white.contains("required=none"), "{white}");
    // The message itself follows its headers unchanged.
    assert!(inbox.ends_with(SPAMMY), "{inbox}");
}

/// A started server with the example accounts whose `spam.rules_dirs` is a directory
/// holding `local.cf` with `rules`.
fn server_with_site_rules(rules: &str) -> (tempfile::TempDir, Server) {
    let rules_dir = tempfile::tempdir().unwrap();
    std::fs::write(rules_dir.path().join("local.cf"), rules).unwrap();
    let mut server = Server::new(&format!(
        "[spam]\nrules_dirs = [\"{}\"]\n",
        rules_dir.path().display()
    ));
    server.start();
    server.with_example_accounts();
    (rules_dir, server)
}

#[test]
fn site_rules_load_and_reload_without_restart() {
    let (rules_dir, server) =
        server_with_site_rules("body SITE_WORD /\\bzorblax\\b/i\nscore SITE_WORD 6.0\n");
    server.admin(&[
        "account",
        "set",
        "carol@example.test",
        "--spam-level",
        "high",
    ]);
    let body = "To: x@example.test\r\nDate: x\r\nSubject: s\r\n\r\nzorblax and quuxfoo\r\n";
    deliver(&server, &["carol@example.test"], body);
    assert_eq!(in_box(&server, "carol@example.test", "Junk").len(), 1);
    // A new rule file, then `gannet rules reload`: applies to the next message.
    std::fs::write(
        rules_dir.path().join("more.cf"),
        "body SITE_OTHER /quuxfoo/\nscore SITE_OTHER -10\n",
    )
    .unwrap();
    let out = String::from_utf8(server.admin(&["rules", "reload"])).unwrap();
    assert!(out.starts_with("rules reloaded: 25 loaded"), "{out}");
    deliver(&server, &["carol@example.test"], body);
    assert_eq!(
        in_box(&server, "carol@example.test", "INBOX").len(),
        1,
        "the new rule cancels the score"
    );
}

#[test]
fn stock_spamassassin_rules_load() {
    let stock = std::path::Path::new("/usr/share/spamassassin");
    gannet_tests::require_tool("spamassassin");
    assert!(stock.is_dir());
    let server = Server::new("[spam]\nrules_dirs = [\"/usr/share/spamassassin\"]\n");
    // The compile cache is kept only in a data directory that exists.
    std::fs::create_dir_all(server.data()).unwrap();
    let out = server.gannet(&["rules", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = String::from_utf8(out.stdout).unwrap();
    let loaded: usize = report.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(loaded > 500, "{report}");
    println!("{report}");
    // The second load of the same rules reads the first's analysis from the compile
    // cache in the data directory and reports the same rules.
    assert!(!report.contains("compile cache"), "{report}");
    let again = server.gannet(&["rules", "check"]);
    let again = String::from_utf8(again.stdout).unwrap();
    let first_line = |r: &str| r.lines().next().unwrap_or("").to_owned();
    assert_eq!(
        first_line(&again),
        format!(
            "{} (regex analysis from the compile cache)",
            first_line(&report)
        ),
        "{again}"
    );
    assert_eq!(
        again.lines().skip(1).collect::<Vec<_>>(),
        report.lines().skip(1).collect::<Vec<_>>()
    );
}

/// With no `spam.rules_dirs`, the rules of the installed SpamAssassin package (and the
/// site directory) are loaded; the server says so when it starts.
#[test]
fn stock_rules_load_by_default_when_installed() {
    gannet_tests::require_tool("spamassassin");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gannet.toml");
    std::fs::write(&config, "").unwrap();
    let out = std::process::Command::new(gannet_tests::gannet_bin())
        .args(["rules", "check", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(dir.path().join("data"))
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    assert!(
        report.contains("from SpamAssassin's packaged rules in /usr/share/spamassassin")
            || report.contains("from sa-update's rules in /var/lib/spamassassin/"),
        "{report}"
    );
    let loaded: usize = report.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(loaded > 500, "{report}");
    // An empty list keeps the built-in rules alone (what every other test runs).
    let server = Server::started();
    let log = server.log();
    assert!(log.contains("the built-in rules only"), "{log}");
}

#[test]
fn new_accounts_take_the_configured_default_level() {
    let server = Server::new("[spam]\ndefault_level = \"high\"\n");
    server.admin(&["domain", "add", "example.test"]);
    server.admin(&[
        "account",
        "add",
        "gina@example.test",
        "--password",
        "Secret123",
    ]);
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(
        list.contains("gina@example.test\t0\t1000000000\thigh\n"),
        "{list}"
    );
}

#[test]
fn rules_tag_the_subject_and_add_headers_of_spam() {
    let (_rules_dir, server) = server_with_site_rules("rewrite_header Subject [SPAM _SCORE_]\nadd_header all Report _YESNO_ tests=_TESTS_\nreport_safe 0\n");
    for (account, level) in [
        ("carol@example.test", "high"),
        ("alice@example.test", "low"),
    ] {
        server.admin(&["account", "set", account, "--spam-level", level]);
    }
    // 7 points: spam for carol (high, 5), not for alice (low, 15).
    deliver(
        &server,
        &["carol@example.test", "alice@example.test"],
        SPAMMY,
    );
    assert_eq!(in_box(&server, "carol@example.test", "Junk").len(), 1);
    let junk = first_in_junk(&server, "carol@example.test");
    assert!(junk.contains("\r\nSubject: [SPAM 7.0] news\r\n"), "{junk}");
    assert!(
        junk.contains("X-Spam-Report: Yes tests=GANNET_DRUGS,GANNET_LOTTERY\r\n"),
        "{junk}"
    );
    let inbox = String::from_utf8(server.mail_get("alice@example.test", 1)).unwrap();
    assert!(
        inbox.contains("\r\nSubject: news\r\n"),
        "not tagged: {inbox}"
    );
    assert!(inbox.contains("X-Spam-Report: No tests="), "{inbox}");
    let check = String::from_utf8(server.admin(&["rules", "check"])).unwrap();
    assert!(
        !check.contains("add_header"),
        "understood, not skipped: {check}"
    );
}
