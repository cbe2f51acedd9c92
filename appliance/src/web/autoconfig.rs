//! Client setup: the documents mail clients fetch to configure themselves, so that a user
//! types an address and a password and nothing else.
//!
//! - Mozilla autoconfig (Thunderbird, K-9/Thunderbird for Android, Evolution, ...):
//!   `GET /.well-known/autoconfig/mail/config-v1.1.xml?emailaddress=ADDRESS`, and
//!   `GET /mail/config-v1.1.xml`, what Thunderbird asks `autoconfig.DOMAIN` for.
//! - Microsoft Autodiscover (Outlook's POX protocol): `POST /autodiscover/autodiscover.xml`
//!   with the request schema's `<EMailAddress>`.
//! - An Apple configuration profile: `GET /apple/mail.mobileconfig?emailaddress=ADDRESS`
//!   (unsigned, no password inside: the device asks for it when installing).
//!
//! Every document names the configured `server.hostname` and the appliance's own listen
//! ports, implicit TLS first. Only hosted domains are answered (404 otherwise); any
//! address of a hosted domain is, so the answers tell nothing about which accounts
//! exist. The documents are built by pure functions (tested below); the handlers only
//! read the request and the routing snapshot.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gannet_core::store::directory::normalize_address;

use super::{escape, page, WebState};

/// Largest Autodiscover request read; Outlook's is a few hundred bytes.
const MAX_BODY: usize = 16 * 1024;
/// Longest address answered (RFC 5321's path limit).
const MAX_ADDRESS: usize = 254;

/// The ports a client may use, from the configured listeners; `None`: not served.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MailSettings {
    /// The name clients connect to (`server.hostname`).
    pub(crate) hostname: String,
    pub(crate) imaps: Option<u16>,
    pub(crate) imap: Option<u16>,
    pub(crate) pop3s: Option<u16>,
    pub(crate) pop3: Option<u16>,
    pub(crate) submissions: Option<u16>,
    pub(crate) submission: Option<u16>,
}

/// How a client protects a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    /// TLS from the first byte (993, 995, 465).
    Implicit,
    /// STARTTLS / STLS on the plain port (143, 110, 587).
    StartTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Imap,
    Pop3,
    Smtp,
}

impl MailSettings {
    /// The servers of one kind, the preferred (implicit TLS) first.
    fn servers(&self, kind: Kind) -> Vec<(u16, Security)> {
        let (implicit, starttls) = match kind {
            Kind::Imap => (self.imaps, self.imap),
            Kind::Pop3 => (self.pop3s, self.pop3),
            Kind::Smtp => (self.submissions, self.submission),
        };
        [
            implicit.map(|p| (p, Security::Implicit)),
            starttls.map(|p| (p, Security::StartTls)),
        ]
        .into_iter()
        .flatten()
        .collect()
    }
}

pub(super) fn routes(state: Arc<WebState>) -> Router {
    Router::new()
        .route("/.well-known/autoconfig/mail/config-v1.1.xml", get(mozilla))
        .route("/mail/config-v1.1.xml", get(mozilla))
        .route("/autodiscover/autodiscover.xml", post(autodiscover))
        .route("/Autodiscover/Autodiscover.xml", post(autodiscover))
        .route("/apple/mail.mobileconfig", get(apple))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(state)
}

/// A checked address (lower case) and its domain; `None` when it is not one.
fn address(text: &str) -> Option<(String, String)> {
    if text.len() > MAX_ADDRESS {
        return None;
    }
    normalize_address(text).ok()
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "Not found",
        "<p>No mail settings for this domain here.</p>",
    )
}

fn bad_request(why: &str) -> Response {
    page(
        StatusCode::BAD_REQUEST,
        "Bad request",
        &format!("<p>{}</p>", escape(why)),
    )
}

