//! Outbound delivery end to end: a real DNS server (dnsmasq) on loopback with MX and
//! address records, a second `gannet serve` on 127.0.0.3 as the receiving mail server,
//! and Python's aiosmtpd as a smart host that answers 4xx before it accepts.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use gannet_tests::{free_port, greeting_from, Dns, RawSmtp, Server};

/// Waits up to `limit` for `check` to hold.
fn wait_for(limit: Duration, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// One transaction on an open session: MAIL, every RCPT and DATA must be accepted;
/// returns the reply to the message (`body`, without the final dot line).
fn transaction(c: &mut RawSmtp, from: &str, to: &[&str], body: &str) -> String {
    assert!(c
        .cmd(&format!("MAIL FROM:<{from}>"))
        .unwrap()
        .starts_with("250"));
    for r in to {
        let reply = c.cmd(&format!("RCPT TO:<{r}>")).unwrap();
        assert!(reply.starts_with("250"), "{r}: {reply}");
    }
    c.send(b"DATA\r\n").unwrap();
    assert!(c.reply().unwrap().starts_with("354"));
    c.send(body.as_bytes()).unwrap();
    c.send(b".\r\n").unwrap();
    c.reply().unwrap()
}

/// A session from `source` (a loopback address) saying EHLO `helo` that sends one
/// message, which must be accepted.
fn send_from(server: &Server, source: &str, helo: &str, from: &str, to: &[&str], body: &str) {
    let mut c = RawSmtp::connect_from(server.smtp, source).unwrap();
    c.cmd(&format!("EHLO {helo}")).unwrap();
    let reply = transaction(&mut c, from, to, body);
    assert!(reply.starts_with("250"), "{reply}");
}

fn send(server: &Server, from: &str, to: &[&str], body: &str) {
    send_from(server, "127.0.0.1", "client.example", from, to, body);
}

fn mailbox(server: &Server, address: &str) -> Vec<String> {
    String::from_utf8(server.admin(&["mail", "list", address]))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn queue_is_empty(server: &Server) -> bool {
    String::from_utf8(server.admin(&["queue", "list"]))
        .unwrap()
        .lines()
        .count()
        <= 1
}

/// The sending server: relays for 127.0.0.1, asks `dns`, delivers to `port`.
fn sender(dns: &Dns, port: u16, extra: &str) -> Server {
    let mut a = Server::new(&format!(
        "[delivery]\nremote_port = {port}\nretry_schedule = [\"1s\"]\n{extra}\n[dns]\nnameservers = [\"{}\"]\n",
        dns.addr
    ));
    a.start();
    a.with_example_accounts();
    a
}

#[test]
fn mx_delivery_falls_back_to_the_second_mx_and_bounces_unknown_users() {
    let mut receiver = Server::new_on("127.0.0.3", "");
    receiver.start();
    receiver.admin(&["domain", "add", "dest.test"]);
    receiver.admin(&[
        "account",
        "add",
        "user@dest.test",
        "--password",
        "Secret123",
    ]);
    // mx1 (preferred) is 127.0.0.2, where nothing listens; mx2 is the receiver.
    let dns = Dns::start(&[
        "--mx-host=dest.test,mx1.dest.test,10".into(),
        "--mx-host=dest.test,mx2.dest.test,20".into(),
        "--host-record=mx1.dest.test,127.0.0.2".into(),
        "--host-record=mx2.dest.test,127.0.0.3".into(),
    ]);
    let a = sender(&dns, receiver.smtp.port(), "");
    let body =
        "From: alice@example.test\r\nTo: user@dest.test\r\nSubject: across\r\n\r\ntoken-7f3a\r\n";
    send(
        &a,
        "alice@example.test",
        &["user@dest.test", "nobody@dest.test"],
        body,
    );
    wait_for(Duration::from_secs(20), "delivery to the second MX", || {
        mailbox(&receiver, "user@dest.test").len() == 1
    });
    let got = String::from_utf8(receiver.mail_get("user@dest.test", 1)).unwrap();
    assert!(
        got.contains("token-7f3a") && got.contains("Subject: across"),
        "{got}"
    );
    assert!(got.contains("Return-Path: <alice@example.test>"), "{got}");
    // nobody@ got 550 5.1.1 from the receiver: a DSN in alice's mailbox, from <>.
    wait_for(Duration::from_secs(20), "the DSN", || {
        mailbox(&a, "alice@example.test").len() == 1
    });
    let dsn = String::from_utf8(a.mail_get("alice@example.test", 1)).unwrap();
    assert!(dsn.starts_with("Return-Path: <>\r\n"), "{dsn}");
    assert!(
        dsn.contains("multipart/report; report-type=delivery-status"),
        "{dsn}"
    );
    assert!(
        dsn.contains(
            "Final-Recipient: rfc822; nobody@dest.test\r\nAction: failed\r\nStatus: 5.1.1"
        ),
        "{dsn}"
    );
    assert!(
        !dsn.contains("rfc822; user@dest.test"),
        "only the failed recipient: {dsn}"
    );
    wait_for(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&a)
    });
}

