//! The relays a message passed through, read from its `Received` headers the way
//! SpamAssassin reads them, for its `X-Spam-Relays-*` pseudo-headers and relay evals
//! (`RDNS_NONE`, `ALL_TRUSTED`, ...). With no trusted networks configured, SpamAssassin's
//! inference applies: starting from the newest header, a relay from a private address is
//! trusted, and so is an authenticated one after a trusted one; the first other relay and
//! every older one are untrusted.

use std::net::IpAddr;

/// One relay: the host that handed the message to the host that wrote the header.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Relay {
    pub ip: String,
    /// The reverse DNS name the receiving host recorded ("" if none or "unknown").
    pub rdns: String,
    pub helo: String,
    pub by: String,
    pub id: String,
    pub envfrom: String,
    pub auth: String,
    /// The receiving host looked the address up and found no name ("unknown"), as
    /// opposed to not saying (Gannet's own header records no reverse name at all).
    pub no_reverse_dns: bool,
}

impl Relay {
    /// SpamAssassin's text form of a relay; regexes depend on the order of the fields.
    fn as_string(&self, internal: bool) -> String {
        format!(
            "[ ip={} rdns={} helo={} by={} ident= envfrom={} intl={} id={} auth={} msa=0 ]",
            self.ip,
            self.rdns,
            self.helo,
            self.by,
            self.envfrom,
            u8::from(internal),
            self.id,
            self.auth
        )
    }
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Relays {
    /// Newest first, as the headers are.
    pub trusted: Vec<Relay>,
    pub untrusted: Vec<Relay>,
    /// How many Received headers, from the top, the trusted relays (and the fetchers'
    /// restarts before them) wrote: SpamAssassin's `last_internal_relay_index` + 1, where
    /// the `ALL-EXTERNAL` headers begin.
    pub internal_received: usize,
    /// Received headers with a `from` clause that name no relay Gannet or SpamAssassin
    /// can read (SpamAssassin's `num_relays_unparseable`).
    pub unparseable: usize,
}

impl Relays {
    /// From the values of the `Received` headers, newest first.
    pub fn from_received<'a>(headers: impl Iterator<Item = &'a str>) -> Relays {
        let mut relays = Relays::default();
        let mut trusting = true;
        for (index, h) in headers.enumerate() {
            // A mail fetcher (fetchmail over POP3 or IMAP) restarts the chain while it is
            // still trusted: the relays before it are the fetching host's own.
            if trusting && is_fetcher_marker(h) {
                relays = Relays {
                    internal_received: index + 1,
                    ..Relays::default()
                };
                continue;
            }
            let (text, lower) = normalized(h);
            let Some(r) = parse(&text, &lower) else {
                relays.unparseable += usize::from(unparseable(&text, &lower));
                // As SpamAssassin: a header that names no relay belongs to the side the
                // chain is on.
                if trusting {
                    relays.internal_received = index + 1;
                }
                continue;
            };
            let private = r.ip.parse::<IpAddr>().is_ok_and(is_private);
            if trusting && (private || !r.auth.is_empty()) {
                relays.trusted.push(r);
                relays.internal_received = index + 1;
            } else {
                trusting = false;
                relays.untrusted.push(r);
            }
        }
        relays
    }

    /// The public addresses of every relay, newest first (for blocklist lookups).
    pub fn public_addresses(&self) -> Vec<IpAddr> {
        self.trusted
            .iter()
            .chain(&self.untrusted)
            .filter_map(|r| r.ip.parse::<IpAddr>().ok())
            .filter(|ip| !is_private(*ip))
            .collect()
    }

    /// `X-Spam-Relays-Trusted` (= Internal here) and `-Untrusted` (= External).
    pub fn header(&self, name: &str) -> Option<String> {
        let (list, internal) = match name.to_ascii_lowercase().as_str() {
            "x-spam-relays-trusted" | "x-spam-relays-internal" => (&self.trusted, true),
            "x-spam-relays-untrusted" | "x-spam-relays-external" => (&self.untrusted, false),
            _ => return None,
        };
        Some(
            list.iter()
                .map(|r| r.as_string(internal))
                .collect::<Vec<_>>()
                .join(" "),
        )
    }
}

