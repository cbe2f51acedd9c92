//! The quarantine end to end, with real clients and a real clamd: a forbidden attachment
//! or a virus from the outside is held, its recipient finds a notice in the INBOX, the
//! release link's page (curl over HTTPS) shows it, a POST releases the original byte for
//! byte (IMAP FETCH); viruses from authenticated senders are refused with 554 naming
//! them; a scan that cannot be done answers 451; expired links and the purge.

use std::process::Command;
use std::time::Duration;

use gannet_tests::{python, require_tool, Clamd, RawSmtp, Server, EICAR};

const PLAIN_LOGIN: &str = "[auth]\nplaintext_on_loopback = true\n";

/// A message from the outside with a `holiday.jpg.pif` attachment (a double extension).
fn pif_message() -> Vec<u8> {
    b"From: <friend@outside.example>\r\n\
To: <alice@example.test>\r\n\
Subject: holiday pictures\r\n\
Message-ID: <pif-1@outside.example>\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
\r\n\
--b1\r\n\
Content-Type: text/plain\r\n\
\r\n\
Look at these!\r\n\
--b1\r\n\
Content-Type: image/jpeg; name=\"holiday.jpg.pif\"\r\n\
Content-Disposition: attachment; filename=\"holiday.jpg.pif\"\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\
--b1--\r\n"
        .to_vec()
}

/// Sends `message` to alice over the MX port from the outside (127.0.0.2: not a trusted
/// network); the final reply.
fn send(server: &Server, message: &[u8]) -> String {
    let mut smtp = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    smtp.cmd("EHLO outside.example").unwrap();
    smtp.send_message("friend@outside.example", "alice@example.test", message)
        .unwrap()
}