#[test]
fn unreachable_mail_is_retried_then_expires_with_a_dsn() {
    // gone.test's only MX is 127.0.0.2, where nothing listens.
    let dns = Dns::start(&[
        "--mx-host=gone.test,mx.gone.test,10".into(),
        "--host-record=mx.gone.test,127.0.0.2".into(),
    ]);
    let a = sender(&dns, free_port(), "max_queue_age = \"4s\"");
    send(
        &a,
        "alice@example.test",
        &["someone@gone.test"],
        "Subject: nowhere\r\n\r\nx\r\n",
    );
    // Retried (the queue shows attempts and the error) until it expires.
    wait_for(Duration::from_secs(10), "a retry", || {
        let list = String::from_utf8(a.admin(&["queue", "list"])).unwrap();
        list.contains("connect to 127.0.0.2")
    });
    wait_for(Duration::from_secs(30), "the expiry DSN", || {
        mailbox(&a, "alice@example.test").len() == 1
    });
    let dsn = String::from_utf8(a.mail_get("alice@example.test", 1)).unwrap();
    assert!(
        dsn.contains("Final-Recipient: rfc822; someone@gone.test"),
        "{dsn}"
    );
    assert!(dsn.contains("Status: 4.4.7"), "{dsn}");
    assert!(queue_is_empty(&a));
}

/// An aiosmtpd smart host that wants AUTH (user "relay", password "s3cret"), answers
/// the first RCPT with 451 and accepts after that; it writes each message it accepts to
/// `out`, with the user that authenticated. With a certificate and key (argv 3 and 4) it
/// offers STARTTLS and takes AUTH only after it; without, it offers AUTH in clear.
const SMART_HOST: &str = r#"
import asyncio, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
port, out = int(sys.argv[1]), sys.argv[2]
tls = None
if len(sys.argv) > 4:
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(sys.argv[3], sys.argv[4])
def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login == b'relay' and auth_data.password == b's3cret'
    return AuthResult(success=ok, auth_data=auth_data.login)
class Handler:
    def __init__(self): self.rcpts = 0
    async def handle_RCPT(self, server, session, envelope, address, options):
        self.rcpts += 1
        if self.rcpts == 1:
            return '451 4.3.0 try again later'
        envelope.rcpt_tos.append(address)
        return '250 OK'
    async def handle_DATA(self, server, session, envelope):
        with open(out, 'ab') as f:
            f.write(b'AUTH ' + (session.auth_data if session.authenticated else b'-') + b' RCPT ' + ','.join(envelope.rcpt_tos).encode() + b'\n' + envelope.content + b'\n')
        return '250 OK queued'
c = Controller(Handler(), hostname='127.0.0.1', port=port, authenticator=authenticator,
               auth_required=True, auth_require_tls=tls is not None, tls_context=tls,
               require_starttls=tls is not None)
c.start()
print('ready', flush=True)
try:
    sys.stdin.read()
finally:
    c.stop()
"#;