impl Relays {
    /// SpamAssassin's `helo_ip_mismatch` (RCVD_HELO_IP_MISMATCH): an untrusted relay
    /// greeted with a public address literal that is not its own, nor in its /24.
    pub fn helo_ip_mismatch(&self) -> bool {
        let public_v4 = |s: &str| {
            s.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|ip| !is_private(IpAddr::V4(ip)))
        };
        self.untrusted.iter().any(|r| {
            // A bare dotted quad, as SpamAssassin's test wants it (not "[...]").
            let helo = r.helo.as_str();
            if !public_v4(helo) || !public_v4(&r.ip) {
                return false;
            }
            let net = helo.rsplit_once('.').map_or(helo, |(net, _)| net);
            helo != r.ip && !r.ip.starts_with(&format!("{net}."))
        })
    }

    /// SpamAssassin's `check_for_no_rdns_dotcom_helo` (NO_RDNS_DOTCOM_HELO): the oldest
    /// public untrusted relay that gave a HELO named a big mail provider but had no
    /// reverse DNS (the providers' own servers always have it).
    pub fn no_rdns_dotcom_helo(&self) -> bool {
        const PROVIDERS: &[&str] = &[
            "lycos.com",
            "lycos.co.uk",
            "hotmail.com",
            "localhost.com",
            "excite.com",
            "caramail.com",
            "cs.com",
            "aol.com",
            "msn.com",
            "yahoo.com",
            "drizzle.com",
        ];
        let mut found = false;
        for r in &self.untrusted {
            if r.ip.parse::<IpAddr>().is_ok_and(is_private) {
                continue;
            }
            let helo = r.helo.to_ascii_lowercase();
            let provider = PROVIDERS.iter().any(|p| {
                helo.strip_suffix(p)
                    .is_some_and(|rest| rest.is_empty() || rest.ends_with('.'))
            });
            // As SpamAssassin: each public relay decides anew, the oldest last, one
            // without a HELO name too (its HELO is the empty string, not undefined).
            // Only a name looked up and not found counts (Gannet's own hop records none).
            found = provider && r.no_reverse_dns;
        }
        found
    }
}

/// A Received header [`parse`] found no relay in that SpamAssassin's parser would not
/// read either: one with a `from` clause, but not a local hand-off (`with local for`,
/// `from NAME by NAME;`), and without both an IPv4 address and a `by` clause. `text` is
/// the header's words one space apart, `lower` that in ASCII lower case.
fn unparseable(text: &str, lower: &str) -> bool {
    let Some(rest) = lower
        .strip_prefix("from ")
        .or_else(|| lower.strip_prefix("(from "))
    else {
        return false;
    };
    if lower.contains(" with local for ") {
        return false;
    }
    let mut words = rest.split(' ');
    if let (Some(name), Some("by"), Some(host)) = (words.next(), words.next(), words.next()) {
        if (host.ends_with(';') || words.next().is_some_and(|w| w.starts_with(';')))
            && !name.starts_with('[')
        {
            return false;
        }
    }
    let has_ipv4 = text
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .any(|w| w.parse::<std::net::Ipv4Addr>().is_ok());
    !(has_ipv4 && lower.contains(" by "))
}

/// A header's words one space apart, and that in ASCII lower case: what [`parse`] and
/// [`unparseable`] read.
fn normalized(header: &str) -> (String, String) {
    let mut text = String::with_capacity(header.len());
    for word in header.split_whitespace() {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(word);
    }
    let lower = text.to_ascii_lowercase();
    (text, lower)
}

fn is_fetcher_marker(header: &str) -> bool {
    let lower = header.to_ascii_lowercase();
    lower.contains("(fetchmail-")
        || lower.contains(" with pop3")
        || lower.contains(" with imap")
        || lower.contains(" with odmr")
}

/// RFC 1918, loopback, link-local, shared (CGN) and unique-local addresses.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || (o[0] == 100 && (64..128).contains(&o[1]))
        }
        IpAddr::V6(v6) => {
            let s = v6.segments()[0];
            v6.is_loopback() || (s & 0xfe00) == 0xfc00 || (s & 0xffc0) == 0xfe80
        }
    }
}

