//! The Bayes database from the command line (issue #17): `gannet spam learn` reads message
//! files, directories, Maildirs and mbox files; a message learned twice counts once,
//! learned the other way it moves, and `gannet spam forget` takes it out; with the server
//! stopped (the store opened by the command) and running (over its control socket).

use gannet_tests::Server;

fn message(i: usize, subject: &str) -> String {
    format!(
        "Message-ID: <m{i}@example.org>\r\nFrom: a{i}@example.org\r\nSubject: {subject}\r\n\r\nbody {i} {subject}\r\n"
    )
}

/// Writes `message` to a file (to learn or compare later) and delivers it to alice over
/// SMTP; returns the file's path.
fn file_and_delivery(server: &Server, message: &str) -> std::path::PathBuf {
    let file = server.dir.path().join("m.eml");
    std::fs::write(&file, message).unwrap();
    let mut c = gannet_tests::RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO test.example").unwrap();
    let r = c
        .send_message(
            "offers@offers.example",
            "alice@example.test",
            message.as_bytes(),
        )
        .unwrap();
    assert!(r.starts_with("250"), "{r}");
    file
}

/// Runs `args` until its output passes `done` (learning from IMAP moves happens after the
/// client's answer, in the background), at most 50 times 100 ms; the last output.
fn summary_when(server: &Server, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let mut out = String::new();
    for _ in 0..50 {
        out = summary(server, args);
        if done(&out) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    out
}

/// Moves alice's message UID 1 from one mailbox to another with imaplib.
fn imap_move(server: &Server, from: &str, to: &str) {
    let script = r#"
import imaplib, sys
m = imaplib.IMAP4('127.0.0.1', int(sys.argv[1]))
m.login('alice@example.test', 'Secret123')
m.select(sys.argv[2])
print('move', m.uid('MOVE', '1', sys.argv[3])[0])
"#;
    let port = server.imap.port().to_string();
    let out = gannet_tests::python(script, &[&port, from, to]);
    assert!(out.contains("move OK"), "{out}");
}

fn summary(server: &Server, args: &[&str]) -> String {
    let out = server.admin(args);
    String::from_utf8(out).unwrap()
}

#[test]
fn learning_from_files_maildirs_and_mbox_counts_each_message_once() {
    let mut server = Server::new("");
    let dir = server.dir.path().to_path_buf();
    let spam = dir.join("spam");
    std::fs::create_dir_all(&spam).unwrap();
    for i in 0..3 {
        std::fs::write(spam.join(format!("{i}.eml")), message(i, "cheap pills")).unwrap();
    }
    let maildir = dir.join("Maildir");
    for sub in ["cur", "new", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    std::fs::write(maildir.join("cur/1:2,S"), message(10, "meeting")).unwrap();
    std::fs::write(maildir.join("new/2"), message(11, "lunch")).unwrap();
    // Still being written: not a message yet.
    std::fs::write(maildir.join("tmp/3"), message(12, "partial")).unwrap();
    let mbox = dir.join("ham.mbox");
    let mbox_text = format!(
        "From a@example.org Mon Jan  1 00:00:00 2026\n{}\nFrom b@example.org Mon Jan  1 00:00:01 2026\n{}",
        message(20, "report").replace("\r\n", "\n"),
        message(21, "minutes").replace("\r\n", "\n")
    );
    std::fs::write(&mbox, mbox_text).unwrap();
    let (spam, maildir, mbox) = (
        spam.to_str().unwrap(),
        maildir.to_str().unwrap(),
        mbox.to_str().unwrap(),
    );

    let out = summary(
        &server,
        &["spam", "learn", "--spam", spam, "--ham", maildir, mbox],
    );
    assert!(
        out.starts_with("learned 7, already known 0, moved 0,"),
        "{out}"
    );
    let out = summary(
        &server,
        &["spam", "learn", "--spam", spam, "--ham", maildir, mbox],
    );
    assert!(
        out.starts_with("learned 0, already known 7, moved 0,"),
        "{out}"
    );
    // A ham message learned as spam moves; forgetting takes it out.
    let one = format!("{maildir}/cur/1:2,S");
    let out = summary(&server, &["spam", "learn", "--spam", &one]);
    assert!(
        out.starts_with("learned 0, already known 0, moved 1,"),
        "{out}"
    );
    let out = summary(&server, &["spam", "forget", &one]);
    assert!(out.contains("forgotten 1, not known 0"), "{out}");
    let out = summary(&server, &["spam", "forget", &one]);
    assert!(out.contains("forgotten 0, not known 1"), "{out}");

    // The server running: the counts go through it.
    server.start();
    let out = summary(&server, &["spam", "learn", "--ham", &one]);
    assert!(out.starts_with("learned 1, already known 0"), "{out}");
    let out = summary(&server, &["spam", "learn", "--ham", &one]);
    assert!(out.starts_with("learned 0, already known 1"), "{out}");
    // A file that is not there fails the command, after learning the others.
    let out = server.gannet(&["spam", "learn", "--ham", "/nonexistent/x.eml"]);
    assert!(!out.status.success());
}

/// Trained on the corpus, the classifier's verdict is in every delivery's headers: a
/// spam of the corpus hits BAYES_99 and a ham BAYES_00, in the Bayes score set.
#[test]
fn a_trained_database_scores_deliveries() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let (spam, ham) = (root.join("spam"), root.join("ham"));
    let mut server = Server::new("");
    server.with_example_accounts();
    let out = summary(
        &server,
        &[
            "spam",
            "learn",
            "--spam",
            spam.to_str().unwrap(),
            "--ham",
            ham.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("learned 3125,"), "{out}");
    // `gannet spam scan` reads the database when no server holds the store.
    let mut spam_files: Vec<_> = std::fs::read_dir(&spam)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    spam_files.sort();
    let scan = summary(
        &server,
        &["spam", "scan", "--json", spam_files[0].to_str().unwrap()],
    );
    assert!(
        scan.contains("\"bayes\":{\"probability\":") && scan.contains("BAYES_99"),
        "{scan}"
    );
    server.start();
    // With the server running, the scan goes through it, and its database is read.
    let out = server.gannet(&["spam", "scan", "--json", spam_files[0].to_str().unwrap()]);
    let (scan, summary) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        summary.contains("on the running server") && summary.contains("Bayes read"),
        "{summary}"
    );
    assert!(
        scan.contains("\"bayes\":{\"probability\":") && scan.contains("BAYES_99"),
        "{scan}"
    );
    let first = |dir: &std::path::Path| {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        std::fs::read(&files[0]).unwrap()
    };
    let cases = [(first(&spam), "BAYES_99"), (first(&ham), "BAYES_00")];
    for (message, _) in &cases {
        let mut c = gannet_tests::RawSmtp::connect(server.smtp).unwrap();
        c.cmd("EHLO test.example").unwrap();
        let body = String::from_utf8_lossy(message)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        let r = c
            .send_message("sender@example.org", "alice@example.test", body.as_bytes())
            .unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    // Delivered in order: the spam has the lower UID.
    let statuses: Vec<String> = server
        .mail_list("alice@example.test")
        .iter()
        .map(|(uid, _, _)| {
            let stored = server.mail_get("alice@example.test", *uid);
            let text = String::from_utf8_lossy(&stored).into_owned();
            text.lines()
                .find(|l| l.starts_with("X-Spam-Status:"))
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    for (status, (_, rule)) in statuses.iter().zip(&cases) {
        assert!(
            status.contains(rule) && status.contains(" bayes="),
            "{rule}: {status}"
        );
    }
}

/// A user moving a message into Junk over IMAP (Python's imaplib) teaches the classifier
/// it is spam; moving it back out, ham: `gannet spam learn` then finds it known as such.
#[test]
fn junk_moves_over_imap_are_learned() {
    let mut server = Server::new("[auth]\nplaintext_on_loopback = true\n");
    server.start();
    server.with_example_accounts();
    let message = "Message-ID: <junk-move-1@example.org>\r\nFrom: offers@example.org\r\nSubject: cheap pills\r\n\r\nBuy cheap pills today\r\n";
    let file = file_and_delivery(&server, message);
    imap_move(&server, "INBOX", "Junk");
    let file = file.to_str().unwrap();
    let known = |class: &str| {
        summary_when(&server, &["spam", "learn", class, file], |out| {
            out.contains("already known 1")
        })
    };
    let out = known("--spam");
    assert!(out.starts_with("learned 0, already known 1"), "{out}");
    imap_move(&server, "Junk", "INBOX");
    let out = known("--ham");
    assert!(out.starts_with("learned 0, already known 1"), "{out}");
}

/// A spam report (issue #17): an authenticated user forwards spam as an attachment to
/// `spam.report_address` (Python's smtplib on the submission port); the attached message
/// is learned as spam, the report is kept for the administrator and acknowledged. The
/// same address refuses mail from outside, which teaches nothing.
#[test]
fn reports_from_users_are_learned_and_outsiders_cannot_report() {
    let mut server = Server::new(
        "[auth]\nplaintext_on_loopback = true\n[spam]\nreport_address = \"spam@example.test\"\n",
    );
    server.start();
    server.with_example_accounts();
    server.admin(&[
        "account",
        "add",
        "spam@example.test",
        "--password",
        "Secret123",
    ]);
    let spam = "Message-ID: <reported-1@offers.example>\r\nFrom: offers@offers.example\r\nSubject: cheap pills\r\n\r\nBuy cheap pills today\r\n";
    let file = server.dir.path().join("spam.eml");
    std::fs::write(&file, spam).unwrap();

    // From outside: refused at RCPT, nothing learned.
    let mut c = gannet_tests::RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO outside.example").unwrap();
    c.cmd("MAIL FROM:<alice@example.test>").unwrap();
    let r = c.cmd("RCPT TO:<spam@example.test>").unwrap();
    assert!(r.starts_with("550 5.7.1"), "{r}");
    let status = summary(&server, &["spam", "status"]);
    assert!(status.starts_with("learned: 0 spam, 0 ham"), "{status}");

    let script = r#"
import smtplib, sys
from email.message import EmailMessage
from email import message_from_bytes, policy
report = EmailMessage()
report['From'] = 'alice@example.test'
report['To'] = 'spam@example.test'
report['Subject'] = 'Fwd: cheap pills'
report.set_content('This is spam.')
report.add_attachment(message_from_bytes(open(sys.argv[2], 'rb').read(), policy=policy.SMTP))
with smtplib.SMTP('127.0.0.1', int(sys.argv[1]), timeout=30) as s:
    s.login('alice@example.test', 'Secret123')
    print('refused', s.send_message(report))
"#;
    let out = gannet_tests::python(
        script,
        &[
            &server.submission.port().to_string(),
            file.to_str().unwrap(),
        ],
    );
    assert!(out.contains("refused {}"), "{out}");
    let status = summary(&server, &["spam", "status"]);
    assert!(status.starts_with("learned: 1 spam, 0 ham"), "{status}");
    // What was learned is the attached message itself.
    let again = summary(
        &server,
        &["spam", "learn", "--spam", file.to_str().unwrap()],
    );
    assert!(again.starts_with("learned 0, already known 1"), "{again}");
    // Kept for the administrator, and acknowledged to the reporter.
    let list = summary(&server, &["spam", "reports", "list"]);
    let fields: Vec<&str> = list
        .lines()
        .next()
        .unwrap_or_default()
        .split('\t')
        .collect();
    assert_eq!(fields.len(), 5, "{list}");
    assert_eq!(
        (fields[0], fields[2], fields[3]),
        ("1", "alice@example.test", "1"),
        "{list}"
    );
    let shown = summary(&server, &["spam", "reports", "show", "1"]);
    assert!(shown.contains("Buy cheap pills today"), "{shown}");
    let inbox = server.mail_list("alice@example.test");
    assert!(
        inbox
            .iter()
            .any(|(_, _, s)| s == "Spam report received: Fwd: cheap pills"),
        "{inbox:?}"
    );
}

/// mbsync (isync 1.4) moves a message by APPEND to the new folder and a delete in the old
/// one: a message moved into the local Junk and synced is learned as spam.
#[test]
fn a_junk_move_synced_by_mbsync_is_learned() {
    gannet_tests::require_tool("mbsync");
    let mut server = Server::new("");
    server.start();
    server.with_example_accounts();
    let message = "Message-ID: <mbsync-junk-1@offers.example>\r\nFrom: offers@offers.example\r\nSubject: cheap watches\r\n\r\nBuy cheap watches today\r\n";
    let file = file_and_delivery(&server, message);
    let dir = server.dir.path().to_path_buf();
    let maildir = dir.join("Mail");
    std::fs::create_dir_all(&maildir).unwrap();
    let rc = server.mbsync_config(&maildir, "INBOX Junk", "Create Both\nExpunge Both\n");
    let mbsync = || {
        server.mbsync(&rc);
    };
    mbsync();
    let local: Vec<_> = ["new", "cur"]
        .iter()
        .flat_map(|d| std::fs::read_dir(maildir.join("INBOX").join(d)).unwrap())
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(local.len(), 1, "{local:?}");
    // The user's mail program moves it to Junk (a new file name there: mbsync's UID
    // belongs to the old folder).
    let junk_cur = maildir.join("Junk/cur");
    std::fs::create_dir_all(&junk_cur).unwrap();
    std::fs::rename(&local[0], junk_cur.join("1700000000.moved.host:2,S")).unwrap();
    let status = summary(&server, &["spam", "status"]);
    assert!(status.starts_with("learned: 0 spam"), "{status}");
    mbsync();
    assert!(server.mail_list("alice@example.test").is_empty());
    let in_junk = String::from_utf8(server.admin(&[
        "mail",
        "list",
        "alice@example.test",
        "--mailbox",
        "Junk",
    ]))
    .unwrap();
    assert!(in_junk.contains("cheap watches"), "{in_junk}");
    // Learned in the background after the APPEND.
    let status = summary_when(&server, &["spam", "status"], |s| {
        s.starts_with("learned: 1 spam")
    });
    assert!(status.starts_with("learned: 1 spam, 0 ham"), "{status}");
    let again = summary(
        &server,
        &["spam", "learn", "--spam", file.to_str().unwrap()],
    );
    assert!(again.starts_with("learned 0, already known 1"), "{again}");
}

/// Auto-learning (`spam.bayes_auto_learn`): a delivery scoring under the ham threshold is
/// learned as ham, one at the spam threshold with points from both headers and body as
/// spam; one a person taught the filter before is left as they taught it; a message with
/// its points from the body alone is not learned. Then `gannet spam expire` trims the
/// database to a bound.
#[test]
fn deliveries_are_auto_learned_and_tokens_expire() {
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("local.cf"),
        "header SUBJ_PILLS Subject =~ /pills/i\nscore SUBJ_PILLS 4\n\
         body BODY_PILLS /cheap pills/i\nscore BODY_PILLS 4\n\
         body BODY_CASINO /casino bonus/i\nscore BODY_CASINO 9\n",
    )
    .unwrap();
    let mut server = Server::new(&format!(
        "[spam]\nrules_dirs = [\"{}\"]\nbayes_auto_learn = true\nbayes_auto_learn_threshold_spam = 8.0\n",
        rules.path().display()
    ));
    server.start();
    server.with_example_accounts();
    let mail = |id: &str, subject: &str, body: &str| {
        format!(
            "Message-ID: <{id}@example.org>\r\nDate: Sat, 05 Dec 2026 10:00:00 +0000\r\n\
             From: Offers <offers@example.org>\r\nTo: alice@example.test\r\nSubject: {subject}\r\n\r\n{body}\r\n"
        )
    };
    let status = |server: &Server| summary(server, &["spam", "status"]);
    // Taught by a person first: ham, although its rules will score it as spam.
    let taught = server.dir.path().join("taught.eml");
    let taught_text = mail(
        "taught",
        "pills for grandma",
        "the cheap pills she asked for",
    );
    std::fs::write(&taught, &taught_text).unwrap();
    let out = summary(
        &server,
        &["spam", "learn", "--ham", taught.to_str().unwrap()],
    );
    assert!(out.starts_with("learned 1,"), "{out}");
    let ham = file_and_delivery(&server, &mail("ham1", "lunch", "see you at noon for lunch"));
    let ham = std::fs::read(ham).unwrap();
    let spam = mail("spam1", "Cheap PILLS", "buy cheap pills today");
    file_and_delivery(&server, &spam);
    file_and_delivery(&server, &taught_text);
    // 9 points, all from the body: not learned.
    file_and_delivery(
        &server,
        &mail("casino1", "hello", "your casino bonus awaits"),
    );
    let out = summary_when(&server, &["spam", "status"], |s| {
        s.starts_with("learned: 1 spam, 2 ham")
    });
    assert!(out.starts_with("learned: 1 spam, 2 ham"), "{out}");
    // What was learned, and as what: each message learned again is already known.
    let check = |text: &[u8], class: &str| {
        let file = server.dir.path().join("check.eml");
        std::fs::write(&file, text).unwrap();
        summary(&server, &["spam", "learn", class, file.to_str().unwrap()])
    };
    assert!(check(spam.as_bytes(), "--spam").starts_with("learned 0, already known 1"));
    assert!(check(&ham, "--ham").starts_with("learned 0, already known 1"));
    assert!(check(taught_text.as_bytes(), "--ham").starts_with("learned 0, already known 1"));
    // The casino message was not learned: learning it now counts it.
    let casino = mail("casino1", "hello", "your casino bonus awaits");
    assert!(check(casino.as_bytes(), "--spam").starts_with("learned 1,"));
    // Expiry: down to three quarters of the bound, the totals kept.
    let before = status(&server);
    // "learned: S spam, H ham, N tokens (...)"
    let tokens = |s: &str| -> usize {
        s.split(", ")
            .find_map(|part| part.split_once(" tokens"))
            .and_then(|(n, _)| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("no token count in {s}"))
    };
    let n = tokens(&before);
    assert!(n > 20, "{before}");
    let out = summary(&server, &["spam", "expire", "--max-tokens", "20"]);
    assert!(
        out.starts_with(&format!("expired {} tokens, 15 left", n - 15)),
        "{out}"
    );
    let after = status(&server);
    assert_eq!(tokens(&after), 15, "{after}");
    assert!(after.starts_with("learned: 2 spam, 2 ham"), "{after}");
    // Under the bound: nothing more.
    let out = summary(&server, &["spam", "expire", "--max-tokens", "20"]);
    assert!(out.starts_with("expired 0 tokens, 15 left"), "{out}");
}

/// Per-account databases (`spam.bayes_per_account`): carol trained her own (`spam learn
/// --account`), the site-wide one is empty. A spam to both is scored with carol's
/// database for carol (BAYES_99) and without Bayes for alice; alice's Junk move over
/// IMAP teaches her own database, not the site-wide one.
#[test]
fn accounts_learn_and_are_scored_with_their_own_databases() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let (spam, ham) = (root.join("spam"), root.join("ham"));
    let mut server =
        Server::new("[auth]\nplaintext_on_loopback = true\n[spam]\nbayes_per_account = true\n");
    server.with_example_accounts();
    let out = summary(
        &server,
        &[
            "spam",
            "learn",
            "--account",
            "carol@example.test",
            "--spam",
            spam.to_str().unwrap(),
            "--ham",
            ham.to_str().unwrap(),
        ],
    );
    assert!(out.starts_with("learned 3125,"), "{out}");
    server.start();
    let mut files: Vec<_> = std::fs::read_dir(&spam)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let body = String::from_utf8_lossy(&std::fs::read(&files[0]).unwrap())
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let mut c = gannet_tests::RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO test.example").unwrap();
    c.cmd("MAIL FROM:<sender@example.org>").unwrap();
    for rcpt in ["alice@example.test", "carol@example.test"] {
        let r = c.cmd(&format!("RCPT TO:<{rcpt}>")).unwrap();
        assert!(r.starts_with("250"), "{r}");
    }
    assert!(c.cmd("DATA").unwrap().starts_with("354"));
    c.send(body.as_bytes()).unwrap();
    c.send(b".\r\n").unwrap();
    let r = c.reply().unwrap();
    assert!(r.starts_with("250"), "{r}");
    let status = |address: &str| -> String {
        let (uid, _, _) = server.mail_list(address)[0].clone();
        let stored = String::from_utf8_lossy(&server.mail_get(address, uid)).into_owned();
        stored
            .lines()
            .find(|l| l.starts_with("X-Spam-Status:"))
            .unwrap_or("")
            .to_string()
    };
    let carol = status("carol@example.test");
    assert!(
        carol.contains("BAYES_99") && carol.contains(" bayes="),
        "{carol}"
    );
    let alice = status("alice@example.test");
    assert!(
        !alice.contains("BAYES_") && !alice.contains(" bayes="),
        "{alice}"
    );
    // Alice moves it into Junk: her own database learns it, the site-wide one does not.
    imap_move(&server, "INBOX", "Junk");
    let out = summary_when(
        &server,
        &["spam", "status", "--account", "alice@example.test"],
        |s| s.starts_with("learned: 1 spam"),
    );
    assert!(out.starts_with("learned: 1 spam, 0 ham"), "{out}");
    let site = summary(&server, &["spam", "status"]);
    assert!(site.starts_with("learned: 0 spam, 0 ham"), "{site}");
}