/// Starts an aiosmtpd script (Debian's interpreter: python3-aiosmtpd installs there) on
/// `port` and waits until it listens; `args` follow the port and the output file.
fn start_python_smtp(script: &str, port: u16, out: &std::path::Path, args: &[&str]) -> Child {
    let child = Command::new("/usr/bin/python3")
        .args(["-c", script, &port.to_string(), out.to_str().unwrap()])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 with aiosmtpd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// A certificate authority of the test's own and a certificate it signed for 127.0.0.1,
/// made with openssl: (CA PEM, certificate PEM, key PEM).
fn test_pki(dir: &std::path::Path, name: &str) -> (String, String, String) {
    let path = |f: &str| {
        dir.join(format!("{name}-{f}"))
            .to_str()
            .unwrap()
            .to_string()
    };
    let (ca, ca_key, cert, key, csr, ext) = (
        path("ca.pem"),
        path("ca.key"),
        path("cert.pem"),
        path("cert.key"),
        path("cert.csr"),
        path("ext.cnf"),
    );
    std::fs::write(&ext, "subjectAltName=IP:127.0.0.1\n").unwrap();
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let steps: Vec<Vec<&str>> = vec![
        [
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                &ca_key,
                "-out",
                &ca,
                "-subj",
                "/CN=Gannet test CA",
                "-days",
                "2",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &ec,
            &["-keyout", &key, "-out", &csr, "-subj", "/CN=127.0.0.1"],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &ca,
            "-CAkey",
            &ca_key,
            "-CAcreateserial",
            "-out",
            &cert,
            "-days",
            "2",
            "-extfile",
            &ext,
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (ca, cert, key)
}

fn smart_host_config(port: u16, ca: &str) -> String {
    format!("relay_host = \"127.0.0.1:{port}\"\nrelay_user = \"relay\"\nrelay_password = \"s3cret\"\nrelay_ca = \"{ca}\"")
}

#[test]
fn smart_host_with_auth_temporary_failure_then_delivery_on_retry() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received");
    let port = free_port();
    let (ca, cert, key) = test_pki(dir.path(), "host");
    let mut host = start_python_smtp(SMART_HOST, port, &out, &[&cert, &key]);
    // No DNS needed: every message goes to the smart host.
    let dns = Dns::start(&[]);
    let a = sender(&dns, 25, &smart_host_config(port, &ca));
    send(
        &a,
        "alice@example.test",
        &["friend@anywhere.example"],
        "Subject: via the smart host\r\n\r\nhello\r\n",
    );
    wait_for(Duration::from_secs(20), "delivery on retry", || {
        std::fs::read_to_string(&out).is_ok_and(|t| t.contains("hello"))
    });
    let got = std::fs::read_to_string(&out).unwrap();
    assert!(
        got.starts_with("AUTH relay RCPT friend@anywhere.example\n"),
        "{got}"
    );
    assert_eq!(
        got.matches("Subject: via the smart host").count(),
        1,
        "{got}"
    );
    wait_for(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&a)
    });
    assert!(mailbox(&a, "alice@example.test").is_empty(), "no DSN");
    let _ = host.kill();
    let _ = host.wait();
}

/// The smart host's password never goes out unprotected: a smart host that offers no
/// STARTTLS, and one whose certificate does not chain to the configured CA, get no AUTH
/// and no mail; the message stays queued with the reason.
#[test]
fn smart_host_credentials_need_a_verified_tls_session() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, _, _) = test_pki(dir.path(), "trusted");
    let (_, other_cert, other_key) = test_pki(dir.path(), "other");
    let dns = Dns::start(&[]);
    let cases: [(&str, Vec<&str>, &str); 2] = [
        ("plain", vec![], "TLS"),
        ("untrusted", vec![&other_cert, &other_key], "certificate"),
    ];
    for (name, args, why) in cases {
        let out = dir.path().join(format!("received-{name}"));
        let port = free_port();
        let mut host = start_python_smtp(SMART_HOST, port, &out, &args);
        let a = sender(&dns, 25, &smart_host_config(port, &ca));
        send(
            &a,
            "alice@example.test",
            &["friend@anywhere.example"],
            "Subject: must wait\r\n\r\nhello\r\n",
        );
        wait_for(Duration::from_secs(20), "a failed attempt", || {
            let list = String::from_utf8(a.admin(&["queue", "list"])).unwrap();
            list.lines().skip(1).any(|l| l.contains(why))
        });
        assert!(!out.exists(), "{name}: the smart host got mail");
        assert!(!queue_is_empty(&a), "{name}: the message must stay queued");
        let _ = host.kill();
        let _ = host.wait();
    }
}

/// The id of the only queued message, from `gannet queue list`.
fn only_queued_id(server: &Server) -> String {
    let list = String::from_utf8(server.admin(&["queue", "list"])).unwrap();
    let lines: Vec<&str> = list.lines().skip(1).collect();
    assert_eq!(lines.len(), 1, "{list}");
    lines[0].split('\t').next().unwrap().to_string()
}