/// What follows the first `key` (lower-case ASCII) in `text`, found in `lower`, the ASCII
/// lower-case copy of `text` (in which every character is at the same offset).
fn after_key<'a>(text: &'a str, lower: &str, key: &str) -> Option<&'a str> {
    // (memmem: `str::find` sets up a two-way search for every call, dearer than the
    // search itself in a header this short.)
    let at = memchr::memmem::find(lower.as_bytes(), key.as_bytes())?;
    text.get(at + key.len()..)
}

/// The word after `key` (a space-delimited keyword) in `text`, case-insensitively.
fn word_after(text: &str, lower: &str, key: &str) -> String {
    after_key(text, lower, key)
        .and_then(|after| {
            after
                .split(|c: char| c.is_whitespace() || c == ';' || c == ')' || c == '(')
                .find(|w| !w.is_empty())
        })
        .unwrap_or_default()
        .to_string()
}

/// The first IP address literal in `text`: `[1.2.3.4]`, `[IPv6:...]`, `(1.2.3.4)` or bare.
fn first_ip(text: &str) -> Option<String> {
    // Candidates: the runs of address characters, without dots at their ends.
    text.split(|c: char| !(c.is_ascii_hexdigit() || c == '.' || c == ':'))
        .map(|run| run.trim_matches('.'))
        .find(|candidate| candidate.contains(['.', ':']) && candidate.parse::<IpAddr>().is_ok())
        .map(str::to_string)
}

/// The relay of one `Received` header; None for a header without a `from` clause or
/// without an address in it (local submission, a hand-off inside one host), which
/// SpamAssassin does not count as a relay either. `text` is the header's words one space
/// apart, `lower` that in ASCII lower case.
fn parse(text: &str, lower: &str) -> Option<Relay> {
    if !lower.starts_with("from ") {
        return None;
    }
    // The from clause ends where the receiving host's own part begins: the first " by "
    // after "from" (which may come at once, "from by host": an empty clause, no relay).
    let from_end = lower
        .get(4..)
        .and_then(|rest| rest.find(" by "))
        .map_or(lower.len(), |i| 4 + i);
    let clause = text.get(5..from_end).unwrap_or("");
    let clause = clause.replace("IPv6:", "").replace("ipv6:", "");
    // The address the receiving host recorded: inside the parentheses ("(rdns [ip])",
    // "([ip] helo=...)", qmail's "(HELO name) (ip)"), else in brackets, else the first
    // one. What comes before the parentheses is the client's HELO, which it chooses: a
    // literal there ("[127.0.0.1]") must not pass for its address.
    let in_parentheses = clause
        .split_once('(')
        .and_then(|(_, inner)| first_ip(inner));
    let bracketed = || {
        clause
            .split('[')
            .skip(1)
            .find_map(|part| first_ip(part.split(']').next().unwrap_or_default()))
    };
    let recorded_apart = in_parentheses.is_some();
    let ip = in_parentheses
        .or_else(bracketed)
        .or_else(|| first_ip(&clause))?;
    let first_word = clause
        .split_whitespace()
        .next()
        .unwrap_or("")
        .trim_matches(['[', ']', '(', ')'])
        .to_string();
    // A client that greeted with its own bare address ("from 1.2.3.4 ([1.2.3.4])") has
    // that as its HELO; an address alone, with nothing recorded apart, is no HELO, and
    // neither is a bracketed literal (SpamAssassin's reading turns it into "!1.2.3.4!").
    let bare_first_word = clause.split_whitespace().next().unwrap_or("") == first_word;
    let mut helo = if first_word == ip && !(recorded_apart && bare_first_word) {
        String::new()
    } else {
        first_word.clone()
    };
    let clause_lower = clause.to_ascii_lowercase();
    // Exim writes "from RDNS ([IP] helo=HELO)": the name outside is the reverse name.
    let exim_rdns =
        (clause_lower.contains("helo=") && first_word != ip && first_word.contains('.'))
            .then(|| first_word.clone());
    if let Some(after) = after_key(&clause, &clause_lower, "helo=")
        .or_else(|| after_key(&clause, &clause_lower, "(helo "))
    {
        helo = after
            .split(|c: char| c.is_whitespace() || c == ')')
            .next()
            .unwrap_or("")
            .to_string();
    }
    // The reverse name the receiving host looked up: the word in the parenthesis that
    // holds the address ("(rdns [ip])", Postfix and Sendmail), unless it says unknown.
    let rdns = clause
        .split_once('(')
        .map(|(_, inner)| {
            let word = inner
                .split(|c: char| c.is_whitespace() || c == ')' || c == '[')
                .next()
                .unwrap_or("");
            // Sendmail writes the client's ident first: "(root@host [ip])",
            // "(IDENT:qmailr@host [ip])"; the name is after the @.
            let word = word.rsplit_once('@').map_or(word, |(_, name)| name);
            let holds_ip = inner.split(')').next().unwrap_or("").contains(&ip);
            if holds_ip
                && word.contains('.')
                && !word.eq_ignore_ascii_case("unknown")
                && word.parse::<IpAddr>().is_err()
                && !word.to_ascii_lowercase().starts_with("helo")
            {
                word.to_string()
            } else {
                String::new()
            }
        })
        .unwrap_or_default();
    let mut rdns = exim_rdns.filter(|_| rdns.is_empty()).unwrap_or(rdns);
    // qmail: "from NAME (IP)" or "from NAME (HELO helo) (IP)": NAME is the reverse name
    // tcpserver handed it ("unknown" for none), and the client named itself only in a HELO.
    if rdns.is_empty() && qmail_form(&clause, &ip) {
        if !first_word.eq_ignore_ascii_case("unknown") && first_word != ip {
            rdns = first_word.clone();
        }
        if after_key(&clause, &clause_lower, "(helo ").is_none() {
            helo.clear();
        }
    }
    // `from_end` is the offset of a space or the end: always between characters.
    let after = text.get(from_end..).unwrap_or_default();
    let after_lower = after.to_ascii_lowercase();
    let with = word_after(after, &after_lower, " with ").to_ascii_lowercase();
    let with = with.trim_end_matches(';');
    let auth = if authenticated_protocol(with) {
        with.to_ascii_uppercase()
    } else if lower.contains("(authenticated") {
        "authenticated".to_string()
    } else {
        String::new()
    };
    let no_reverse_dns = rdns.is_empty() && looked_up_without_a_name(&clause_lower, &after_lower);
    Some(Relay {
        no_reverse_dns,
        ip,
        rdns,
        helo,
        by: word_after(after, &after_lower, " by "),
        id: word_after(after, &after_lower, " id "),
        envfrom: word_after(text, lower, "envelope-from ")
            .trim_matches(['<', '>'])
            .to_string(),
        auth,
    })
}

