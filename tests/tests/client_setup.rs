//! Client setup end to end (issue #18): the autoconfiguration documents served by the web
//! listener (curl over HTTPS, parsed with Python's xml.etree and plistlib) name the
//! server's real ports and TLS modes; a login name logs in over IMAP, POP3 and SMTP
//! (Python's imaplib, poplib, smtplib) and a duplicate is refused by the CLI;
//! `auth.allow_plaintext` lets POP3 log in without TLS while IMAP stays refused.

use std::path::PathBuf;

use gannet_tests::{python, require_tool, RawSmtp, Server};

/// curl to the web listener: (status, lower-case headers, body bytes). `extra`: more
/// curl arguments (a method, a body, a header).
fn fetch(server: &Server, path: &str, extra: &[&str]) -> (u16, String, Vec<u8>) {
    let body = server.dir.path().join("fetched");
    let _ = std::fs::remove_file(&body);
    let mut c = server.curl_tls("https", server.web, path);
    c.args([
        "--dump-header",
        "-",
        "--write-out",
        "\n%{http_code}",
        "--output",
    ])
    .arg(&body)
    .args(extra);
    let out = c.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {path}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (head, code) = text.trim_end().rsplit_once('\n').unwrap();
    (
        code.trim().parse().unwrap(),
        head.to_ascii_lowercase(),
        std::fs::read(&body).unwrap_or_default(),
    )
}