#[test]
fn queue_commands_retry_delete_and_bounce() {
    let dns = Dns::start(&[
        "--mx-host=gone.test,mx.gone.test,10".into(),
        "--host-record=mx.gone.test,127.0.0.2".into(),
    ]);
    // The first retry is an hour away: only the commands move the message.
    let mut a = Server::new(&format!(
        "[delivery]\nremote_port = {}\nretry_schedule = [\"1h\"]\n[dns]\nnameservers = [\"{}\"]\n",
        free_port(),
        dns.addr
    ));
    a.start();
    a.with_example_accounts();
    send(
        &a,
        "alice@example.test",
        &["x@gone.test"],
        "Subject: one\r\n\r\nx\r\n",
    );
    wait_for(Duration::from_secs(10), "the first attempt", || {
        String::from_utf8(a.admin(&["queue", "list"]))
            .unwrap()
            .contains("\t1\tconnect to")
    });
    let out = String::from_utf8(a.admin(&["queue", "retry", "--all"])).unwrap();
    assert_eq!(out, "1 message(s) due now\n");
    wait_for(Duration::from_secs(10), "the second attempt", || {
        String::from_utf8(a.admin(&["queue", "list"]))
            .unwrap()
            .contains("\t2\tconnect to")
    });
    let id = only_queued_id(&a);
    let out = String::from_utf8(a.admin(&["queue", "bounce", &id])).unwrap();
    assert_eq!(out, format!("{id} returned to <alice@example.test>\n"));
    wait_for(Duration::from_secs(10), "the DSN", || {
        mailbox(&a, "alice@example.test").len() == 1
    });
    let dsn = String::from_utf8(a.mail_get("alice@example.test", 1)).unwrap();
    assert!(
        dsn.contains("Final-Recipient: rfc822; x@gone.test\r\nAction: failed\r\nStatus: 5.0.0"),
        "{dsn}"
    );
    assert!(
        dsn.contains("returned to the sender by the postmaster"),
        "{dsn}"
    );
    assert!(queue_is_empty(&a));

    send(
        &a,
        "alice@example.test",
        &["y@gone.test"],
        "Subject: two\r\n\r\ny\r\n",
    );
    let id = only_queued_id(&a);
    assert_eq!(
        String::from_utf8(a.admin(&["queue", "delete", &id])).unwrap(),
        format!("{id} deleted\n")
    );
    assert!(queue_is_empty(&a));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        mailbox(&a, "alice@example.test").len(),
        1,
        "no DSN for a deleted message"
    );
    let bad = a.gannet(&["queue", "delete", "nothex"]);
    assert!(!bad.status.success());
}

/// A sink that appends the Subject of every message it accepts to `out`, one per line,
/// and a line to `out.ehlo` for every session (EHLO) it sees. With a count as its third
/// argument it holds every message past that count (no reply to the data) while the file
/// `out.hold` exists, so a test can stop a delivery run at a known point.
const SUBJECT_SINK: &str = r#"
import asyncio, os, sys
from aiosmtpd.controller import Controller
port, out = int(sys.argv[1]), sys.argv[2]
hold_after = int(sys.argv[3]) if len(sys.argv) > 3 else None
f = open(out, 'ab', buffering=0)
e = open(out + '.ehlo', 'ab', buffering=0)
accepted = 0
class Handler:
    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        e.write(b'EHLO\n')
        session.host_name = hostname
        return responses
    async def handle_DATA(self, server, session, envelope):
        global accepted
        if hold_after is not None and accepted >= hold_after:
            while os.path.exists(out + '.hold'):
                await asyncio.sleep(0.05)
        accepted += 1
        for line in envelope.content.split(b'\n'):
            if line.startswith(b'Subject: '):
                f.write(line[9:].strip() + b'\n')
                break
        return '250 OK'
c = Controller(Handler(), hostname='127.0.0.1', port=port)
c.start()
try:
    sys.stdin.read()
finally:
    c.stop()
"#;

