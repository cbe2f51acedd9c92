//! The admin console end to end: `gannet serve` creates the first administrator, and
//! tests/admin-console-api.py drives the pages and the JSON API over HTTP (login,
//! lockout, CSRF, sessions, tokens, the actions and their refusals). The command-line
//! forms of the same actions are tested here too: one implementation serves both.

use std::process::Command;

use gannet_tests::{greeting_from, RawSmtp, Server};

/// A message with a forbidden attachment (held) and a hostile subject.
fn hostile_held_message() -> Vec<u8> {
    b"From: \"<img src=x onerror=alert(2)>\" <friend@outside.example>\r\n\
To: <alice@example.test>\r\n\
Subject: <script>alert(1)</script>\"><img src=x onerror=alert(3)>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
hi\r\n\
--b1\r\n\
Content-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\n\
Content-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\
--b1--\r\n"
        .to_vec()
}

#[test]
fn the_console_and_its_api_answer_only_who_logged_in() {
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    // The first start made an administrator and left its password, for its owner only.
    let file = server.data().join("admin-password");
    let password = std::fs::read_to_string(&file).expect("admin-password written");
    let password = password.trim().to_string();
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o077,
        0,
        "admin-password is readable by others: {mode:o}"
    );
    assert!(server.log().contains("administrator created"));

    let mut smtp = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    smtp.cmd("EHLO outside.example").unwrap();
    let reply = smtp
        .send_message(
            "friend@outside.example",
            "alice@example.test",
            &hostile_held_message(),
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");

    let token = String::from_utf8(server.admin(&["admin", "token", "create", "admin"])).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("admin-console-api.py");
    let out = Command::new("python3")
        .arg(&script)
        .args([
            &server.admin.ip().to_string(),
            &server.admin.port().to_string(),
            &password,
            token.trim(),
            &server.imaps.port().to_string(),
        ])
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("admin console ok"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    // The edited configuration starts the server again, and the replaced certificate is
    // the one it loads.
    server.terminate(std::time::Duration::from_secs(10));
    server.start();
    let served = gannet_tests::python(
        "import hashlib, ssl, sys\n\
         pem = ssl.get_server_certificate(('127.0.0.1', int(sys.argv[1])))\n\
         on_disk = open(sys.argv[2]).read()\n\
         print(ssl.PEM_cert_to_DER_cert(pem) == ssl.PEM_cert_to_DER_cert(on_disk))",
        &[
            &server.imaps.port().to_string(),
            server.data().join("tls/cert.pem").to_str().unwrap(),
        ],
    );
    assert_eq!(served.trim(), "True");
}

/// The actions the console offers, from the command line (through the running
/// server's control socket): delete, disable, password, aliases, whitelist, domains.
#[test]
fn every_console_action_has_a_command_line_form() {
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    let run = |args: &[&str]| -> (bool, String) {
        let out = server.gannet(args);
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    // A message refused after DATA (alice's mailbox is full) is in the trace, refused.
    assert!(run(&["account", "set", "alice@example.test", "--quota", "1000"]).0);
    let mut smtp = RawSmtp::connect(server.smtp).unwrap();
    smtp.cmd("EHLO inside.example").unwrap();
    let big = format!("Subject: too big\r\n\r\n{}\r\n", "x".repeat(4000));
    let reply = smtp
        .send_message("a@inside.example", "alice@example.test", big.as_bytes())
        .unwrap();
    assert!(reply.starts_with('4') || reply.starts_with('5'), "{reply}");
    // The refusal is recorded with the next group commit, not before the reply: wait.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let (_, trace) = run(&["trace", "--recipient", "alice@example.test"]);
        if trace.contains("refused: mailbox full") || std::time::Instant::now() > deadline {
            break trace;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(
        refused.contains("Subject: too big") && refused.contains("refused: mailbox full"),
        "{refused}"
    );
    // A weak password is refused by the same policy as at creation.
    let (ok, text) = run(&["account", "set", "alice@example.test", "--password", "weak"]);
    assert!(!ok && text.contains("8"), "{text}");
    let (ok, _) = run(&[
        "account",
        "set",
        "alice@example.test",
        "--password",
        "Changed123",
    ]);
    assert!(ok);
    let (ok, text) = run(&["alias", "list"]);
    assert!(
        ok && text.contains("bob@example.test\talice@example.test"),
        "{text}"
    );
    assert!(run(&["alias", "remove", "bob@example.test"]).0);
    assert!(!run(&["alias", "list"]).1.contains("bob@"));
    assert!(run(&["whitelist", "add", "alice@example.test", "*@friends.test"]).0);
    assert!(
        run(&[
            "whitelist",
            "remove",
            "alice@example.test",
            "*@friends.test"
        ])
        .0
    );
    assert!(run(&["account", "disable", "carol@example.test"]).0);
    let (ok, text) = run(&["account", "delete", "carol@example.test"]);
    assert!(!ok && text.contains("--yes"), "{text}");
    assert!(run(&["account", "delete", "carol@example.test", "--yes"]).0);
    assert!(!run(&["account", "list"]).1.contains("carol@"));
    let (ok, text) = run(&["domain", "remove", "example.test"]);
    assert!(!ok && text.contains("accounts"), "{text}");
    assert!(run(&["admin", "add", "ops", "--password", "Operator12"]).0);
    let (_, text) = run(&["admin", "list"]);
    assert!(text.contains("admin\n") && text.contains("ops\n"), "{text}");
    assert!(!run(&["admin", "add", "ops2", "--password", "short"]).0);
}

/// The Python with Playwright that the test command installs (scripts/install-deps.sh).
fn browser_python() -> std::path::PathBuf {
    let python =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-venv/bin/python");
    assert!(
        python.exists() && std::path::Path::new("/usr/bin/chromium").exists(),
        "Playwright or Chromium missing: run scripts/install-deps.sh (the test command does)"
    );
    python
}

/// Log in, create a domain and an account (a weak password shows the policy), set the
/// spam level and the whitelist, release a held message whose subject is markup (no
/// script runs), retry and bounce a queued message, log out: in Chromium.
#[test]
fn the_console_in_a_browser() {
    let python = browser_python();
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    let password = std::fs::read_to_string(server.data().join("admin-password")).unwrap();
    let mut smtp = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    smtp.cmd("EHLO outside.example").unwrap();
    let held = smtp
        .send_message(
            "friend@outside.example",
            "alice@example.test",
            &hostile_held_message(),
        )
        .unwrap();
    assert!(held.starts_with("250"), "{held}");
    // A message from swaks, to find in the trace.
    let swaks = Command::new("swaks")
        .args(["--server", "127.0.0.1", "--port"])
        .arg(server.smtp.port().to_string())
        .args([
            "--from",
            "sender@outside.example",
            "--to",
            "alice@example.test",
        ])
        .args(["--header", "Subject: traced by swaks", "--body", "hello"])
        .output()
        .expect("swaks");
    assert!(
        swaks.status.success(),
        "{}",
        String::from_utf8_lossy(&swaks.stdout)
    );
    let cli =
        String::from_utf8(server.admin(&["trace", "--recipient", "alice@example.test"])).unwrap();
    assert!(
        cli.contains("Subject: traced by swaks")
            && cli.contains("filed in INBOX for alice@example.test"),
        "{cli}"
    );
    // From a trusted network, for a domain no DNS server answers for: it stays queued.
    let mut relay = RawSmtp::connect(server.smtp).unwrap();
    relay.cmd("EHLO inside.example").unwrap();
    let queued = relay
        .send_message(
            "alice@example.test",
            "someone@unreachable.test",
            b"Subject: waiting\r\n\r\nhello\r\n",
        )
        .unwrap();
    assert!(queued.starts_with("250"), "{queued}");
    let shots =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/admin-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("admin-console-browser.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(format!("http://{}", server.admin))
        .arg(password.trim())
        .arg(&shots)
        .output()
        .expect("the browser test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("browser ok"),
        "{stdout}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
}

/// `/metrics` (with a token) parses as Prometheus text, and its counters move with mail.
#[test]
fn metrics_parse_and_move_with_traffic() {
    let python = browser_python();
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    let token = String::from_utf8(server.admin(&["admin", "token", "create", "admin"])).unwrap();
    let scrape = || -> std::collections::HashMap<String, f64> {
        let script = "import sys, urllib.request\n\
            from prometheus_client.parser import text_string_to_metric_families\n\
            req = urllib.request.Request(sys.argv[1], headers={'Authorization': 'Bearer ' + sys.argv[2]})\n\
            text = urllib.request.urlopen(req).read().decode()\n\
            for family in text_string_to_metric_families(text):\n\
            \x20   for s in family.samples:\n\
            \x20       print(s.name, s.value)\n";
        let out = Command::new(&python)
            .args(["-c", script])
            .arg(format!("http://{}/metrics", server.admin))
            .arg(token.trim())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
            .collect()
    };
    let before = scrape();
    assert_eq!(before.get("gannet_accounts"), Some(&2.0), "{before:?}");
    // The store's files and its disk: the data directory holds at least RocksDB's logs.
    let gauge = |name: &str| before.get(name).copied().unwrap_or(0.0);
    assert!(gauge("gannet_data_bytes") > 0.0, "{before:?}");
    assert!(
        gauge("gannet_disk_available_bytes") > 0.0
            && gauge("gannet_disk_available_bytes") <= gauge("gannet_disk_size_bytes"),
        "{before:?}"
    );
    for i in 0..3 {
        let mut smtp = RawSmtp::connect(server.smtp).unwrap();
        smtp.cmd("EHLO inside.example").unwrap();
        let reply = smtp
            .send_message(
                "a@inside.example",
                "alice@example.test",
                format!("Subject: {i}\r\n\r\nhi\r\n").as_bytes(),
            )
            .unwrap();
        assert!(reply.starts_with("250"), "{reply}");
    }
    let after = scrape();
    let accepted = |m: &std::collections::HashMap<String, f64>| {
        m.get("gannet_messages_accepted_total")
            .copied()
            .unwrap_or(0.0)
    };
    assert_eq!(accepted(&after) - accepted(&before), 3.0, "{after:?}");
    // The latency histograms count the deliveries and commits since the start.
    assert!(
        after
            .get("gannet_delivery_seconds_count")
            .copied()
            .unwrap_or(0.0)
            >= 3.0,
        "{after:?}"
    );
    assert!(
        after
            .get("gannet_store_commit_seconds_count")
            .copied()
            .unwrap_or(0.0)
            >= 3.0,
        "{after:?}"
    );
    assert!(
        after.contains_key("gannet_spam_scan_seconds_bucket"),
        "{after:?}"
    );
    // Without a token: refused.
    let status = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .arg(format!("http://{}/metrics", server.admin))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&status.stdout), "401");
}

/// While passwords are accepted without TLS, the console's front page says so.
#[test]
fn the_dashboard_warns_while_plaintext_logins_are_allowed() {
    let mut server = Server::new("[auth]\nallow_plaintext = [\"pop3\"]\n");
    server.start();
    let token = String::from_utf8(server.admin(&["admin", "token", "create", "admin"])).unwrap();
    let out = Command::new("curl")
        .args(["-s", "-H"])
        .arg(format!("Authorization: Bearer {}", token.trim()))
        .arg(format!("http://{}/api/v1/status", server.admin))
        .output()
        .unwrap();
    let body = String::from_utf8_lossy(&out.stdout);
    assert!(
        body.contains("auth.allow_plaintext is on for pop3"),
        "{body}"
    );
}

/// A login over IMAPS (Python's imaplib) is the account's last login in the API and on
/// its page; an account that never logged in says so.
#[test]
fn the_last_login_is_recorded() {
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    let token = String::from_utf8(server.admin(&["admin", "token", "create", "admin"])).unwrap();
    gannet_tests::python(
        "import imaplib, ssl, sys\n\
         c = imaplib.IMAP4_SSL('127.0.0.1', int(sys.argv[1]), ssl_context=ssl._create_unverified_context())\n\
         c.login('alice@example.test', 'Secret123')\n\
         c.logout()",
        &[&server.imaps.port().to_string()],
    );
    let account = |address: &str| -> String {
        let out = Command::new("curl")
            .args(["-s", "-H"])
            .arg(format!("Authorization: Bearer {}", token.trim()))
            .arg(format!("http://{}/api/v1/accounts/{address}", server.admin))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // Written with the next group commit after the login: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let alice = loop {
        let answer = account("alice@example.test");
        if answer.contains("\"from\":\"127.0.0.1\"") || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(alice.contains("\"last_login\":{\"at\":"), "{alice}");
    assert!(account("carol@example.test").contains("\"last_login\":null"));
}

/// `curl` on the admin API with a token; returns the status and the body.
fn api(server: &Server, token: &str, method: &str, path: &str, body: &str) -> (u16, String) {
    let url = format!("http://{}{path}", server.admin);
    let out = Command::new("curl")
        .args(["-sS", "-X", method, "-w", "\n%{http_code}", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .args(["-H", "Content-Type: application/json"])
        .args(if body.is_empty() {
            vec![]
        } else {
            vec!["--data-binary", body]
        })
        .arg(&url)
        .output()
        .expect("curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", "0"));
    (status.trim().parse().unwrap_or(0), body.to_string())
}

/// Recipients one transaction from `source` gets accepted, of `count` (up to four)
/// different ones asked for.
fn recipients_accepted(server: &Server, source: &str, count: usize) -> usize {
    let mut smtp = RawSmtp::connect_from(server.smtp, source).unwrap();
    smtp.cmd("EHLO outside.example").unwrap();
    assert!(smtp
        .cmd("MAIL FROM:<a@outside.example>")
        .unwrap()
        .starts_with("250"));
    ["alice", "carol", "bob", "dave"][..count]
        .iter()
        .filter(|name| {
            smtp.cmd(&format!("RCPT TO:<{name}@example.test>"))
                .unwrap()
                .starts_with("250")
        })
        .count()
}

/// Whether a client at `source` may relay to a domain not hosted here.
fn may_relay(server: &Server, source: &str) -> bool {
    let mut smtp = RawSmtp::connect_from(server.smtp, source).unwrap();
    smtp.cmd("EHLO inside.example").unwrap();
    assert!(smtp
        .cmd("MAIL FROM:<a@inside.example>")
        .unwrap()
        .starts_with("250"));
    smtp.cmd("RCPT TO:<someone@elsewhere.test>")
        .unwrap()
        .starts_with("250")
}

/// Settings changed through the console's API (or the file and a SIGHUP) apply to the
/// running server at once: blocklists, recipient and connection limits, trusted
/// networks, the default spam level. A refused change leaves the file and the server
/// as they were.
#[test]
fn settings_apply_to_the_running_server() {
    let dns = gannet_tests::Dns::start(&["--host-record=2.0.0.127.bl.test,127.0.0.2".into()]);
    let mut server = Server::new(&format!("[dns]\nnameservers = [\"{}\"]\n", dns.addr));
    server.start();
    server.with_example_accounts();
    let token = String::from_utf8(server.admin(&["admin", "token", "create", "admin"])).unwrap();
    let token = token.trim();

    // As started: no blocklist, 50 recipients, only loopback trusted.
    assert!(greeting_from(server.smtp, "127.0.0.2").starts_with("220 "));
    assert_eq!(recipients_accepted(&server, "127.0.0.4", 3), 3);
    assert!(!may_relay(&server, "127.0.0.5"));
    let first = RawSmtp::connect_from(server.smtp, "127.0.0.6").unwrap();
    let second = RawSmtp::connect_from(server.smtp, "127.0.0.6");
    assert!(second.is_ok());
    drop((first, second));

    let change = r#"{"dnsbl": [{"zone": "bl.test", "action": "reject", "answers": ["127.0.0.2"]}],
        "max_recipients": 2, "max_connections_per_ip": 1, "default_level": "high",
        "trusted_networks": ["127.0.0.1/32", "::1/128", "127.0.0.5/32"]}"#;
    let (status, body) = api(&server, token, "PUT", "/api/v1/settings", change);
    assert_eq!(status, 200, "{body}\n{}", server.log());

    assert_eq!(
        greeting_from(server.smtp, "127.0.0.2"),
        "554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test\r\n"
    );
    assert_eq!(recipients_accepted(&server, "127.0.0.7", 3), 2);
    assert!(may_relay(&server, "127.0.0.5"), "127.0.0.5 is trusted now");
    let _first = RawSmtp::connect_from(server.smtp, "127.0.0.6").unwrap();
    assert!(greeting_from(server.smtp, "127.0.0.6").starts_with("421"));
    let (status, body) = api(
        &server,
        token,
        "POST",
        "/api/v1/accounts",
        r#"{"address": "dave@example.test", "password": "A long enough passphrase 7"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let (_, dave) = api(
        &server,
        token,
        "GET",
        "/api/v1/accounts/dave@example.test",
        "",
    );
    assert!(dave.contains(r#""spam_level":"high""#), "{dave}");

    // The file holds the change, the rest of it as it was.
    let file = std::fs::read_to_string(&server.config).unwrap();
    assert!(
        file.contains("[[dnsbl]]")
            && file.contains("max_recipients = 2")
            && file.contains("[listen]"),
        "{file}"
    );
    // Refused: nothing written, nothing applied.
    for bad in [
        r#"{"max_recipients": 0}"#,
        r#"{"dnsbl": [{"zone": "bl.test", "action": "maybe"}]}"#,
        r#"{"trusted_networks": ["10.0.0.0/99"]}"#,
        r#"{"max_recipients": 9, "nonsense": 1}"#,
    ] {
        let (status, body) = api(&server, token, "PUT", "/api/v1/settings", bad);
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(
            std::fs::read_to_string(&server.config).unwrap(),
            file,
            "{bad}"
        );
    }
    // (Each client address once: a closed connection leaves the count a moment later.)
    assert_eq!(recipients_accepted(&server, "127.0.0.8", 3), 2);
    // The refusals before any data are in the trace: the blocklisted client, the
    // recipient over the limit, an unknown one.
    let mut smtp = RawSmtp::connect_from(server.smtp, "127.0.0.10").unwrap();
    smtp.cmd("EHLO outside.example").unwrap();
    smtp.cmd("MAIL FROM:<probe@outside.example>").unwrap();
    assert!(smtp
        .cmd("RCPT TO:<nobody@example.test>")
        .unwrap()
        .starts_with("550"));
    drop(smtp);
    let traced = |query: &str, want: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let (_, found) = api(&server, token, "GET", &format!("/api/v1/trace?{query}"), "");
            if found.contains(want) || std::time::Instant::now() > deadline {
                return found;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let found = traced("client=127.0.0.2", "refused at connect from 127.0.0.2");
    assert!(found.contains("blocked using bl.test"), "{found}");
    let found = traced("client=127.0.0.7", "Too many recipients");
    assert!(found.contains("for bob@example.test: 452 4.5.3"), "{found}");
    let found = traced("recipient=nobody@example.test", "user unknown");
    assert!(
        found.contains("<probe@outside.example> for nobody@example.test: 550 5.1.1"),
        "{found}"
    );
    // Refused recipients: the relay from 127.0.0.5 before it was trusted, bob over
    // the limit from 127.0.0.7 and 127.0.0.8, nobody.
    let (_, metrics) = api(&server, token, "GET", "/metrics", "");
    assert!(
        metrics.contains("gannet_recipients_refused_total 4")
            && metrics.contains("gannet_connections_refused_total 1"),
        "{metrics}"
    );
    let (status, settings) = api(&server, token, "GET", "/api/v1/settings", "");
    assert!(
        status == 200 && settings.contains(r#""max_recipients":2"#),
        "{settings}"
    );

    // Edited by hand, then SIGHUP: the same keys apply.
    std::fs::write(
        &server.config,
        file.replace("max_recipients = 2", "max_recipients = 3"),
    )
    .unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !server.log().contains("max_recipients=3") && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(
        recipients_accepted(&server, "127.0.0.9", 4),
        3,
        "{}",
        server.log()
    );
}