/// qmail's from clause: a name, then parentheses of which the last holds the bare
/// address (no brackets; an ident before an @ allowed).
fn qmail_form(clause: &str, ip: &str) -> bool {
    let Some((name, rest)) = clause.split_once('(') else {
        return false;
    };
    if name.trim().contains(char::is_whitespace) || name.trim().is_empty() {
        return false;
    }
    let last = rest
        .rsplit_once('(')
        .map_or(rest, |(_, last)| last)
        .split(')')
        .next()
        .unwrap_or("")
        .trim();
    last.rsplit_once('@').map_or(last, |(_, address)| address) == ip
}

/// A `with` protocol that says the client authenticated, as SpamAssassin reads them:
/// RFC 3848's ESMTPA, ESMTPSA, LMTPA, LMTPSA and their UTF8 forms, ASMTP, and HTTP,
/// HTTPS, HTTPU (webmail sessions, authenticated by the webmail).
fn authenticated_protocol(with: &str) -> bool {
    let smtp_auth = ["esmtp", "lmtp", "utf8smtp", "utf8lmtp"]
        .iter()
        .any(|base| {
            with.strip_prefix(base)
                .is_some_and(|rest| rest == "a" || rest == "sa")
        });
    smtp_auth || matches!(with, "asmtp" | "http" | "https" | "httpu")
}