#[test]
fn crash_during_a_delivery_run_loses_nothing() {
    const N: usize = 1000;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("subjects");
    let port = free_port();
    let dns = Dns::start(&[]);
    // (Past the 500 messages an hour a trusted network may relay by default.)
    let mut a = sender(
        &dns,
        25,
        &format!("relay_host = \"127.0.0.1:{port}\"\n[limits]\nmessages_per_hour = 100000"),
    );
    // 1,000 messages queued while the smart host is down (retried every second).
    let mut c = RawSmtp::connect(a.smtp).unwrap();
    c.cmd("EHLO client.example").unwrap();
    for i in 0..N {
        let rcpt = format!("r{i}@far.example");
        let body = format!("Subject: msg-{i}\r\n\r\nbody {i}\r\n");
        let reply = transaction(&mut c, "alice@example.test", &[&rcpt], &body);
        assert!(reply.starts_with("250"), "{reply}");
    }
    drop(c);
    // The sink comes up and takes 150 messages, then holds the rest unanswered (a fast
    // machine would otherwise finish the run before the kill); kill -9 the sender there.
    let hold = dir.path().join("subjects.hold");
    std::fs::write(&hold, b"").unwrap();
    let mut sink = start_python_smtp(SUBJECT_SINK, port, &out, &["150"]);
    let received = || std::fs::read_to_string(&out).unwrap_or_default();
    wait_for(Duration::from_secs(60), "part of the run", || {
        received().lines().count() >= 150
    });
    a.kill();
    let at_crash = received().lines().count();
    assert_eq!(at_crash, 150, "the sink held the rest");
    std::fs::remove_file(&hold).unwrap();
    a.start();
    wait_for(Duration::from_secs(120), "the rest of the run", || {
        queue_is_empty(&a)
    });
    let got = received();
    let distinct: HashSet<&str> = got.lines().collect();
    for i in 0..N {
        assert!(
            distinct.contains(format!("msg-{i}").as_str()),
            "msg-{i} never arrived"
        );
    }
    let duplicates = got.lines().count() - distinct.len();
    eprintln!("received before the crash: {at_crash}; duplicates after the restart: {duplicates}");
    // Only messages in flight at the crash may come twice.
    assert!(duplicates <= 64, "{duplicates} duplicates");
    assert!(
        mailbox(&a, "alice@example.test").is_empty(),
        "no DSN: every recipient delivered"
    );
    let _ = sink.kill();
    let _ = sink.wait();
}

/// A server that misbehaves on its first three connections — garbage instead of a
/// greeting, then silence, then a drop in the middle of DATA — and speaks SMTP on the
/// fourth, writing the message to `out`.
const BAD_SERVER: &str = r#"
import socket, sys
port, out = int(sys.argv[1]), sys.argv[2]
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(('127.0.0.1', port)); srv.listen(16)
log = open(out + '.log', 'a', buffering=1)
def lines(conn):
    buf = b''
    while True:
        while b'\r\n' in buf:
            line, buf = buf.split(b'\r\n', 1)
            yield line
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk
held = []
for n in range(1, 100):
    conn, _ = srv.accept()
    log.write(f'connection {n}\n')
    if n == 1:
        conn.sendall(b'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n'); conn.close(); continue
    if n == 2:
        held.append(conn); continue  # never answers
    conn.sendall(b'220 ok\r\n')
    it = lines(conn); data = []
    for line in it:
        cmd = line[:4].upper()
        if cmd in (b'EHLO', b'HELO'): conn.sendall(b'250 ok\r\n')
        elif cmd in (b'MAIL', b'RCPT'): conn.sendall(b'250 ok\r\n')
        elif cmd == b'DATA':
            conn.sendall(b'354 go\r\n')
            if n == 3:
                next(it); conn.close(); break  # drop in the middle of the message
            for l in it:
                if l == b'.': break
                data.append(l)
            with open(out, 'ab') as f: f.write(b'\n'.join(data) + b'\n')
            conn.sendall(b'250 queued\r\n')
        elif cmd == b'QUIT': conn.sendall(b'221 bye\r\n'); conn.close(); break
        else: conn.sendall(b'500 what\r\n')
"#;

#[test]
fn garbage_silence_and_drops_cost_retries_not_mail() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("received");
    let port = free_port();
    let mut bad = start_python_smtp(BAD_SERVER, port, &out, &[]);
    let dns = Dns::start(&[]);
    let a = sender(
        &dns,
        25,
        &format!("relay_host = \"127.0.0.1:{port}\"\nreply_timeout = \"2s\""),
    );
    send(
        &a,
        "alice@example.test",
        &["friend@anywhere.example"],
        "Subject: sturdy\r\n\r\nsurvives\r\n",
    );
    wait_for(
        Duration::from_secs(60),
        "delivery on the fourth try",
        || std::fs::read_to_string(&out).is_ok_and(|t| t.contains("survives")),
    );
    let log = std::fs::read_to_string(dir.path().join("received.log")).unwrap();
    assert!(log.contains("connection 4"), "{log}");
    wait_for(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&a)
    });
    assert!(mailbox(&a, "alice@example.test").is_empty(), "no DSN");
    let server_log = a.log();
    assert!(
        server_log.contains("timed out waiting for a reply"),
        "the hang was timed out"
    );
    let _ = bad.kill();
    let _ = bad.wait();
}