fn document(content_type: &'static str, body: String) -> Response {
    let mut response = (StatusCode::OK, body).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// The query of the GET documents: other parameters are ignored, `emailaddress` twice
/// (or not UTF-8) is a bad request.
#[derive(serde::Deserialize)]
struct AddressQuery {
    emailaddress: Option<String>,
}

/// The `emailaddress` parameter, if the query has one (a query that cannot be read is a
/// bad request).
fn email_parameter(
    query: &Result<Query<AddressQuery>, QueryRejection>,
) -> Result<Option<String>, Box<Response>> {
    match query {
        Ok(Query(q)) => Ok(q.emailaddress.clone()),
        Err(_) => Err(Box::new(bad_request("The query string cannot be read."))),
    }
}

/// `GET .../config-v1.1.xml`: the domain from `emailaddress`, else from the Host header
/// (`autoconfig.DOMAIN`, as Thunderbird asks it).
async fn mozilla(
    State(state): State<Arc<WebState>>,
    headers: HeaderMap,
    query: Result<Query<AddressQuery>, QueryRejection>,
) -> Response {
    let domain = match email_parameter(&query) {
        Err(response) => return *response,
        Ok(Some(text)) => match address(&text) {
            Some((_, domain)) => domain,
            None => return bad_request("emailaddress is not an address."),
        },
        Ok(None) => match domain_from_host(&headers) {
            Some(domain) => domain,
            None => return bad_request("Give the address: ?emailaddress=you@example.com"),
        },
    };
    if !state.routing.load().is_hosted(&domain) {
        return not_found();
    }
    document(
        "application/xml; charset=utf-8",
        mozilla_config(&state.mail, &domain),
    )
}

/// `autoconfig.example.com[:port]` -> `example.com`.
fn domain_from_host(headers: &HeaderMap) -> Option<String> {
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let domain = host.to_ascii_lowercase();
    let domain = domain.strip_prefix("autoconfig.")?;
    gannet_core::store::directory::normalize_domain(domain).ok()
}

/// `POST /autodiscover/autodiscover.xml`.
async fn autodiscover(State(state): State<Arc<WebState>>, body: Bytes) -> Response {
    let Some(text) = autodiscover_address(&body) else {
        return bad_request("Expected an Autodiscover request with an EMailAddress.");
    };
    let Some((address, domain)) = address(&text) else {
        return bad_request("EMailAddress is not an address.");
    };
    if !state.routing.load().is_hosted(&domain) {
        return not_found();
    }
    document(
        "application/xml; charset=utf-8",
        autodiscover_response(&state.mail, &address),
    )
}

/// `GET /apple/mail.mobileconfig?emailaddress=...`.
async fn apple(
    State(state): State<Arc<WebState>>,
    query: Result<Query<AddressQuery>, QueryRejection>,
) -> Response {
    let text = match email_parameter(&query) {
        Err(response) => return *response,
        Ok(Some(text)) => text,
        Ok(None) => return bad_request("Give the address: ?emailaddress=you@example.com"),
    };
    let Some((address, domain)) = address(&text) else {
        return bad_request("emailaddress is not an address.");
    };
    if !state.routing.load().is_hosted(&domain) {
        return not_found();
    }
    let mut response = document(
        "application/x-apple-aspen-config",
        mobileconfig(&state.mail, &address),
    );
    // The address is checked (no quote, no control character), the domain is a host name.
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"{domain}.mobileconfig\""))
    {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The `<EMailAddress>` of an Outlook Autodiscover request, read with an XML parser (any
/// namespace prefix; entities other than XML's five are refused, so nothing expands).
/// `None` when the body is not XML, not UTF-8, or has no address.
fn autodiscover_address(body: &[u8]) -> Option<String> {
    use quick_xml::events::Event;
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut in_address = false;
    loop {
        match reader.read_event().ok()? {
            Event::Start(e) => in_address = e.local_name().as_ref() == b"EMailAddress",
            Event::Text(t) if in_address => {
                let text = t.unescape().ok()?;
                let text = text.trim();
                return (!text.is_empty()).then(|| text.to_string());
            }
            Event::End(_) => in_address = false,
            Event::Eof => return None,
            _ => {}
        }
    }
}

/// Mozilla's `clientConfig` 1.1 for `domain`. Only the domain asked about is listed: the
/// list of every hosted domain would tell anyone who asks who the appliance's customers
/// are.
fn mozilla_config(mail: &MailSettings, domain: &str) -> String {
    let host = escape(&mail.hostname);
    let domain = escape(domain);
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <clientConfig version=\"1.1\">\n\
         \x20 <emailProvider id=\"{domain}\">\n\
         \x20   <domain>{domain}</domain>\n\
         \x20   <displayName>{domain} mail</displayName>\n\
         \x20   <displayShortName>{domain}</displayShortName>\n"
    );
    let server = |out: &mut String, element: &str, kind: &str, port: u16, security: Security| {
        let socket = match security {
            Security::Implicit => "SSL",
            Security::StartTls => "STARTTLS",
        };
        out.push_str(&format!(
            "    <{element} type=\"{kind}\">\n\
             \x20     <hostname>{host}</hostname>\n\
             \x20     <port>{port}</port>\n\
             \x20     <socketType>{socket}</socketType>\n\
             \x20     <authentication>password-cleartext</authentication>\n\
             \x20     <username>%EMAILADDRESS%</username>\n\
             \x20   </{element}>\n"
        ));
    };
    for (kind, name) in [(Kind::Imap, "imap"), (Kind::Pop3, "pop3")] {
        for (port, security) in mail.servers(kind) {
            server(&mut out, "incomingServer", name, port, security);
        }
    }
    for (port, security) in mail.servers(Kind::Smtp) {
        server(&mut out, "outgoingServer", "smtp", port, security);
    }
    out.push_str("  </emailProvider>\n</clientConfig>\n");
    out
}

/// Outlook's Autodiscover answer (response schema 2006a): one `<Protocol>` each for IMAP,
/// POP3 and SMTP, the preferred server of each (implicit TLS: `<SSL>on</SSL>`; STARTTLS
/// only: `<Encryption>TLS</Encryption>`), the address as the login name.
fn autodiscover_response(mail: &MailSettings, address: &str) -> String {
    let host = escape(&mail.hostname);
    let login = escape(address);
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Autodiscover xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006\">\n\
         \x20 <Response xmlns=\"http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a\">\n\
         \x20   <Account>\n\
         \x20     <AccountType>email</AccountType>\n\
         \x20     <Action>settings</Action>\n",
    );
    for (kind, name) in [
        (Kind::Imap, "IMAP"),
        (Kind::Pop3, "POP3"),
        (Kind::Smtp, "SMTP"),
    ] {
        let Some(&(port, security)) = mail.servers(kind).first() else {
            continue;
        };
        let tls = match security {
            Security::Implicit => "<SSL>on</SSL>",
            Security::StartTls => "<SSL>on</SSL>\n        <Encryption>TLS</Encryption>",
        };
        let smtp = if kind == Kind::Smtp {
            "\n        <UsePOPAuth>off</UsePOPAuth>\n        <SMTPLast>off</SMTPLast>"
        } else {
            ""
        };
        out.push_str(&format!(
            "      <Protocol>\n\
             \x20       <Type>{name}</Type>\n\
             \x20       <Server>{host}</Server>\n\
             \x20       <Port>{port}</Port>\n\
             \x20       <DomainRequired>off</DomainRequired>\n\
             \x20       <LoginName>{login}</LoginName>\n\
             \x20       <SPA>off</SPA>\n\
             \x20       {tls}\n\
             \x20       <AuthRequired>on</AuthRequired>{smtp}\n\
             \x20     </Protocol>\n"
        ));
    }
    out.push_str("    </Account>\n  </Response>\n</Autodiscover>\n");
    out
}