/// Whether the receiving host looked the client's name up and found none, in the forms
/// SpamAssassin knows an MTA that always looks up: Postfix's and Gannet's "(unknown
/// [ip])", Sendmail's "([ip])" (the parenthesis holds the bare address, a
/// "(version)" follows the receiving host), "(ident@[ip])". qmail's "from unknown (HELO
/// ...)" does not say: qmail writes unknown also when nobody asked. Gannet's own "([ip])"
/// says it did not look (reverse DNS checks off).
fn looked_up_without_a_name(clause_lower: &str, after_lower: &str) -> bool {
    let Some((_, inner)) = clause_lower.split_once('(') else {
        return false;
    };
    let parenthesis = inner.split(')').next().unwrap_or("").trim();
    if parenthesis.starts_with("unknown ") || parenthesis.starts_with("unknown[") {
        return true;
    }
    if parenthesis.contains("@[") {
        return true;
    }
    let bare_address = parenthesis.starts_with('[')
        && parenthesis.ends_with(']')
        && !parenthesis.contains(char::is_whitespace);
    // " by host (version)": the by-host's own parenthesis follows it.
    let by_version = after_lower
        .strip_prefix(" by ")
        .and_then(|rest| rest.split_once(' '))
        .and_then(|(_, rest)| rest.strip_prefix('('))
        .is_some_and(|version| !version.starts_with("gannet"));
    bare_address && by_version
}

#[cfg(test)]
mod tests {
    use super::*;

    /// [`super::parse`] of a header as it comes.
    fn parse(header: &str) -> Option<Relay> {
        let (text, lower) = normalized(header);
        super::parse(&text, &lower)
    }

    fn untrusted(ip: &str, rdns: &str, helo: &str) -> Relays {
        Relays {
            trusted: Vec::new(),
            internal_received: 0,
            unparseable: 0,
            untrusted: vec![Relay {
                ip: ip.into(),
                rdns: rdns.into(),
                helo: helo.into(),
                no_reverse_dns: rdns.is_empty(),
                ..Relay::default()
            }],
        }
    }

    /// A client that says HELO with a private address literal is still the address it
    /// came from: Gannet's own header names both, and the literal must not make the hop
    /// trusted.
    #[test]
    fn a_helo_literal_is_not_the_clients_address() {
        let received =
            ["from [127.0.0.1] ([203.0.113.9]) by mx.example.test (Gannet) with ESMTP id 1"];
        let relays = Relays::from_received(received.iter().copied());
        assert!(relays.trusted.is_empty(), "{relays:?}");
        assert_eq!(relays.untrusted[0].ip, "203.0.113.9");
        // Gannet's own hop records no reverse name: not "looked up and not found".
        assert!(!relays.untrusted[0].no_reverse_dns);
        let postfix = ["from mail.hotmail.com (unknown [203.0.113.9]) by mx.example.test (Postfix) with ESMTP id 1"];
        let relays = Relays::from_received(postfix.iter().copied());
        assert!(relays.untrusted[0].no_reverse_dns && relays.no_rdns_dotcom_helo());
        let direct =
            ["from mail.hotmail.com ([203.0.113.9]) by mx.example.test (Gannet) with ESMTP id 1"];
        assert!(!Relays::from_received(direct.iter().copied()).no_rdns_dotcom_helo());
    }

    /// Reverse names as SpamAssassin reads them: Sendmail's ident before an @ is not part
    /// of the name; qmail's name outside the parentheses is the reverse name, its HELO
    /// only what "(HELO ...)" says.
    #[test]
    fn reverse_names_of_sendmail_with_ident_and_of_qmail() {
        let rdns_helo = |h: &str| {
            let r = parse(h).unwrap();
            (r.rdns, r.helo)
        };
        assert_eq!(
            rdns_helo("from moon.example.se (root@moon.example.se [130.240.202.158]) by dogma.example.org (8.11.6/8.11.6) with ESMTP id g7"),
            ("moon.example.se".into(), "moon.example.se".into())
        );
        assert_eq!(
            rdns_helo("from smtp1.example.net (IDENT:qmailr@smtp1.example.net [207.228.225.14]) by dogma.example.org (8.11.6/8.11.6) with SMTP id g8"),
            ("smtp1.example.net".into(), "smtp1.example.net".into())
        );
        assert_eq!(
            rdns_helo(
                "from bocelli.example.com (64.41.120.21) by h.example.net with SMTP; 7 May 2002"
            ),
            ("bocelli.example.com".into(), String::new())
        );
        // A client that greeted with its bare address has it as its HELO.
        assert_eq!(
            rdns_helo("from 218.5.180.50 ([218.5.180.50]) by dogma.example.org (8.11.6/8.11.6) with SMTP id g8"),
            (String::new(), "218.5.180.50".into())
        );
        assert_eq!(
            rdns_helo("from [49.164.250.3] by rly.example.com with SMTP; Sep, 11 2002"),
            (String::new(), String::new())
        );
        assert_eq!(
            rdns_helo("from unknown (HELO maya.example.org) (207.61.5.143) by smtp1.example.net with SMTP; 17 Sep 2002"),
            (String::new(), "maya.example.org".into())
        );
    }