/// The reply to `RCPT TO:<to>` from a client at 127.0.0.2 (not a trusted network).
fn rcpt_from_outside(server: &Server, to: &str) -> String {
    let mut c = RawSmtp::connect_from(server.smtp, "127.0.0.2").unwrap();
    c.cmd("EHLO outside.example").unwrap();
    c.cmd("MAIL FROM:<someone@outside.example>").unwrap();
    c.cmd(&format!("RCPT TO:<{to}>")).unwrap()
}

#[test]
fn backup_mx_holds_mail_while_the_primary_is_down() {
    // The customer's primary server, set up and then taken down.
    let mut primary = Server::new_on("127.0.0.3", "");
    primary.start();
    primary.admin(&["domain", "add", "customer.test"]);
    primary.admin(&[
        "account",
        "add",
        "boss@customer.test",
        "--password",
        "Secret123",
    ]);
    primary.kill();
    let dns = Dns::start(&[]);
    let a = sender(&dns, 25, "");
    let target = primary.smtp.to_string();
    let out = String::from_utf8(a.admin(&[
        "domain",
        "add",
        "customer.test",
        "--backup-mx",
        "--primary",
        &target,
    ]))
    .unwrap();
    assert_eq!(
        out,
        format!("domain customer.test added as backup MX for {target}\n")
    );
    // Anyone may send to the customer's domain; it is not an open relay for others.
    assert!(rcpt_from_outside(&a, "boss@customer.test").starts_with("250"));
    assert!(rcpt_from_outside(&a, "x@elsewhere.example").starts_with("554 5.7.1"));
    send(
        &a,
        "someone@outside.example",
        &["boss@customer.test"],
        "Subject: held\r\n\r\nwhile you were out\r\n",
    );
    // Held: retried while the primary is down.
    wait_for(Duration::from_secs(10), "a failed attempt", || {
        String::from_utf8(a.admin(&["queue", "list"]))
            .unwrap()
            .contains("connect to 127.0.0.3")
    });
    primary.start();
    wait_for(
        Duration::from_secs(20),
        "delivery once the primary is up",
        || mailbox(&primary, "boss@customer.test").len() == 1,
    );
    let got = String::from_utf8(primary.mail_get("boss@customer.test", 1)).unwrap();
    assert!(got.contains("while you were out"), "{got}");
    wait_for(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&a)
    });
}

/// A customer's own server (a second gannet on 127.0.0.3) hosting office.test with the
/// account staff@office.test.
fn office() -> Server {
    let mut office = Server::new_on("127.0.0.3", "");
    office.start();
    office.admin(&["domain", "add", "office.test"]);
    office.admin(&[
        "account",
        "add",
        "staff@office.test",
        "--password",
        "Secret123",
    ]);
    office
}

#[test]
fn scan_relay_tags_spam_and_passes_everything_on() {
    let office = office();
    let rules = tempfile::tempdir().unwrap();
    std::fs::write(
        rules.path().join("local.cf"),
        "rewrite_header Subject [SPAM]\n",
    )
    .unwrap();
    let dns = Dns::start(&[]);
    let a = sender(
        &dns,
        25,
        &format!("[spam]\nrules_dirs = [\"{}\"]", rules.path().display()),
    );
    a.admin(&[
        "domain",
        "add",
        "office.test",
        "--scan-relay",
        &office.smtp.to_string(),
    ]);
    assert!(rcpt_from_outside(&a, "staff@office.test").starts_with("250"));
    // Spam (7 points with the built-in rules, over the default required_score 5) and ham.
    let spam = "From: Lucky <win@prizes.example>\r\nTo: staff@office.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: news\r\n\r\nYou have won the lottery!\r\nClaim your prize and buy viagra.\r\n";
    let ham = "From: Colleague <c@partner.example>\r\nTo: staff@office.test\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nSubject: minutes\r\n\r\nThe minutes of today's meeting.\r\n";
    send(&a, "win@prizes.example", &["staff@office.test"], spam);
    send(&a, "c@partner.example", &["staff@office.test"], ham);
    wait_for(
        Duration::from_secs(20),
        "both messages at the office",
        || mailbox(&office, "staff@office.test").len() == 2,
    );
    let first = String::from_utf8(office.mail_get("staff@office.test", 1)).unwrap();
    let second = String::from_utf8(office.mail_get("staff@office.test", 2)).unwrap();
    let (tagged, clean) = if first.contains("lottery") {
        (first, second)
    } else {
        (second, first)
    };
    assert!(tagged.contains("X-Spam-Flag: YES\r\n"), "{tagged}");
    assert!(
        tagged.contains("X-Spam-Status: Yes, score=7.0 required=5.0"),
        "{tagged}"
    );
    assert!(tagged.contains("\r\nSubject: [SPAM] news\r\n"), "{tagged}");
    assert!(clean.contains("X-Spam-Status: No,"), "{clean}");
    assert!(clean.contains("\r\nSubject: minutes\r\n"), "{clean}");
    assert!(!clean.contains("X-Spam-Flag"), "{clean}");
    wait_for(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&a)
    });
}