fn saved(server: &Server, name: &str, bytes: &[u8]) -> PathBuf {
    let path = server.dir.path().join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// Mozilla's clientConfig: one line per server, "element type hostname port socketType
/// username authentication".
const MOZILLA: &str = r#"
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == 'clientConfig' and root.get('version') == '1.1', root.tag
provider = root.find('emailProvider')
print('provider', provider.get('id'), [d.text for d in provider.findall('domain')])
for s in provider:
    if s.tag in ('incomingServer', 'outgoingServer'):
        print(s.tag, s.get('type'), s.findtext('hostname'), s.findtext('port'),
              s.findtext('socketType'), s.findtext('username'), s.findtext('authentication'))
"#;

const AUTODISCOVER: &str = r#"
import sys, xml.etree.ElementTree as ET
ns = {'r': 'http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006',
      'a': 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a'}
root = ET.parse(sys.argv[1]).getroot()
account = root.find('a:Response/a:Account', ns)
print('action', account.findtext('a:Action', namespaces=ns))
for p in account.findall('a:Protocol', ns):
    f = lambda n: p.findtext('a:' + n, namespaces=ns)
    print(f('Type'), f('Server'), f('Port'), f('SSL'), f('LoginName'), f('AuthRequired'))
"#;

const PLIST: &str = r#"
import sys, plistlib
with open(sys.argv[1], 'rb') as f:
    p = plistlib.load(f)
assert p['PayloadType'] == 'Configuration'
mail = p['PayloadContent'][0]
keys = ['PayloadType', 'EmailAccountType', 'EmailAddress', 'IncomingMailServerHostName',
        'IncomingMailServerPortNumber', 'IncomingMailServerUseSSL', 'IncomingMailServerUsername',
        'IncomingMailServerAuthentication', 'OutgoingMailServerHostName',
        'OutgoingMailServerPortNumber', 'OutgoingMailServerUseSSL',
        'OutgoingMailServerUsername', 'OutgoingMailServerAuthentication']
for k in keys:
    print(k, mail[k])
print('uuids', p['PayloadUUID'], mail['PayloadUUID'])
print('password', [k for k in mail if 'Password' in k and k != 'OutgoingPasswordSameAsIncomingPassword'])
"#;

fn autodiscover_request(address: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006\">\n\
         <Request><EMailAddress>{address}</EMailAddress>\n\
         <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>\n\
         </Request></Autodiscover>\n"
    )
}

#[test]
fn autoconfiguration_names_the_real_ports_and_tls_modes() {
    require_tool("curl");
    let mut server = Server::new("");
    server.start();
    server.admin(&["domain", "add", "example.test"]);
    server.admin(&["domain", "add", "backup.test", "--backup-mx"]);
    let (imap, imaps) = (server.imap.port(), server.imaps.port());
    let (pop3, pop3s) = (server.pop3.port(), server.pop3s.port());
    let (sub, subs) = (server.submission.port(), server.submissions.port());

    // Mozilla autoconfig, as Thunderbird asks the domain's web server and the ISP's.
    let wanted = [
        format!(
            "incomingServer imap mx.example.test {imaps} SSL %EMAILADDRESS% password-cleartext"
        ),
        format!(
            "incomingServer imap mx.example.test {imap} STARTTLS %EMAILADDRESS% password-cleartext"
        ),
        format!(
            "incomingServer pop3 mx.example.test {pop3s} SSL %EMAILADDRESS% password-cleartext"
        ),
        format!(
            "incomingServer pop3 mx.example.test {pop3} STARTTLS %EMAILADDRESS% password-cleartext"
        ),
        format!("outgoingServer smtp mx.example.test {subs} SSL %EMAILADDRESS% password-cleartext"),
        format!(
            "outgoingServer smtp mx.example.test {sub} STARTTLS %EMAILADDRESS% password-cleartext"
        ),
    ];
    let port = server.web.port();
    let host = format!("Host: autoconfig.example.test:{port}");
    for (path, extra) in [
        (
            ".well-known/autoconfig/mail/config-v1.1.xml?emailaddress=Alice%40Example.test",
            &[][..],
        ),
        (
            "mail/config-v1.1.xml?emailaddress=nobody%40example.test",
            &[][..],
        ),
        ("mail/config-v1.1.xml", &["-H", host.as_str()][..]),
    ] {
        let (status, headers, body) = fetch(&server, path, extra);
        assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(
            headers.contains("content-type: application/xml"),
            "{headers}"
        );
        let file = saved(&server, "config.xml", &body);
        let out = python(MOZILLA, &[file.to_str().unwrap()]);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "provider example.test ['example.test']", "{out}");
        assert_eq!(lines[1..], wanted, "{path}");
    }

    // Outlook's Autodiscover.
    for path in [
        "autodiscover/autodiscover.xml",
        "Autodiscover/Autodiscover.xml",
    ] {
        let request = autodiscover_request("alice@example.test");
        let (status, headers, body) = fetch(
            &server,
            path,
            &["-H", "Content-Type: text/xml", "--data-binary", &request],
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(
            headers.contains("content-type: application/xml"),
            "{headers}"
        );
        let file = saved(&server, "autodiscover.xml", &body);
        let out = python(AUTODISCOVER, &[file.to_str().unwrap()]);
        assert_eq!(
            out.lines().collect::<Vec<_>>(),
            [
                "action settings".to_string(),
                format!("IMAP mx.example.test {imaps} on alice@example.test on"),
                format!("POP3 mx.example.test {pop3s} on alice@example.test on"),
                format!("SMTP mx.example.test {subs} on alice@example.test on"),
            ]
        );
    }

    // Apple's configuration profile: the same bytes each time (stable UUIDs).
    let path = "apple/mail.mobileconfig?emailaddress=alice%40example.test";
    let (status, headers, profile) = fetch(&server, path, &[]);
    assert_eq!(status, 200);
    assert!(
        headers.contains("content-type: application/x-apple-aspen-config"),
        "{headers}"
    );
    assert_eq!(fetch(&server, path, &[]).2, profile);
    let file = saved(&server, "mail.mobileconfig", &profile);
    let out = python(PLIST, &[file.to_str().unwrap()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..13],
        [
            "PayloadType com.apple.mail.managed".to_string(),
            "EmailAccountType EmailTypeIMAP".into(),
            "EmailAddress alice@example.test".into(),
            "IncomingMailServerHostName mx.example.test".into(),
            format!("IncomingMailServerPortNumber {imaps}"),
            "IncomingMailServerUseSSL True".into(),
            "IncomingMailServerUsername alice@example.test".into(),
            "IncomingMailServerAuthentication EmailAuthPassword".into(),
            "OutgoingMailServerHostName mx.example.test".into(),
            format!("OutgoingMailServerPortNumber {subs}"),
            "OutgoingMailServerUseSSL True".into(),
            "OutgoingMailServerUsername alice@example.test".into(),
            "OutgoingMailServerAuthentication EmailAuthPassword".into(),
        ]
    );
    assert_eq!(lines[14], "password []", "{out}");
    let other = fetch(
        &server,
        "apple/mail.mobileconfig?emailaddress=bob%40example.test",
        &[],
    );
    assert_eq!(other.0, 200);
    let file = saved(&server, "bob.mobileconfig", &other.2);
    let bob = python(PLIST, &[file.to_str().unwrap()]);
    assert_ne!(
        bob.lines().find(|l| l.starts_with("uuids")),
        out.lines().find(|l| l.starts_with("uuids"))
    );

    // Domains not hosted here (a backup-MX domain included): 404, for every document.
    for address in ["alice%40elsewhere.test", "alice%40backup.test"] {
        for path in [
            format!(".well-known/autoconfig/mail/config-v1.1.xml?emailaddress={address}"),
            format!("apple/mail.mobileconfig?emailaddress={address}"),
        ] {
            assert_eq!(fetch(&server, &path, &[]).0, 404, "{path}");
        }
    }
    let request = autodiscover_request("alice@elsewhere.test");
    let status = fetch(
        &server,
        "autodiscover/autodiscover.xml",
        &["--data-binary", &request],
    )
    .0;
    assert_eq!(status, 404);
    let host = format!("Host: autoconfig.elsewhere.test:{port}");
    assert_eq!(
        fetch(&server, "mail/config-v1.1.xml", &["-H", &host]).0,
        404
    );

    // Bad requests are answered, never crash the listener.
    for path in [
        "mail/config-v1.1.xml",
        ".well-known/autoconfig/mail/config-v1.1.xml?emailaddress=",
        ".well-known/autoconfig/mail/config-v1.1.xml?emailaddress=no-at-sign",
        "apple/mail.mobileconfig",
        "apple/mail.mobileconfig?emailaddress=%3Cscript%3E",
        "apple/mail.mobileconfig?emailaddress=a%40example.test&emailaddress=b%40example.test",
    ] {
        let (status, _, body) = fetch(&server, path, &[]);
        assert_eq!(status, 400, "{path}: {}", String::from_utf8_lossy(&body));
    }
    let long = format!(
        "apple/mail.mobileconfig?emailaddress={}%40example.test",
        "a".repeat(400)
    );
    assert_eq!(fetch(&server, &long, &[]).0, 400);
    let garbage = saved(
        &server,
        "garbage",
        b"<Autodiscover><EMailAddress>\xff\xfe@example.test</EMailAddress>",
    );
    let huge = saved(
        &server,
        "huge",
        autodiscover_request(&format!("{}@example.test", "a".repeat(20_000))).as_bytes(),
    );
    for (body, want) in [(&garbage, 400), (&huge, 413)] {
        let arg = format!("@{}", body.display());
        let status = fetch(
            &server,
            "autodiscover/autodiscover.xml",
            &["--data-binary", &arg],
        )
        .0;
        assert_eq!(status, want, "{}", body.display());
    }
    for body in [
        "",
        "not xml",
        "<Autodiscover/>",
        "<EMailAddress>&e;</EMailAddress>",
    ] {
        let status = fetch(
            &server,
            "autodiscover/autodiscover.xml",
            &["--data-binary", body],
        )
        .0;
        assert_eq!(status, 400, "{body:?}");
    }
    // Autodiscover is a POST.
    assert_eq!(fetch(&server, "autodiscover/autodiscover.xml", &[]).0, 405);
    // Still serving, and the quarantine pages beside it too.
    assert_eq!(fetch(&server, "quarantine/not-a-token", &[]).0, 404);
    assert_eq!(
        fetch(
            &server,
            ".well-known/autoconfig/mail/config-v1.1.xml?emailaddress=a%40example.test",
            &[]
        )
        .0,
        200
    );
}

/// Logs in with `user`/`password` over IMAPS (LOGIN), IMAP STARTTLS (AUTHENTICATE PLAIN),
/// POP3S (USER/PASS), POP3 STLS (AUTH PLAIN), submissions (AUTH PLAIN, then a message
/// sent) and submission STARTTLS (AUTH LOGIN); one line per attempt, "ok" or "refused".
const LOGINS: &str = r#"
import base64, imaplib, poplib, smtplib, ssl, sys
imap, imaps, pop3, pop3s, sub, subs = (int(x) for x in sys.argv[1:7])
cafile, user, password = sys.argv[7:10]
ctx = ssl.create_default_context(cafile=cafile)
def attempt(name, f):
    try:
        print(name, f())
    except (imaplib.IMAP4.error, poplib.error_proto, smtplib.SMTPException) as e:
        print(name, 'refused')
def imap_login():
    c = imaplib.IMAP4_SSL('localhost', imaps, ssl_context=ctx, timeout=30)
    c.login(user, password)
    typ, data = c.select('INBOX')
    c.logout()
    return 'ok ' + data[0].decode()
def imap_plain():
    c = imaplib.IMAP4('localhost', imap, timeout=30)
    c.starttls(ssl_context=ctx)
    c.authenticate('PLAIN', lambda _: ('\0%s\0%s' % (user, password)).encode())
    c.logout()
    return 'ok'
def pop3_user():
    p = poplib.POP3_SSL('localhost', pop3s, context=ctx, timeout=30)
    p.user(user); p.pass_(password)
    count, size = p.stat()
    p.quit()
    return 'ok %d' % count
def pop3_plain():
    p = poplib.POP3('localhost', pop3, timeout=30)
    p.stls(context=ctx)
    token = base64.b64encode(('\0%s\0%s' % (user, password)).encode()).decode()
    r = p._shortcmd('AUTH PLAIN ' + token)
    p.quit()
    return 'ok'
def smtp_plain():
    with smtplib.SMTP_SSL('localhost', subs, context=ctx, timeout=30) as s:
        s.ehlo()
        s.user, s.password = user, password
        s.auth('PLAIN', s.auth_plain)
        s.sendmail('dave@example.test', ['carol@example.test'],
                   'From: dave@example.test\r\nSubject: sent as ' + user + '\r\n\r\nhi\r\n')
    return 'ok'
def smtp_login():
    with smtplib.SMTP('localhost', sub, timeout=30) as s:
        s.starttls(context=ctx)
        s.ehlo()
        s.user, s.password = user, password
        s.auth('LOGIN', s.auth_login)
    return 'ok'
for name, f in [('imap-login', imap_login), ('imap-plain', imap_plain), ('pop3-user', pop3_user),
                ('pop3-plain', pop3_plain), ('smtp-plain', smtp_plain), ('smtp-login', smtp_login)]:
    attempt(name, f)
"#;

fn logins(server: &Server, user: &str, password: &str) -> Vec<String> {
    let ports: Vec<String> = [
        server.imap,
        server.imaps,
        server.pop3,
        server.pop3s,
        server.submission,
        server.submissions,
    ]
    .iter()
    .map(|a| a.port().to_string())
    .collect();
    let cert = server.cert();
    let mut args: Vec<&str> = ports.iter().map(String::as_str).collect();
    args.extend([cert.to_str().unwrap(), user, password]);
    python(LOGINS, &args).lines().map(String::from).collect()
}

#[test]
fn a_login_name_logs_in_over_imap_pop3_and_smtp() {
    // TLS required everywhere (no plaintext on loopback); failures do not lock out here.
    let mut server = Server::new("[auth]\nplaintext_on_loopback = false\nmax_failures = 100\n");
    server.start();
    server.with_example_accounts();
    let out = server.admin(&[
        "account",
        "add",
        "dave@example.test",
        "--password",
        "Secret123",
        "--login",
        "BBC_Dave",
    ]);
    assert!(
        String::from_utf8_lossy(&out).contains("login name bbc_dave"),
        "{}",
        String::from_utf8_lossy(&out)
    );
    let mut smtp = RawSmtp::connect(server.smtp).unwrap();
    smtp.cmd("EHLO test.example").unwrap();
    let reply = smtp
        .send_message(
            "sender@example.org",
            "dave@example.test",
            b"Subject: for dave\r\n\r\nhello\r\n",
        )
        .unwrap();
    assert!(reply.starts_with("250"), "{reply}");

    let expect = |results: Vec<String>, wanted: &[&str]| {
        assert_eq!(results, wanted, "{}", server.log());
    };
    expect(
        logins(&server, "bbc_dave", "Secret123"),
        &[
            "imap-login ok 1",
            "imap-plain ok",
            "pop3-user ok 1",
            "pop3-plain ok",
            "smtp-plain ok",
            "smtp-login ok",
        ],
    );
    // The message sent as bbc_dave came from dave's account.
    let carol = server.mail_list("carol@example.test");
    assert_eq!(carol.len(), 1);
    assert_eq!(carol[0].2, "sent as bbc_dave");
    // The name is not case-sensitive; the address still works.
    expect(
        logins(&server, "Bbc_DAVE", "Secret123")[..1].to_vec(),
        &["imap-login ok 1"],
    );
    expect(
        logins(&server, "dave@example.test", "Secret123")[..1].to_vec(),
        &["imap-login ok 1"],
    );
    // A wrong password with the login name is refused everywhere.
    let refused: Vec<String> = [
        "imap-login",
        "imap-plain",
        "pop3-user",
        "pop3-plain",
        "smtp-plain",
        "smtp-login",
    ]
    .iter()
    .map(|n| format!("{n} refused"))
    .collect();
    assert_eq!(logins(&server, "bbc_dave", "Wrong1234"), refused);

    // The CLI refuses a login name that is taken, or not a name.
    for args in [
        &[
            "account",
            "add",
            "erin@example.test",
            "--password",
            "Secret123",
            "--login",
            "bbc_dave",
        ][..],
        &["account", "login", "alice@example.test", "BBC_DAVE"],
        &[
            "account",
            "login",
            "alice@example.test",
            "alice@example.test",
        ],
        &["account", "login", "alice@example.test", "two words"],
    ] {
        let out = server.gannet(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("already taken") || err.contains("invalid login name"),
            "{args:?}: {err}"
        );
    }
    // erin was not created with a taken name.
    let list = String::from_utf8(server.admin(&["account", "list"])).unwrap();
    assert!(!list.contains("erin@"), "{list}");

    // Shown, changed, cleared.
    let show = |server: &Server| {
        String::from_utf8(server.admin(&["account", "login", "dave@example.test"])).unwrap()
    };
    assert_eq!(show(&server), "dave@example.test: login name bbc_dave\n");
    server.admin(&["account", "login", "dave@example.test", "dave.b"]);
    assert_eq!(
        logins(&server, "bbc_dave", "Secret123")[..1].to_vec(),
        ["imap-login refused"]
    );
    assert_eq!(
        logins(&server, "dave.b", "Secret123")[..1].to_vec(),
        ["imap-login ok 1"]
    );
    // The old name is free again.
    server.admin(&["account", "login", "alice@example.test", "bbc_dave"]);
    server.admin(&["account", "login", "dave@example.test", "--clear"]);
    assert_eq!(show(&server), "dave@example.test: no login name\n");
    assert_eq!(
        logins(&server, "dave.b", "Secret123")[..1].to_vec(),
        ["imap-login refused"]
    );
    assert_eq!(
        logins(&server, "bbc_dave", "Secret123")[..1].to_vec(),
        ["imap-login ok 0"]
    );

    // With no server running the command works on the store, and the server sees it
    // when started again.
    server.terminate(std::time::Duration::from_secs(20));
    server.admin(&["account", "login", "dave@example.test", "offline_dave"]);
    server.start();
    assert_eq!(
        logins(&server, "offline_dave", "Secret123")[..1].to_vec(),
        ["imap-login ok 1"]
    );
    assert!(!server.log().contains("allow_plaintext is on"));
}

#[test]
fn allow_plaintext_on_pop3_only() {
    let mut server = Server::new(
        "[auth]\nplaintext_on_loopback = false\nallow_plaintext = [\"pop3\"]\nmax_failures = 100\n",
    );
    server.start();
    server.with_example_accounts();
    assert!(
        server.log().contains("auth.allow_plaintext is on") && server.log().contains("pop3"),
        "{}",
        server.log()
    );
    let out = python(
        r#"
import imaplib, poplib, smtplib, sys
pop3, imap, sub, smtp = (int(x) for x in sys.argv[1:5])
p = poplib.POP3('127.0.0.1', pop3, timeout=30)
print('pop3-capa', 'USER' in p.capa())
p.user('alice@example.test'); p.pass_('Secret123')
print('pop3-stat', p.stat())
p.quit()
c = imaplib.IMAP4('127.0.0.1', imap, timeout=30)
print('imap-caps', 'LOGINDISABLED' in c.capabilities, 'STARTTLS' in c.capabilities)
try:
    c.login('alice@example.test', 'Secret123')
    print('imap-login ok')
except imaplib.IMAP4.error as e:
    print('imap-login refused', e)
for port in (sub, smtp):
    s = smtplib.SMTP('127.0.0.1', port, timeout=30)
    s.ehlo('client.example')
    print('smtp-auth-offered', s.has_extn('auth'))
    code, text = s.docmd('AUTH', 'PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABTZWNyZXQxMjM=')
    print('smtp-auth', code)
    s.quit()
"#,
        &[
            &server.pop3.port().to_string(),
            &server.imap.port().to_string(),
            &server.submission.port().to_string(),
            &server.smtp.port().to_string(),
        ],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "pop3-capa True", "{out}");
    assert_eq!(lines[1], "pop3-stat (0, 0)", "{out}");
    assert_eq!(lines[2], "imap-caps True True", "{out}");
    assert!(
        lines[3].starts_with("imap-login refused") && lines[3].contains("PRIVACYREQUIRED"),
        "{out}"
    );
    // Neither SMTP port takes a password without TLS.
    for port in 0..2 {
        assert_eq!(lines[4 + 2 * port], "smtp-auth-offered False", "{out}");
        assert!(lines[5 + 2 * port].starts_with("smtp-auth 5"), "{out}");
    }
}