    /// A webmail hand-off ("with HTTP") is an authenticated relay: trusted while the
    /// chain is, as SpamAssassin has it (the mail of a webmail user is ALL_TRUSTED).
    #[test]
    fn webmail_over_http_is_authenticated() {
        let webmail = ["from 194.125.220.138 (SquirrelMail authenticated user someone) by jmason.org with HTTP; Wed, 28 Aug 2002 00:11:36 +0100"];
        let relays = Relays::from_received(webmail.iter().copied());
        assert!(relays.untrusted.is_empty(), "{relays:?}");
        assert_eq!(relays.trusted[0].auth, "HTTP");
        assert!(authenticated_protocol("utf8smtpsa") && authenticated_protocol("lmtpa"));
        assert!(!authenticated_protocol("esmtps") && !authenticated_protocol("smtp"));
    }

    /// SpamAssassin's NO_RDNS_DOTCOM_HELO reading: Sendmail's "([ip])" was looked up and
    /// had no name; qmail's "from unknown" says nothing; the oldest public relay decides,
    /// one without a HELO too.
    #[test]
    fn dotcom_helo_without_reverse_dns_as_spamassassin_reads_it() {
        let sendmail = ["from yahoo.com ([61.50.141.181]) by lugh.tuatha.org (8.9.3/8.9.3) with ESMTP id QAA01654"];
        assert!(Relays::from_received(sendmail.iter().copied()).no_rdns_dotcom_helo());
        let qmail = ["from unknown (HELO n19.grp.scd.yahoo.com) (66.218.66.74) by mta2.grp.scd.yahoo.com with SMTP"];
        assert!(!Relays::from_received(qmail.iter().copied()).no_rdns_dotcom_helo());
        // Newest first: the sendmail hop, then an older one with no HELO at all.
        let older = [
            sendmail[0],
            "from [66.218.67.174] by n19.grp.scd.yahoo.com with NNFMP",
        ];
        assert!(!Relays::from_received(older.iter().copied()).no_rdns_dotcom_helo());
    }

    /// Gannet's own header once the client was looked up (the reverse DNS check).
    #[test]
    fn gannets_header_with_a_reverse_name() {
        let named = ["from mail.example.net (out.example.net [192.0.2.10]) by mx.example.test (Gannet) with ESMTP id 1"];
        let relays = Relays::from_received(named.iter().copied());
        let relay = &relays.untrusted[0];
        assert_eq!(
            (relay.rdns.as_str(), relay.helo.as_str()),
            ("out.example.net", "mail.example.net")
        );
        assert!(!relay.no_reverse_dns);
        let unknown = ["from mail.example.net (unknown [192.0.2.12]) by mx.example.test (Gannet) with ESMTP id 2"];
        let relays = Relays::from_received(unknown.iter().copied());
        assert!(relays.untrusted[0].rdns.is_empty() && relays.untrusted[0].no_reverse_dns);
    }

    #[test]
    fn a_helo_address_that_is_not_the_clients() {
        assert!(untrusted("217.218.193.1", "", "200.168.105.180").helo_ip_mismatch());
        // Its own address, its /24, a name, or a private address: no mismatch.
        assert!(!untrusted("217.218.193.1", "", "217.218.193.1").helo_ip_mismatch());
        assert!(!untrusted("217.218.193.1", "", "217.218.193.9").helo_ip_mismatch());
        assert!(!untrusted("217.218.193.1", "", "[200.168.105.180]").helo_ip_mismatch());
        assert!(!untrusted("217.218.193.1", "", "mail.example.com").helo_ip_mismatch());
        assert!(!untrusted("217.218.193.1", "", "192.168.1.2").helo_ip_mismatch());
    }