#[test]
fn blocklisted_clients_are_refused_at_connect_on_the_mx_port() {
    // bl.test lists 127.0.0.2 and 127.0.0.1 (and names 127.0.0.3 with an answer the
    // configuration does not count); score.test lists 127.0.0.3.
    let dns = Dns::start(&[
        "--host-record=2.0.0.127.bl.test,127.0.0.2".into(),
        "--host-record=1.0.0.127.bl.test,127.0.0.2".into(),
        "--host-record=3.0.0.127.bl.test,127.0.0.9".into(),
        "--host-record=3.0.0.127.score.test,127.0.0.2".into(),
    ]);
    let mut a = Server::new(&format!(
        "[[dnsbl]]\nzone = \"bl.test\"\naction = \"reject\"\nanswers = [\"127.0.0.2\"]\n\
         [[dnsbl]]\nzone = \"score.test\"\naction = \"score\"\nscore = 6.5\n\
         [dns]\nnameservers = [\"{}\"]\n",
        dns.addr
    ));
    a.start();
    a.with_example_accounts();
    a.admin(&[
        "account",
        "set",
        "alice@example.test",
        "--spam-level",
        "high",
    ]);
    assert_eq!(
        greeting_from(a.smtp, "127.0.0.2"),
        "554 5.7.1 Service unavailable; client [127.0.0.2] blocked using bl.test\r\n"
    );
    // Not listed; a trusted network; a submission port: never refused.
    assert!(greeting_from(a.smtp, "127.0.0.3").starts_with("220 "));
    assert!(greeting_from(a.smtp, "127.0.0.1").starts_with("220 "));
    assert!(greeting_from(a.submission, "127.0.0.2").starts_with("220 "));
    assert!(a.log().contains("listed by a DNS blocklist"));
    // A scoring list is not a refusal: its weight goes into the verdict (6.5 > 5: Junk).
    send_from(
        &a,
        "127.0.0.3",
        "outside.example",
        "someone@outside.example",
        &["alice@example.test"],
        "Subject: hi\r\nDate: Sun, 29 Nov 2026 10:00:00 +0000\r\nTo: alice@example.test\r\n\r\nhello\r\n",
    );
    let junk = String::from_utf8(a.admin(&[
        "mail",
        "get",
        "alice@example.test",
        "1",
        "--mailbox",
        "Junk",
    ]))
    .unwrap();
    assert!(junk.contains("RCVD_IN_SCORE_TEST"), "{junk}");
}

#[test]
fn spf_results_in_received_spf_and_rule_hits() {
    let dns = Dns::start(&[
        // (One argument each: no shell, so no quotes around the text.)
        "--txt-record=spf.test,v=spf1 ip4:127.0.0.2 -all".into(),
        "--txt-record=soft.test,v=spf1 ~all".into(),
    ]);
    let mut a = Server::new(&format!("[dns]\nnameservers = [\"{}\"]\n", dns.addr));
    a.start();
    a.with_example_accounts();
    let send_from = |source: &str, from: &str, token: &str| {
        let body = format!("Subject: {token}\r\n\r\n{token}\r\n");
        send_from(
            &a,
            source,
            "outside.example",
            from,
            &["alice@example.test"],
            &body,
        );
    };
    send_from("127.0.0.2", "user@spf.test", "one");
    send_from("127.0.0.3", "user@spf.test", "two");
    send_from("127.0.0.3", "user@soft.test", "three");
    send_from("127.0.0.1", "user@spf.test", "four");
    let stored: Vec<String> = (1..=4)
        .map(|uid| String::from_utf8(a.mail_get("alice@example.test", uid)).unwrap())
        .collect();
    assert!(stored[0].contains("Received-SPF: pass (mx.example.test: domain of spf.test designates 127.0.0.2 as permitted sender) client-ip=127.0.0.2; envelope-from=<user@spf.test>; helo=outside.example;\r\n"), "{}", stored[0]);
    assert!(stored[0].contains("SPF_PASS"), "a rule hit: {}", stored[0]);
    assert!(stored[1].contains("Received-SPF: fail ("), "{}", stored[1]);
    assert!(stored[1].contains("SPF_FAIL"), "{}", stored[1]);
    assert!(
        stored[2].contains("Received-SPF: softfail ("),
        "{}",
        stored[2]
    );
    assert!(
        !stored[3].contains("Received-SPF"),
        "not for a trusted network: {}",
        stored[3]
    );

    // With spf.reject_fail the hard fail is refused at the end of data; a pass is not.
    let mut strict = Server::new(&format!(
        "[spf]\nreject_fail = true\n[dns]\nnameservers = [\"{}\"]\n",
        dns.addr
    ));
    strict.start();
    strict.with_example_accounts();
    let final_reply = |source: &str| {
        let mut c = RawSmtp::connect_from(strict.smtp, source).unwrap();
        c.cmd("EHLO outside.example").unwrap();
        transaction(
            &mut c,
            "user@spf.test",
            &["alice@example.test"],
            "Subject: s\r\n\r\nx\r\n",
        )
    };
    let refused = final_reply("127.0.0.3");
    assert!(refused.starts_with("550 5.7.23 "), "{refused}");
    assert!(final_reply("127.0.0.2").starts_with("250 "));
    assert_eq!(
        mailbox(&strict, "alice@example.test").len(),
        1,
        "only the pass is stored"
    );
}