/// The messages of alice's INBOX, whole, over IMAP (Python's imaplib), as lossy text
/// and as bytes (hex), in UID order.
fn inbox(server: &Server) -> Vec<Vec<u8>> {
    let out = python(
        r#"
import imaplib, sys
c = imaplib.IMAP4("127.0.0.1", int(sys.argv[1]))
c.login("alice@example.test", "Secret123")
c.select("INBOX")
typ, data = c.uid("SEARCH", None, "ALL")
for uid in data[0].split():
    typ, msg = c.uid("FETCH", uid, "(BODY.PEEK[])")
    print(msg[0][1].hex())
c.logout()
"#,
        &[&server.imap.port().to_string()],
    );
    out.lines()
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// The release link in a notice.
fn link_in(notice: &[u8]) -> String {
    let text = String::from_utf8_lossy(notice);
    text.lines()
        .find(|l| l.starts_with("https://") && l.contains("/quarantine/"))
        .unwrap_or_else(|| panic!("no link in {text}"))
        .trim()
        .to_string()
}

/// curl to the release page: GET, or POST with `action`; (status, headers, body).
fn page(server: &Server, link: &str, action: Option<&str>) -> (u16, String, String) {
    let path = link.split_once("/quarantine/").unwrap().1;
    let mut c = server.curl_tls("https", server.web, &format!("quarantine/{path}"));
    c.args(["--include", "--write-out", "\n%{http_code}"]);
    if let Some(action) = action {
        c.args(["--data", &format!("action={action}")]);
    }
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (rest, code) = text.trim_end().rsplit_once('\n').unwrap();
    let (head, body) = rest.split_once("\r\n\r\n").unwrap_or((rest, ""));
    (
        code.parse().unwrap(),
        head.to_ascii_lowercase(),
        body.to_string(),
    )
}

fn held_list(server: &Server) -> Vec<serde_like::Entry> {
    let out = String::from_utf8(server.admin(&["quarantine", "list", "--json"])).unwrap();
    out.lines().map(serde_like::parse).collect()
}

/// Just enough of the JSON lines `gannet quarantine list --json` prints.
mod serde_like {
    pub struct Entry {
        pub id: String,
        pub reason: String,
        pub line: String,
    }

    fn field(line: &str, name: &str) -> String {
        let key = format!("\"{name}\":\"");
        let at = line.find(&key).map(|i| i + key.len()).unwrap_or(line.len());
        line[at..].split('"').next().unwrap_or("").to_string()
    }

    pub fn parse(line: &str) -> Entry {
        Entry {
            id: field(line, "id"),
            reason: field(line, "reason"),
            line: line.to_string(),
        }
    }
}

#[test]
fn a_forbidden_attachment_is_held_noticed_and_released_by_its_link() {
    require_tool("curl");
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    server.with_example_accounts();
    let original = pif_message();
    let reply = send(&server, &original);
    assert!(reply.starts_with("250"), "{reply}");
    let held = held_list(&server);
    assert_eq!(held.len(), 1);
    assert!(
        held[0].reason.contains("holiday.jpg.pif"),
        "{}",
        held[0].line
    );
    assert!(
        held[0].line.contains("\"status\":\"held\""),
        "{}",
        held[0].line
    );
    // The notice, and nothing else, is in the INBOX.
    let messages = inbox(&server);
    assert_eq!(messages.len(), 1, "only the notice");
    let notice = String::from_utf8_lossy(&messages[0]).into_owned();
    assert!(
        notice.contains("holiday pictures") && notice.contains("holiday.jpg.pif"),
        "{notice}"
    );
    let link = link_in(&messages[0]);
    assert!(
        link.starts_with(&format!(
            "https://mx.example.test:{}/quarantine/",
            server.web.port()
        )),
        "{link}"
    );
    // GET shows the page and changes nothing (twice: mail scanners follow links).
    for _ in 0..2 {
        let (code, head, body) = page(&server, &link, None);
        assert_eq!(code, 200, "{body}");
        assert!(
            body.contains("holiday pictures") && body.contains("Release"),
            "{body}"
        );
        assert!(
            head.contains("content-security-policy: default-src 'none'"),
            "{head}"
        );
        assert!(head.contains("referrer-policy: no-referrer"), "{head}");
    }
    assert_eq!(inbox(&server).len(), 1);
    assert!(held_list(&server)[0].line.contains("\"status\":\"held\""));
    // A forged token is refused.
    let mut forged = link.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    let (code, _, _) = page(&server, &forged, None);
    assert_eq!(code, 404);
    // POST releases: the original arrives, byte for byte after the lines Gannet adds.
    let (code, _, body) = page(&server, &link, Some("release"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Released"), "{body}");
    let messages = inbox(&server);
    assert_eq!(messages.len(), 2);
    assert!(
        messages[1].ends_with(&original),
        "the released copy ends with the original:\n{}",
        String::from_utf8_lossy(&messages[1])
    );
    assert!(String::from_utf8_lossy(&messages[1]).contains("X-Quarantine-Released: "));
    // Once released, the link says so and releases nothing more.
    let (_, _, body) = page(&server, &link, None);
    assert!(body.contains("Already released"), "{body}");
    let (_, _, body) = page(&server, &link, Some("release"));
    assert!(body.contains("Already released"), "{body}");
    assert_eq!(inbox(&server).len(), 2);
    // A second one, deleted from its page: gone for that recipient, nothing delivered.
    assert!(send(&server, &original).starts_with("250"));
    let messages = inbox(&server);
    assert_eq!(messages.len(), 3);
    let second = link_in(&messages[2]);
    let (code, _, body) = page(&server, &second, Some("delete"));
    assert_eq!(code, 200, "{body}");
    assert!(body.contains("Deleted"), "{body}");
    let (_, _, body) = page(&server, &second, Some("release"));
    assert!(body.contains("You deleted this message"), "{body}");
    assert_eq!(inbox(&server).len(), 3);
    let statuses = String::from_utf8(server.admin(&["quarantine", "list"])).unwrap();
    assert!(
        statuses.contains("(released ") && statuses.contains("(deleted "),
        "{statuses}"
    );
    let report = String::from_utf8(server.admin(&["check"])).unwrap();
    assert!(
        report.contains("2 held") && report.contains("consistent"),
        "{report}"
    );
}

#[test]
fn expired_links_are_refused_and_the_purge_deletes_what_expired() {
    require_tool("curl");
    let mut server = Server::new(&format!("{PLAIN_LOGIN}[quarantine]\nretention = \"2s\"\n"));
    server.start();
    server.with_example_accounts();
    assert!(send(&server, &pif_message()).starts_with("250"));
    let link = link_in(&inbox(&server)[0]);
    std::thread::sleep(Duration::from_millis(2500));
    let (code, _, body) = page(&server, &link, None);
    assert_eq!(code, 410, "{body}");
    assert!(body.contains("expired"), "{body}");
    let (code, _, _) = page(&server, &link, Some("release"));
    assert_eq!(code, 410);
    let out = String::from_utf8(server.admin(&["quarantine", "purge"])).unwrap();
    assert!(out.starts_with("1 expired"), "{out}");
    assert!(held_list(&server).is_empty());
    let report = String::from_utf8(server.admin(&["check"])).unwrap();
    assert!(
        report.contains("0 held") && report.contains("consistent"),
        "{report}"
    );
}

/// swaks with EICAR as an attachment; (exit ok, its transcript).
fn swaks_eicar(server: &Server, auth: bool, eicar: &std::path::Path) -> String {
    let mut c = Command::new("swaks");
    c.args(["--to", "alice@example.test", "--from"]);
    if auth {
        c.args(["alice@example.test", "--server"])
            .arg(server.submission.to_string())
            .args(["--tls", "--auth", "PLAIN"])
            .args([
                "--auth-user",
                "alice@example.test",
                "--auth-password",
                "Secret123",
            ]);
    } else {
        c.args(["friend@outside.example", "--server"])
            .arg(server.smtp.to_string())
            .args(["--local-interface", "127.0.0.2"]);
    }
    c.args(["--attach-name", "eicar.com", "--attach"])
        .arg(format!("@{}", eicar.display()));
    let out = c.output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn viruses_are_held_from_outside_refused_from_inside_and_a_failed_scan_is_451() {
    require_tool("swaks");
    let clamd = Clamd::start();
    let mut server = Server::new(&format!(
        "{PLAIN_LOGIN}[antivirus]\nclamd = \"unix:{}\"\ntimeout = \"5s\"\n",
        clamd.socket.display()
    ));
    server.start();
    server.with_example_accounts();
    let eicar = server.dir.path().join("eicar.com");
    std::fs::write(&eicar, EICAR).unwrap();
    // From the outside: held, with the virus named.
    let t = swaks_eicar(&server, false, &eicar);
    assert!(!t.contains("<** "), "{t}");
    let held = held_list(&server);
    assert_eq!(held.len(), 1, "{t}");
    assert!(
        held[0].reason.contains("Eicar-Test-Signature"),
        "{}",
        held[0].line
    );
    let notice = String::from_utf8_lossy(&inbox(&server)[0]).into_owned();
    assert!(notice.contains("Eicar-Test-Signature"), "{notice}");
    // From an authenticated user: refused, the virus named, nothing stored.
    let t = swaks_eicar(&server, true, &eicar);
    assert!(
        t.contains(" 554 5.7.1") && t.contains("Eicar-Test-Signature"),
        "{t}"
    );
    assert_eq!(held_list(&server).len(), 1);
    // A clean message passes.
    let reply = send(&server, b"Subject: clean\r\n\r\nnothing here\r\n");
    assert!(reply.starts_with("250"), "{reply}");
    // clamd gone: try again later, nothing stored.
    drop(clamd);
    let t = swaks_eicar(&server, false, &eicar);
    assert!(t.contains("<** 451 4.7.1"), "{t}");
    let reply = send(&server, b"Subject: clean again\r\n\r\nstill nothing\r\n");
    assert!(reply.starts_with("451 4.7.1"), "{reply}");
    assert_eq!(held_list(&server).len(), 1);
    let _ = held[0].id.len();
}

#[test]
fn the_cli_shows_releases_and_deletes_held_messages() {
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    server.with_example_accounts();
    let original = pif_message();
    assert!(send(&server, &original).starts_with("250"));
    assert!(send(&server, &original).starts_with("250"));
    let held = held_list(&server);
    assert_eq!(held.len(), 2);
    let (first, second) = (&held[0].id, &held[1].id);
    let show = String::from_utf8(server.admin(&["quarantine", "show", first])).unwrap();
    assert!(
        show.contains("subject: holiday pictures")
            && show.contains("recipient: alice@example.test (held)")
            && show.contains("Message-ID: <pif-1@outside.example>"),
        "{show}"
    );
    let out = String::from_utf8(server.admin(&["quarantine", "release", first])).unwrap();
    assert!(out.contains("released to alice@example.test"), "{out}");
    let messages = inbox(&server);
    assert_eq!(messages.len(), 3, "two notices and the released copy");
    assert!(messages[2].ends_with(&original));
    assert!(String::from_utf8_lossy(&messages[2]).contains("by admin"));
    // Released already: nothing more to release.
    let again = server.gannet(&["quarantine", "release", first]);
    assert_eq!(again.status.code(), Some(1));
    let out = String::from_utf8(server.admin(&["quarantine", "delete", second])).unwrap();
    assert!(out.contains("deleted"), "{out}");
    assert_eq!(held_list(&server).len(), 1);
    let missing = server.gannet(&["quarantine", "show", second]);
    assert_eq!(missing.status.code(), Some(1));
    let report = String::from_utf8(server.admin(&["check"])).unwrap();
    assert!(report.contains("consistent"), "{report}");
}

#[test]
fn the_web_listener_holds_a_bounded_number_of_connections() {
    let mut server = Server::new(PLAIN_LOGIN);
    server.start();
    let before = gannet_tests::fd_count(server.pid());
    // 400 clients that connect and say nothing (no TLS handshake).
    let idle: Vec<std::net::TcpStream> = (0..400)
        .filter_map(|_| std::net::TcpStream::connect(server.web).ok())
        .collect();
    assert!(idle.len() >= 300, "{} connected", idle.len());
    std::thread::sleep(Duration::from_millis(500));
    let during = gannet_tests::fd_count(server.pid());
    assert!(
        during < before + 300,
        "the server took {} descriptors for 400 idle web clients",
        during - before
    );
    drop(idle);
}