    /// From the corpus (spam-1-00288): fetched by fetchmail, then a sendmail relay that
    /// names the client's HELO (an address literal) before its real address.
    #[test]
    fn a_fetched_message_with_a_bare_address_helo() {
        let received = [
            "from localhost (jalapeno [127.0.0.1]) by zzzzason.org (Postfix) with ESMTP id 23EB616F03 for <zzzz@localhost>; Thu, 12 Sep 2002 14:01:33 +0100 (IST)",
            "from jalapeno [127.0.0.1] by localhost with IMAP (fetchmail-5.9.0) for zzzz@localhost (single-drop); Thu, 12 Sep 2002 14:01:33 +0100 (IST)",
            "from 200.168.105.180 ([217.218.193.1]) by dogma.slashnull.org (8.11.6/8.11.6) with SMTP id g8C1c4C12333 for <webmaster@efi.ie>; Thu, 12 Sep 2002 02:38:07 +0100",
        ];
        let relays = Relays::from_received(received.iter().copied());
        let first = relays.untrusted.first().expect("an untrusted relay");
        assert_eq!(
            (first.ip.as_str(), first.helo.as_str()),
            ("217.218.193.1", "200.168.105.180"),
            "{relays:?}"
        );
        assert!(relays.helo_ip_mismatch());
        let external = relays.header("X-Spam-Relays-External").unwrap_or_default();
        assert!(
            external.starts_with("[ ip=217.218.193.1 rdns= helo=200.168.105.180 "),
            "{external}"
        );
    }

    #[test]
    fn a_big_providers_name_without_reverse_dns() {
        assert!(untrusted("171.245.226.233", "", "mail.hotmail.com").no_rdns_dotcom_helo());
        assert!(
            !untrusted("171.245.226.233", "mx.hotmail.com", "mail.hotmail.com")
                .no_rdns_dotcom_helo()
        );
        assert!(!untrusted("171.245.226.233", "", "mail.example.com").no_rdns_dotcom_helo());
        assert!(!untrusted("171.245.226.233", "", "nothotmail.com").no_rdns_dotcom_helo());
    }

    #[test]
    fn postfix_exim_qmail_and_trust() {
        let headers = [
            "from mx.example.test (localhost [127.0.0.1]) by mail.example.test (Postfix) with ESMTP id 1A2B",
            "from helo.spam.example (unknown [203.0.113.9]) by mx.example.test (Postfix) with SMTP id XYZ",
            "from host.example.org ([198.51.100.7] helo=fake.example) by relay.example.org with esmtp (Exim 4.96) id 1abc",
            "from unknown (HELO x) (192.0.2.1) by qmail.example with SMTP",
            "from nowhere by somewhere",
            "by localhost with LMTP",
        ];
        let r = Relays::from_received(headers.iter().copied());
        assert_eq!(r.trusted.len(), 1);
        assert_eq!(r.untrusted.len(), 3);
        assert_eq!(
            r.header("X-Spam-Relays-Untrusted").unwrap().split(" ] ").next().unwrap(),
            "[ ip=203.0.113.9 rdns= helo=helo.spam.example by=mx.example.test ident= envfrom= intl=0 id=XYZ auth= msa=0"
        );
        assert_eq!(r.untrusted[1].rdns, "host.example.org");
        assert_eq!(r.untrusted[1].helo, "fake.example");
        assert_eq!(r.untrusted[2].helo, "x");
        assert_eq!(r.untrusted[2].ip, "192.0.2.1");
        assert!(r
            .header("X-Spam-Relays-Trusted")
            .unwrap()
            .contains(" intl=1 "));
        // A fetcher's header restarts the chain.
        let r = Relays::from_received(
            [
                "from localhost (localhost [127.0.0.1]) by a (Postfix) with ESMTP id 1",
                "from pop.example [192.0.2.9] by localhost with POP3 (fetchmail-5.9.0)",
                "from x (y.example [192.0.2.7]) by pop.example with ESMTP id 2",
            ]
            .into_iter(),
        );
        assert!(r.trusted.is_empty());
        assert_eq!(r.untrusted.len(), 1);
        assert_eq!(r.untrusted[0].rdns, "y.example");
        // A public relay first: nothing is trusted after it.
        let r = Relays::from_received(
            [
                "from a (a.example [192.0.2.5]) by b",
                "from c (c [10.0.0.1]) by d",
            ]
            .into_iter(),
        );
        assert!(r.trusted.is_empty() && r.untrusted.len() == 2);
    }