#[test]
fn consecutive_messages_share_one_session() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("got");
    let port = free_port();
    let mut sink = start_python_smtp(SUBJECT_SINK, port, &out, &[]);
    let dns = Dns::start(&[]);
    let a = sender(&dns, 25, &format!("relay_host = \"127.0.0.1:{port}\""));
    for i in 1..=3 {
        send(
            &a,
            "alice@example.test",
            &["x@far.example"],
            &format!("Subject: m{i}\r\n\r\nx\r\n"),
        );
        wait_for(Duration::from_secs(10), "the delivery", || {
            std::fs::read_to_string(&out).is_ok_and(|t| t.lines().count() == i)
        });
    }
    let ehlo = std::fs::read_to_string(dir.path().join("got.ehlo")).unwrap();
    assert_eq!(ehlo.lines().count(), 1, "one session for three messages");
    let _ = sink.kill();
    let _ = sink.wait();
}

#[test]
fn scan_relay_quarantine_forwards_the_notice_and_the_release() {
    let office = office();
    let dns = Dns::start(&[]);
    let a = sender(&dns, 25, "");
    a.admin(&[
        "domain",
        "add",
        "office.test",
        "--scan-relay",
        &office.smtp.to_string(),
    ]);
    let original = "From: <partner@outside.example>\r\nTo: <staff@office.test>\r\nSubject: invoice\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nPlease pay.\r\n--b\r\nContent-Type: application/octet-stream; name=\"invoice.pdf.exe\"\r\nContent-Disposition: attachment; filename=\"invoice.pdf.exe\"\r\nContent-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b--\r\n";
    // From the outside (127.0.0.2): held at the scan relay, the notice forwarded.
    send_from(
        &a,
        "127.0.0.2",
        "outside.example",
        "partner@outside.example",
        &["staff@office.test"],
        original,
    );
    wait_for(Duration::from_secs(20), "the notice at the office", || {
        mailbox(&office, "staff@office.test").len() == 1
    });
    let notice = String::from_utf8(office.mail_get("staff@office.test", 1)).unwrap();
    assert!(notice.contains("invoice.pdf.exe"), "{notice}");
    let link = notice
        .lines()
        .find(|l| l.starts_with("https://") && l.contains("/quarantine/"))
        .unwrap_or_else(|| panic!("no link in {notice}"))
        .trim()
        .to_string();
    // The release (at the scan relay's page) forwards the original to the office.
    let path = link.split_once("/quarantine/").unwrap().1;
    let out = a
        .curl_tls("https", a.web, &format!("quarantine/{path}"))
        .args(["--data", "action=release"])
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains("Released"), "{page}");
    wait_for(
        Duration::from_secs(20),
        "the released message at the office",
        || mailbox(&office, "staff@office.test").len() == 2,
    );
    let released = office.mail_get("staff@office.test", 2);
    assert!(
        released.ends_with(original.as_bytes()),
        "{}",
        String::from_utf8_lossy(&released)
    );
    wait_for(Duration::from_secs(10), "an empty queue", || {
        queue_is_empty(&a)
    });
}