/// A UUID that depends only on the appliance's name, the address and what it names, so
/// that the same profile downloaded twice replaces itself on the device instead of
/// adding a second account. (Name-based, RFC 9562's version 8 layout over BLAKE3.)
fn stable_uuid(hostname: &str, address: &str, what: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in ["gannet mobileconfig", hostname, address, what] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    let mut b = [0u8; 16];
    b.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    // Splitting ASCII hex digits at fixed offsets.
    let part = |from: usize, to: usize| hex.get(from..to).unwrap_or_default().to_string();
    format!(
        "{}-{}-{}-{}-{}",
        part(0, 8),
        part(8, 12),
        part(12, 16),
        part(16, 20),
        part(20, 32)
    )
}

/// An unsigned Apple configuration profile with one `com.apple.mail.managed` payload:
/// IMAP (else POP3) and SMTP on their preferred ports, the address as the user name, the
/// password asked for on the device (none is in the profile).
fn mobileconfig(mail: &MailSettings, address: &str) -> String {
    let imap = mail.servers(Kind::Imap);
    let (account_type, incoming) = match imap.first() {
        Some(first) => ("EmailTypeIMAP", Some(*first)),
        None => ("EmailTypePOP", mail.servers(Kind::Pop3).first().copied()),
    };
    let outgoing = mail.servers(Kind::Smtp).first().copied();
    let host = escape(&mail.hostname);
    let esc_address = escape(address);
    let payload_uuid = stable_uuid(&mail.hostname, address, "mail payload");
    let profile_uuid = stable_uuid(&mail.hostname, address, "profile");
    let reversed: Vec<&str> = mail.hostname.rsplit('.').collect();
    let identifier = escape(&format!("{}.gannet.mail", reversed.join(".")));
    let mut mail_dict = format!(
        "\t\t\t<key>EmailAccountDescription</key>\n\t\t\t<string>{esc_address}</string>\n\
         \t\t\t<key>EmailAccountType</key>\n\t\t\t<string>{account_type}</string>\n\
         \t\t\t<key>EmailAddress</key>\n\t\t\t<string>{esc_address}</string>\n"
    );
    let server = |out: &mut String, side: &str, (port, security): (u16, Security)| {
        let ssl = match security {
            Security::Implicit => "<true/>",
            Security::StartTls => "<false/>",
        };
        out.push_str(&format!(
            "\t\t\t<key>{side}MailServerAuthentication</key>\n\t\t\t<string>EmailAuthPassword</string>\n\
             \t\t\t<key>{side}MailServerHostName</key>\n\t\t\t<string>{host}</string>\n\
             \t\t\t<key>{side}MailServerPortNumber</key>\n\t\t\t<integer>{port}</integer>\n\
             \t\t\t<key>{side}MailServerUseSSL</key>\n\t\t\t{ssl}\n\
             \t\t\t<key>{side}MailServerUsername</key>\n\t\t\t<string>{esc_address}</string>\n"
        ));
    };
    if let Some(incoming) = incoming {
        server(&mut mail_dict, "Incoming", incoming);
    }
    if let Some(outgoing) = outgoing {
        server(&mut mail_dict, "Outgoing", outgoing);
        mail_dict
            .push_str("\t\t\t<key>OutgoingPasswordSameAsIncomingPassword</key>\n\t\t\t<true/>\n");
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n\
         <dict>\n\
         \t<key>PayloadContent</key>\n\
         \t<array>\n\
         \t\t<dict>\n\
         {mail_dict}\
         \t\t\t<key>PayloadDescription</key>\n\t\t\t<string>Mail for {esc_address}</string>\n\
         \t\t\t<key>PayloadDisplayName</key>\n\t\t\t<string>{esc_address}</string>\n\
         \t\t\t<key>PayloadIdentifier</key>\n\t\t\t<string>{identifier}.{payload_uuid}</string>\n\
         \t\t\t<key>PayloadType</key>\n\t\t\t<string>com.apple.mail.managed</string>\n\
         \t\t\t<key>PayloadUUID</key>\n\t\t\t<string>{payload_uuid}</string>\n\
         \t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n\
         \t\t\t<key>PreventAppSheet</key>\n\t\t\t<false/>\n\
         \t\t\t<key>PreventMove</key>\n\t\t\t<false/>\n\
         \t\t\t<key>SMIMEEnabled</key>\n\t\t\t<false/>\n\
         \t\t</dict>\n\
         \t</array>\n\
         \t<key>PayloadDescription</key>\n\t<string>Mail settings for {esc_address} at {host}</string>\n\
         \t<key>PayloadDisplayName</key>\n\t<string>Mail: {esc_address}</string>\n\
         \t<key>PayloadIdentifier</key>\n\t<string>{identifier}.{profile_uuid}</string>\n\
         \t<key>PayloadOrganization</key>\n\t<string>{host}</string>\n\
         \t<key>PayloadRemovalDisallowed</key>\n\t<false/>\n\
         \t<key>PayloadType</key>\n\t<string>Configuration</string>\n\
         \t<key>PayloadUUID</key>\n\t<string>{profile_uuid}</string>\n\
         \t<key>PayloadVersion</key>\n\t<integer>1</integer>\n\
         </dict>\n\
         </plist>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> MailSettings {
        MailSettings {
            hostname: "mx.example.test".into(),
            imaps: Some(993),
            imap: Some(143),
            pop3s: Some(995),
            pop3: Some(110),
            submissions: Some(465),
            submission: Some(587),
        }
    }

    /// Every text node, in order, of a well-formed document (panics if it is not).
    fn texts(xml: &str) -> Vec<String> {
        use quick_xml::events::Event;
        let mut reader = quick_xml::Reader::from_str(xml);
        reader.config_mut().trim_text(true);
        let mut out = Vec::new();
        loop {
            match reader.read_event().unwrap() {
                Event::Text(t) => out.push(t.unescape().unwrap().into_owned()),
                Event::Eof => return out,
                _ => {}
            }
        }
    }

    #[test]
    fn mozilla_lists_every_served_port_implicit_tls_first() {
        let xml = mozilla_config(&settings(), "example.test");
        let t = texts(&xml);
        assert!(xml.contains("<emailProvider id=\"example.test\">"));
        let ports: Vec<&str> = t
            .iter()
            .map(String::as_str)
            .filter(|s| s.parse::<u16>().is_ok())
            .collect();
        assert_eq!(ports, ["993", "143", "995", "110", "465", "587"]);
        let sockets: Vec<&str> = t
            .iter()
            .map(String::as_str)
            .filter(|s| *s == "SSL" || *s == "STARTTLS")
            .collect();
        assert_eq!(
            sockets,
            ["SSL", "STARTTLS", "SSL", "STARTTLS", "SSL", "STARTTLS"]
        );
        assert_eq!(t.iter().filter(|s| *s == "%EMAILADDRESS%").count(), 6);
        // A listener not served is left out.
        let xml = mozilla_config(
            &MailSettings {
                pop3: None,
                pop3s: None,
                ..settings()
            },
            "example.test",
        );
        assert!(!xml.contains("pop3"));
    }

    #[test]
    fn values_are_escaped() {
        let odd = MailSettings {
            hostname: "<mx>&\"'".into(),
            ..settings()
        };
        for xml in [
            mozilla_config(&odd, "a&b"),
            autodiscover_response(&odd, "o'<x>&y@example.test"),
            mobileconfig(&odd, "o'<x>&y@example.test"),
        ] {
            let t = texts(&xml);
            assert!(t.iter().any(|s| s == "<mx>&\"'"), "{xml}");
        }
        let t = texts(&autodiscover_response(&odd, "o'<x>&y@example.test"));
        assert!(t.iter().any(|s| s == "o'<x>&y@example.test"));
    }

    #[test]
    fn autodiscover_request_is_parsed() {
        let request = br#"<?xml version="1.0" encoding="utf-8"?>
<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006">
  <Request>
    <EMailAddress>Alice@Example.test</EMailAddress>
    <AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema>
  </Request>
</Autodiscover>"#;
        assert_eq!(
            autodiscover_address(request).as_deref(),
            Some("Alice@Example.test")
        );
        let prefixed = b"<a:Autodiscover xmlns:a=\"x\"><a:Request><a:EMailAddress> o&amp;k@example.test </a:EMailAddress></a:Request></a:Autodiscover>";
        assert_eq!(
            autodiscover_address(prefixed).as_deref(),
            Some("o&k@example.test")
        );
        for bad in [
            &b""[..],
            b"not xml at all",
            b"<Autodiscover><Request></Request></Autodiscover>",
            b"<EMailAddress></EMailAddress>",
            b"<EMailAddress>\xff\xfe@example.test</EMailAddress>",
            b"<!DOCTYPE x [<!ENTITY e \"boom\">]><EMailAddress>&e;@example.test</EMailAddress>",
            b"<EMailAddress>a@example.test",
            b"<<<<>>>>",
        ] {
            let found = autodiscover_address(bad);
            assert!(
                found.is_none() || found.as_deref() == Some("a@example.test"),
                "{:?}: {found:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn autodiscover_answers_each_protocol_once() {
        let xml = autodiscover_response(&settings(), "alice@example.test");
        let t = texts(&xml);
        assert!(xml.contains("outlook/responseschema/2006a"));
        let types: Vec<&str> = t
            .iter()
            .map(String::as_str)
            .filter(|s| ["IMAP", "POP3", "SMTP"].contains(s))
            .collect();
        assert_eq!(types, ["IMAP", "POP3", "SMTP"]);
        assert_eq!(xml.matches("<SSL>on</SSL>").count(), 3);
        for port in ["993", "995", "465"] {
            assert!(xml.contains(&format!("<Port>{port}</Port>")), "{port}");
        }
        assert_eq!(
            xml.matches("<LoginName>alice@example.test</LoginName>")
                .count(),
            3
        );
        // STARTTLS only: the plain port with Encryption TLS.
        let xml = autodiscover_response(
            &MailSettings {
                imaps: None,
                ..settings()
            },
            "alice@example.test",
        );
        assert!(xml.contains("<Port>143</Port>\n"));
        assert!(xml.contains("<Encryption>TLS</Encryption>"));
    }

    #[test]
    fn mobileconfig_is_stable_and_has_no_password() {
        let a = mobileconfig(&settings(), "alice@example.test");
        assert_eq!(a, mobileconfig(&settings(), "alice@example.test"));
        let b = mobileconfig(&settings(), "bob@example.test");
        assert_ne!(a, b);
        let t = texts(&a);
        assert!(t.iter().any(|s| s == "com.apple.mail.managed"));
        assert!(t.iter().any(|s| s == "EmailTypeIMAP"));
        assert!(!a
            .to_ascii_lowercase()
            .contains("password</key>\n\t\t\t<string>"));
        assert!(!a.contains("<key>IncomingPassword</key>"));
        assert!(!a.contains("<key>OutgoingPassword</key>"));
        let uuid = stable_uuid("mx.example.test", "alice@example.test", "profile");
        assert_eq!(uuid.len(), 36);
        assert_eq!(uuid.as_bytes()[14], b'8');
        assert!(a.contains(&uuid));
        assert_ne!(
            uuid,
            stable_uuid("mx.example.test", "alice@example.test", "mail payload")
        );
    }

    #[test]
    fn addresses_and_hosts() {
        assert_eq!(
            address("Alice@Example.TEST"),
            Some(("alice@example.test".into(), "example.test".into()))
        );
        assert_eq!(address("no-at-sign"), None);
        assert_eq!(address(&format!("{}@example.test", "a".repeat(300))), None);
        let mut h = HeaderMap::new();
        h.insert(
            header::HOST,
            HeaderValue::from_static("autoconfig.Example.test:8443"),
        );
        assert_eq!(domain_from_host(&h).as_deref(), Some("example.test"));
        h.insert(header::HOST, HeaderValue::from_static("mx.example.test"));
        assert_eq!(domain_from_host(&h), None);
        h.insert(header::HOST, HeaderValue::from_static("autoconfig."));
        assert_eq!(domain_from_host(&h), None);
    }
}