    #[test]
    fn an_empty_from_clause_is_no_relay() {
        // Real mail (SpamAssassin corpus, 2001): nothing between "from" and "by".
        let h =
            "from by PPPa165-nas1rack6059.dialinx.net with ESMTP; Sat, 04 Aug 2001 19:10:21 -0700";
        assert_eq!(parse(h), None);
        for h in [
            "from by",
            "from  by x",
            "from by by by",
            "from (by [192.0.2.1]) by x",
        ] {
            let _ = parse(h);
        }
        let r = Relays::from_received([h, "from a (a.example [192.0.2.5]) by b"].into_iter());
        assert_eq!(r.untrusted.len(), 1);
    }

    #[test]
    fn any_text_parses_without_panicking() {
        let headers = [
            "from by PPPa165-nas1rack6059.dialinx.net with ESMTP; Sat, 04 Aug 2001 19:10:21 -0700",
            "from host.example.org ([198.51.100.7] helo=fake.example) by relay.example.org with esmtp (Exim 4.96) id 1abc (envelope-from <a@b>)",
            "from unknown (HELO x) (192.0.2.1) by qmail.example with SMTP",
            "from [IPv6:2001:db8::1] (h\u{e9}l\u{f6}.example [2001:db8::1]) by \u{20ac} with ESMTPSA id 9",
        ];
        let pieces = [
            " ", "from ", " by ", "(", ")", "[", "]", "helo=", "(helo ", " with ", " id ",
            "\u{e9}", "1.2.3.4", ":",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as usize
        };
        for h in headers {
            let chars: Vec<char> = h.chars().collect();
            for cut in 0..=chars.len() {
                let s: String = chars[..cut].iter().collect();
                let _ = parse(&s);
                let _ = parse(&chars[cut..].iter().collect::<String>());
            }
            for _ in 0..2_000 {
                let mut s: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
                for _ in 0..1 + next() % 4 {
                    let at = next() % (s.len() + 1);
                    let piece = pieces[next() % pieces.len()].to_string();
                    if next() % 2 == 0 && at < s.len() {
                        s.remove(at);
                    } else {
                        s.insert(at, piece);
                    }
                }
                let _ = parse(&s.concat());
            }
        }
    }

    /// Multi-byte characters right next to the keywords and delimiters the parser looks
    /// for: read as their ASCII counterparts would be.
    #[test]
    fn multi_byte_characters_next_to_keywords() {
        assert_eq!(parse("from é by x"), None);
        assert_eq!(parse("from é by é"), None);
        assert_eq!(
            parse("from é ([192.0.2.1] helo=é) by é with ésmtp id é; (envelope-from <é@é>)"),
            Some(Relay {
                ip: "192.0.2.1".into(),
                rdns: String::new(),
                helo: "é".into(),
                by: "é".into(),
                id: "é".into(),
                envfrom: "é@é".into(),
                auth: String::new(),
                no_reverse_dns: false,
            })
        );
        // The address ends at the first character that cannot be in one.
        assert_eq!(
            parse("from ü (é.example [2001:db8::é1]) by x").map(|r| r.ip),
            Some("2001:db8::".into())
        );
        let r = parse("from ü (é.example [2001:db8::1]é) by é€ with ESMTPSA").unwrap();
        assert_eq!(
            (
                r.ip.as_str(),
                r.rdns.as_str(),
                r.helo.as_str(),
                r.by.as_str()
            ),
            ("2001:db8::1", "é.example", "ü", "é€")
        );
        assert_eq!(r.auth, "ESMTPSA");
        let r = parse("from é (HELO ü) (é192.0.2.1é) by q").unwrap();
        assert_eq!((r.ip.as_str(), r.helo.as_str()), ("192.0.2.1", "ü"));
        assert_eq!(first_ip("é.1.2.3.4.é"), Some("1.2.3.4".into()));
    }
}
