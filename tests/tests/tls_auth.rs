//! TLS, authentication, submission and relay control, end to end: swaks, openssl s_client,
//! curl and Python's smtplib against the real `gannet serve`, each sending to a local user
//! and to a remote address (which must land in the outbound queue).

use std::io::Write as _;
use std::process::{Command, Stdio};

use gannet_tests::{python, require_tool, RawSmtp, Server};

fn server() -> Server {
    let s = Server::started();
    s.with_example_accounts();
    s
}

/// The queued remote recipients, from `gannet queue list`.
fn queued(server: &Server) -> Vec<String> {
    let out = String::from_utf8(server.admin(&["queue", "list"])).unwrap();
    out.lines()
        .skip(1)
        .flat_map(|l| {
            l.split('\t')
                .nth(2)
                .unwrap_or("")
                .split(',')
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

fn subjects(server: &Server, address: &str) -> Vec<String> {
    server.mail_list(address).into_iter().map(|m| m.2).collect()
}

fn message_file(server: &Server, subject: &str) -> std::path::PathBuf {
    let path = server.dir.path().join(format!("{subject}.eml"));
    std::fs::write(
        &path,
        format!("From: alice@example.test\r\nTo: carol@example.test\r\nSubject: {subject}\r\n\r\nsent by {subject}\r\n"),
    )
    .unwrap();
    path
}

#[test]
fn swaks_starttls_and_implicit_tls_with_plain_and_login() {
    require_tool("swaks");
    let server = server();
    for (flag, port, mech) in [
        ("--tls", server.submission, "PLAIN"),
        ("--tls", server.submission, "LOGIN"),
        ("--tlsc", server.submissions, "PLAIN"),
        ("--tlsc", server.submissions, "LOGIN"),
        ("--tls", server.smtp, "PLAIN"),
    ] {
        let subject = format!("swaks-{}-{mech}", &flag[2..]);
        let out = Command::new("swaks")
            .args(["--server", &port.to_string(), flag, "--auth", mech])
            .args([
                "--auth-user",
                "alice@example.test",
                "--auth-password",
                "Secret123",
            ])
            .args([
                "--from",
                "alice@example.test",
                "--to",
                "carol@example.test,friend@remote.example",
            ])
            .args(["--header", &format!("Subject: {subject}")])
            .output()
            .unwrap();
        let t = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{t}");
        assert!(t.contains("<~  235 2.7.0 Authentication successful"), "{t}");
        assert!(
            t.contains("<~  250 2.0.0 Message accepted for delivery"),
            "{t}"
        );
        assert!(subjects(&server, "carol@example.test").contains(&subject));
    }
    assert_eq!(
        queued(&server)
            .iter()
            .filter(|r| *r == "friend@remote.example")
            .count(),
        5
    );
    let raw = String::from_utf8(server.mail_get("carol@example.test", 1)).unwrap();
    assert!(raw.contains("with ESMTPSA id"), "{raw}");
}

/// A whole session typed into openssl s_client.
fn s_client(args: &[&str], script: &str) -> String {
    let mut child = Command::new("openssl")
        .arg("s_client")
        .args(args)
        .args(["-crlf", "-quiet", "-ign_eof"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(script.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn openssl_s_client_starttls_and_implicit_tls() {
    require_tool("openssl");
    let server = server();
    let auth = b64("\0alice@example.test\0Secret123");
    for (args, subject) in [
        (vec!["-starttls", "smtp", "-connect"], "s_client-starttls"),
        (vec!["-connect"], "s_client-465"),
    ] {
        let port = if subject.ends_with("465") {
            server.submissions
        } else {
            server.submission
        };
        let mut args = args.clone();
        let target = port.to_string();
        args.push(&target);
        let script = format!(
            "EHLO client.example\nAUTH PLAIN {auth}\nMAIL FROM:<alice@example.test>\nRCPT TO:<carol@example.test>\nRCPT TO:<far@remote.example>\nDATA\nSubject: {subject}\n\nhello\n.\nQUIT\n"
        );
        let out = s_client(&args, &script);
        assert!(out.contains("235 2.7.0 Authentication successful"), "{out}");
        assert!(
            out.contains("250 2.0.0 Message accepted for delivery"),
            "{out}"
        );
        assert!(subjects(&server, "carol@example.test").contains(&subject.to_string()));
    }
    // Both TLS versions are accepted; older ones are not.
    for (version, ok) in [("-tls1_3", true), ("-tls1_2", true), ("-tls1_1", false)] {
        // QUIT is answered after the greeting, and the server then closes: no race with EOF.
        let text = s_client(
            &["-connect", &server.submissions.to_string(), version],
            "QUIT\n",
        );
        assert_eq!(
            text.contains("220 mx.example.test ESMTP Gannet"),
            ok,
            "{version}: {text}"
        );
    }
    assert_eq!(
        queued(&server)
            .iter()
            .filter(|r| *r == "far@remote.example")
            .count(),
        2
    );
}

#[test]
fn curl_with_ssl_reqd_and_a_verified_certificate() {
    require_tool("curl");
    let server = server();
    let file = message_file(&server, "curl-tls");
    for (scheme, port) in [("smtp", server.submission), ("smtps", server.submissions)] {
        let out = server
            .curl_tls(scheme, port, "client.example")
            .args([
                "--user",
                "alice@example.test:Secret123",
                "--mail-from",
                "alice@example.test",
            ])
            .args([
                "--mail-rcpt",
                "carol@example.test",
                "--mail-rcpt",
                "pen.pal@remote.example",
            ])
            .arg("--upload-file")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{scheme}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        subjects(&server, "carol@example.test"),
        ["curl-tls", "curl-tls"]
    );
    assert_eq!(
        queued(&server)
            .iter()
            .filter(|r| *r == "pen.pal@remote.example")
            .count(),
        2
    );
}

const SMTPLIB: &str = r#"
import smtplib, ssl, sys
sub, subs, cafile = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
ctx = ssl.create_default_context(cafile=cafile)
msg = 'From: alice@example.test\r\nSubject: %s\r\n\r\nhello\r\n'
# 'localhost' is in the certificate: the name is checked against it.
with smtplib.SMTP('localhost', sub, timeout=30) as s:
    s.ehlo('py.example')
    assert not s.has_extn('auth'), 'AUTH offered before TLS'
    code, resp = s.docmd('AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABTZWNyZXQxMjM=')
    print('before-tls', code, resp.decode())
    s.starttls(context=ctx)
    s.ehlo('py.example')
    assert s.has_extn('auth')
    try:
        s.login('alice@example.test', 'wrong-Password1')
    except smtplib.SMTPAuthenticationError as e:
        print('wrong', e.smtp_code, e.smtp_error.decode())
    s.login('alice@example.test', 'Secret123')
    try:
        s.sendmail('carol@example.test', ['carol@example.test'], msg % 'spoof')
    except smtplib.SMTPSenderRefused as e:
        print('spoof', e.smtp_code, e.smtp_error.decode())
    s.sendmail('bob@example.test', ['carol@example.test', 'buddy@remote.example'], msg % 'smtplib-starttls')
with smtplib.SMTP_SSL('localhost', subs, context=ctx, timeout=30) as s:
    s.login('alice@example.test', 'Secret123')
    s.sendmail('alice@example.test', ['carol@example.test', 'buddy@remote.example'], msg % 'smtplib-ssl')
print('done')
"#;

#[test]
fn python_smtplib_starttls_login_and_ssl() {
    let server = server();
    let out = python(
        SMTPLIB,
        &[
            &server.submission.port().to_string(),
            &server.submissions.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("before-tls 530 5.7.0 Must issue a STARTTLS command first"),
        "{out}"
    );
    assert!(
        out.contains("wrong 535 5.7.8 Authentication credentials invalid"),
        "{out}"
    );
    assert!(
        out.contains("spoof 553 5.7.1 Sender address rejected: not owned by user"),
        "{out}"
    );
    assert!(out.contains("done"), "{out}");
    // bob@ is alice's alias: she may send from it.
    assert_eq!(
        subjects(&server, "carol@example.test"),
        ["smtplib-starttls", "smtplib-ssl"]
    );
    assert_eq!(
        queued(&server)
            .iter()
            .filter(|r| *r == "buddy@remote.example")
            .count(),
        2
    );
}

#[test]
fn untrusted_clients_cannot_relay_and_nothing_is_queued() {
    let server = server();
    for port in [server.smtp, server.submission] {
        let mut c = RawSmtp::connect_from(port, "127.0.0.2").unwrap();
        c.cmd("EHLO outsider.example").unwrap();
        let mail = c.cmd("MAIL FROM:<spammer@outsider.example>").unwrap();
        if port == server.smtp {
            assert!(mail.starts_with("250"), "{mail}");
            assert_eq!(
                c.cmd("RCPT TO:<victim@remote.example>").unwrap(),
                "554 5.7.1 Relay access denied\r\n"
            );
        } else {
            assert_eq!(mail, "530 5.7.0 Must issue a STARTTLS command first\r\n");
        }
    }
    assert!(queued(&server).is_empty());
    // The trusted network (127.0.0.1) may relay without AUTH.
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO inside.example").unwrap();
    let r = c
        .send_message(
            "app@inside.example",
            "customer@remote.example",
            b"Subject: from the app\r\n\r\nx\r\n",
        )
        .unwrap();
    assert!(r.starts_with("250 2.0.0"), "{r}");
    assert_eq!(queued(&server), ["customer@remote.example"]);
    // The queued copy does not carry the local Return-Path line.
    let list = String::from_utf8(server.admin(&["queue", "list"])).unwrap();
    assert!(list.contains("<app@inside.example>"), "{list}");
}

#[test]
fn starttls_injection_is_not_executed() {
    let server = server();
    let out = python(
        r#"
import socket, ssl, sys
s = socket.create_connection(('127.0.0.1', int(sys.argv[1])))
f = s.makefile('rb')
def reply(f):
    lines = []
    while True:
        l = f.readline().decode()
        lines.append(l.strip())
        if l[3:4] != '-': return lines
reply(f)
s.sendall(b'EHLO x\r\n'); reply(f)
s.sendall(b'STARTTLS\r\nMAIL FROM:<evil@example.org>\r\nRSET\r\n')
print('starttls', reply(f))
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
t = ctx.wrap_socket(s, server_hostname='mx.example.test')
g = t.makefile('rb')
t.sendall(b'EHLO x\r\n'); reply(g)
t.sendall(b'RCPT TO:<carol@example.test>\r\n')
print('rcpt', reply(g))
"#,
        &[&server.smtp.port().to_string()],
    );
    assert!(
        out.contains("starttls ['220 2.0.0 Ready to start TLS']"),
        "{out}"
    );
    // Had the injected MAIL run inside TLS, RCPT would be accepted.
    assert!(
        out.contains("rcpt ['503 5.5.1 Need MAIL command first']"),
        "{out}"
    );
}

#[test]
fn sixth_connection_from_one_ip_is_refused() {
    let server = server();
    let held: Vec<RawSmtp> = (0..5)
        .map(|_| RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap())
        .collect();
    let sixth = gannet_tests::connect_from(server.smtp, "127.0.0.2").unwrap();
    let mut answer = String::new();
    use std::io::Read as _;
    let mut sixth = sixth;
    sixth
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    sixth.read_to_string(&mut answer).unwrap();
    assert_eq!(
        answer,
        "421 4.7.0 Too many connections from your address\r\n"
    );
    // Another address is not affected; closing one frees a slot.
    assert!(RawSmtp::connect_from(server.smtp, "127.0.0.3").is_ok());
    drop(held);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(RawSmtp::connect_from(server.smtp, "127.0.0.2").is_ok());
}

#[test]
fn five_failed_logins_lock_the_ip_out() {
    let mut server = Server::new("[auth]\nplaintext_on_loopback = true\n");
    server.start();
    server.with_example_accounts();
    let out = python(
        r#"
import base64, smtplib, sys
port = int(sys.argv[1])
for i in range(5):
    s = smtplib.SMTP('127.0.0.1', port, timeout=30, source_address=('127.0.0.2', 0))
    s.ehlo('x')
    wrong = base64.b64encode(b'\0alice@example.test\0Wrong-password%d' % i).decode()
    code, resp = s.docmd('AUTH PLAIN ' + wrong)
    print('fail', code)
    s.close()
s = smtplib.SMTP('127.0.0.1', port, timeout=30, source_address=('127.0.0.2', 0))
s.ehlo('x')
code, resp = s.docmd('AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABTZWNyZXQxMjM=')
print('locked', code, resp.decode())
s = smtplib.SMTP('127.0.0.1', port, timeout=30, source_address=('127.0.0.3', 0))
s.ehlo('x')
code, resp = s.docmd('AUTH PLAIN !!!notbase64')
print('malformed', code, resp.decode())
s.login('alice@example.test', 'Secret123')
print('other ip ok')
"#,
        &[&server.smtp.port().to_string()],
    );
    assert_eq!(out.matches("fail 535").count(), 5, "{out}");
    assert!(
        out.contains("locked 421 4.7.0 Too many failed authentication attempts, try again later"),
        "{out}"
    );
    assert!(
        out.contains("malformed 501 5.5.2 Cannot decode the response"),
        "{out}"
    );
    assert!(out.contains("other ip ok"), "{out}");
}

#[test]
fn the_501st_message_in_an_hour_is_refused() {
    let server = server();
    let out = python(
        r#"
import smtplib, ssl, sys
ctx = ssl.create_default_context(cafile=sys.argv[2])
s = smtplib.SMTP_SSL('localhost', int(sys.argv[1]), context=ctx, timeout=30)
s.login('alice@example.test', 'Secret123')
sent = 0
for i in range(501):
    try:
        s.sendmail('alice@example.test', ['carol@example.test'], 'Subject: n%d\r\n\r\nx\r\n' % i)
        sent += 1
    except smtplib.SMTPSenderRefused as e:
        print('refused', i + 1, e.smtp_code, e.smtp_error.decode())
print('sent', sent)
"#,
        &[
            &server.submissions.port().to_string(),
            server.cert().to_str().unwrap(),
        ],
    );
    assert!(
        out.contains("refused 501 451 4.7.1 Message rate limit exceeded, try again later"),
        "{out}"
    );
    assert!(out.contains("sent 500"), "{out}");
    assert_eq!(server.mail_list("carol@example.test").len(), 500);
}

/// The SHA-256 of the certificate the implicit-TLS port presents.
fn presented_fingerprint(server: &Server) -> String {
    python(
        r#"
import hashlib, socket, ssl, sys
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
with ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))), server_hostname='x') as t:
    print(hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest())
"#,
        &[&server.submissions.port().to_string()],
    )
    .trim()
    .to_string()
}

#[test]
fn sighup_reloads_the_certificate_without_dropping_sessions() {
    require_tool("openssl");
    let server = server();
    let before = presented_fingerprint(&server);
    assert!(server.log().contains("TLS certificate loaded"));
    // A session in progress before the reload.
    let mut c = RawSmtp::connect(server.smtp).unwrap();
    c.cmd("EHLO keep.example").unwrap();
    let tls = server.data().join("tls");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ])
        .args(["-subj", "/CN=mx.example.test", "-days", "2", "-keyout"])
        .arg(tls.join("key.pem"))
        .arg("-out")
        .arg(tls.join("cert.pem"))
        .output()
        .unwrap();
    assert!(status.status.success());
    // SAFETY: signalling the server we started.
    unsafe { libc_kill(server.pid()) };
    std::thread::sleep(std::time::Duration::from_millis(500));
    let after = presented_fingerprint(&server);
    assert_ne!(before, after);
    assert!(
        c.cmd("NOOP").unwrap().starts_with("250 2.0.0"),
        "session survived the reload"
    );
}

unsafe fn libc_kill(pid: u32) {
    extern "C" {
        fn kill(pid: i32, sig: i32) -> i32;
    }
    kill(pid as i32, 1);
}
