//! The checks on incoming mail that ask DNS: blocklists (is the client listed in one of
//! the configured zones?) and SPF (RFC 7208, through `mail-auth`: may this address send
//! for the MAIL FROM domain?). The lookups run on their own thread (a tokio runtime with
//! the hickory resolver); workers send a request and await the answer, so a slow DNS
//! server never blocks a worker. A check that fails or takes longer than
//! [`CHECK_TIMEOUT`] decides nothing: a broken blocklist never refuses mail, a broken SPF
//! lookup is a `temperror`, a reverse lookup that fails names the client `unknown`.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::{mpsc, oneshot};

/// Longest a connection waits for the blocklists.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the reverse DNS said of the client, as the `Received:` header records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ReverseDns {
    /// Not asked (a trusted, private or loopback client): only the address is written.
    #[default]
    NotLookedUp,
    /// Asked, and no name both points back from the address and resolves to it:
    /// written `unknown`, as Postfix and Sendmail do, which spam filters read.
    Unknown,
    /// A name whose PTR and forward records agree (forward-confirmed).
    Verified(String),
}

/// One configured list.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    pub zone: String,
    /// Refuse listed clients (554 5.7.1), or only score them.
    pub reject: bool,
    pub score: f64,
    /// Answers that mean "listed"; empty: any 127.0.0.0/8 address.
    pub answers: Vec<std::net::Ipv4Addr>,
}

/// What SPF says of a sender (RFC 7208 section 2.6), and the header that records it.
#[derive(Debug, Clone, PartialEq)]
pub struct SpfVerdict {
    /// `pass`, `fail`, `softfail`, `neutral`, `none`, `temperror` or `permerror`.
    pub result: &'static str,
    /// The `Received-SPF:` line, CRLF included.
    pub header: String,
}

impl SpfVerdict {
    /// SpamAssassin's rule name for the result (`SPF_PASS`, `SPF_FAIL`, ...).
    pub fn rule(&self) -> String {
        format!("SPF_{}", self.result.to_ascii_uppercase())
    }
}

/// Who is sending, for SPF.
#[derive(Debug, Clone)]
pub struct SpfQuery {
    pub ip: IpAddr,
    pub helo: String,
    /// The reverse-path (empty for the null sender: the HELO identity is checked).
    pub mail_from: String,
    /// This server's name, for the header.
    pub receiver: String,
}

enum Request {
    Listed(IpAddr, oneshot::Sender<Option<String>>),
    Scored(Vec<IpAddr>, oneshot::Sender<Vec<(String, f64)>>),
    Spf(SpfQuery, oneshot::Sender<SpfVerdict>),
    Reverse(IpAddr, oneshot::Sender<Option<String>>),
}

/// Handle to the lookup thread; cheap to clone.
#[derive(Clone)]
pub struct DnsChecks {
    /// The configured lists; the admin console may replace them while the server runs.
    lists: Arc<ArcSwap<Vec<List>>>,
    /// `spf.reject_fail`: refuse mail whose SPF result is `fail`.
    pub reject_spf_fail: bool,
    requests: Option<mpsc::UnboundedSender<Request>>,
}

/// The name to look up for `ip` in `zone`: the address reversed (nibbles for IPv6).
pub fn query_name(ip: IpAddr, zone: &str) -> String {
    let zone = zone.trim_end_matches('.');
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.{zone}.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut name = String::new();
            for byte in v6.octets().iter().rev() {
                name.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            format!("{name}{zone}.")
        }
    }
}

impl DnsChecks {
    /// Starts the lookup thread; `nameservers` as for outbound delivery (empty: the
    /// system's resolver).
    pub fn start(
        lists: Vec<List>,
        nameservers: Vec<std::net::SocketAddr>,
        reject_spf_fail: bool,
    ) -> std::io::Result<DnsChecks> {
        let lists = Arc::new(ArcSwap::from_pointee(lists));
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let thread_lists = lists.clone();
        crate::process::spawn_service("dns-checks", move || async move {
            let resolver = match crate::dns::resolver(&nameservers) {
                Ok(r) => Arc::new(mail_auth::MessageAuthenticator(r)),
                Err(e) => {
                    tracing::error!(error = %e, "no DNS resolver: blocklists and SPF not checked");
                    return;
                }
            };
            while let Some(request) = rx.recv().await {
                let resolver = resolver.clone();
                let lists = thread_lists.load_full();
                let (ip, answer) = match request {
                    Request::Listed(ip, answer) => (ip, answer),
                    Request::Scored(ips, answer) => {
                        tokio::spawn(async move {
                            let mut hits = Vec::new();
                            for list in lists.iter().filter(|l| !l.reject) {
                                for &ip in &ips {
                                    if listed(&resolver, ip, list).await {
                                        hits.push((list.zone.clone(), list.score));
                                        break;
                                    }
                                }
                            }
                            let _ = answer.send(hits);
                        });
                        continue;
                    }
                    Request::Spf(query, answer) => {
                        tokio::spawn(async move {
                            let _ = answer.send(spf(&resolver, &query).await);
                        });
                        continue;
                    }
                    Request::Reverse(ip, answer) => {
                        tokio::spawn(async move {
                            let _ = answer.send(confirmed_name(&resolver, ip).await);
                        });
                        continue;
                    }
                };
                tokio::spawn(async move {
                    let mut found = None;
                    for list in lists.iter().filter(|l| l.reject) {
                        if listed(&resolver, ip, list).await {
                            found = Some(list.zone.clone());
                            break;
                        }
                    }
                    let _ = answer.send(found);
                });
            }
        })?;
        Ok(DnsChecks {
            lists,
            reject_spf_fail,
            requests: Some(tx),
        })
    }

    /// No lists and no lookups (SPF answers `temperror`): for tests and for a site with
    /// no DNS checks configured.
    pub fn off() -> DnsChecks {
        DnsChecks {
            lists: Arc::new(ArcSwap::from_pointee(Vec::new())),
            reject_spf_fail: false,
            requests: None,
        }
    }

    /// Whether the checks run (a resolver was started): the spam rules then score in
    /// the score sets with network tests.
    pub fn enabled(&self) -> bool {
        self.requests.is_some()
    }

    pub fn lists(&self) -> Arc<Vec<List>> {
        self.lists.load_full()
    }

    /// Replaces the lists: checks that start from now on use the new ones.
    pub fn set_lists(&self, lists: Vec<List>) {
        self.lists.store(Arc::new(lists));
    }

    /// The first refusing list that lists `ip`, if any.
    pub async fn rejecting_list(&self, ip: IpAddr) -> Option<String> {
        if !self.lists.load().iter().any(|l| l.reject) {
            return None;
        }
        let requests = self.requests.as_ref()?;
        let (tx, rx) = oneshot::channel();
        requests.send(Request::Listed(ip, tx)).ok()?;
        tokio::time::timeout(CHECK_TIMEOUT, rx).await.ok()?.ok()?
    }

    /// Whether any list scores (rather than refuses).
    pub fn has_scoring_lists(&self) -> bool {
        self.lists.load().iter().any(|l| !l.reject)
    }

    /// The scoring lists that list any of `ips`, with their scores.
    pub async fn scored_listings(&self, ips: Vec<IpAddr>) -> Vec<(String, f64)> {
        if ips.is_empty() || !self.has_scoring_lists() {
            return Vec::new();
        }
        let Some(requests) = self.requests.as_ref() else {
            return Vec::new();
        };
        let (tx, rx) = oneshot::channel();
        if requests.send(Request::Scored(ips, tx)).is_err() {
            return Vec::new();
        }
        match tokio::time::timeout(CHECK_TIMEOUT, rx).await {
            Ok(Ok(hits)) => hits,
            _ => Vec::new(),
        }
    }

    /// The rule name of a scoring list's hit: `RCVD_IN_` and the zone in capitals.
    pub fn rule_name(zone: &str) -> String {
        let zone: String = zone
            .trim_end_matches('.')
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        format!("RCVD_IN_{zone}")
    }

    /// What the reverse DNS says of a client on the MX port: its forward-confirmed
    /// name, or `unknown`. Private, loopback and trusted clients are not looked up
    /// (their names say nothing to a spam filter, and a LAN's resolver may not answer).
    pub async fn reverse_dns(&self, ip: IpAddr) -> ReverseDns {
        if crate::mime::relays::is_private(ip) {
            return ReverseDns::NotLookedUp;
        }
        let Some(requests) = self.requests.as_ref() else {
            return ReverseDns::NotLookedUp;
        };
        let (tx, rx) = oneshot::channel();
        if requests.send(Request::Reverse(ip, tx)).is_err() {
            return ReverseDns::NotLookedUp;
        }
        match tokio::time::timeout(CHECK_TIMEOUT, rx).await {
            Ok(Ok(Some(name))) => ReverseDns::Verified(name),
            _ => ReverseDns::Unknown,
        }
    }

    /// The SPF verdict on `query`; `temperror` if it cannot be had in time.
    pub async fn spf(&self, query: SpfQuery) -> SpfVerdict {
        let fallback = verdict("temperror", &query, "no answer in time");
        let Some(requests) = self.requests.as_ref() else {
            return fallback;
        };
        let (tx, rx) = oneshot::channel();
        if requests.send(Request::Spf(query, tx)).is_err() {
            return fallback;
        }
        match tokio::time::timeout(CHECK_TIMEOUT, rx).await {
            Ok(Ok(v)) => v,
            _ => fallback,
        }
    }
}

/// Whether `list` lists `ip`: an answer among its `answers`, or in 127.0.0.0/8.
async fn listed(resolver: &mail_auth::MessageAuthenticator, ip: IpAddr, list: &List) -> bool {
    let name = query_name(ip, &list.zone);
    let counts = |a: std::net::Ipv4Addr| {
        if list.answers.is_empty() {
            a.octets()[0] == 127
        } else {
            list.answers.contains(&a)
        }
    };
    match resolver.resolver().ipv4_lookup(name.as_str()).await {
        Ok(found) => found
            .answers()
            .iter()
            .any(|r| matches!(&r.data, hickory_resolver::proto::rr::RData::A(a) if counts(a.0))),
        Err(_) => false,
    }
}

/// The first name `ip`'s PTR records give whose address records include `ip` again
/// (forward-confirmed, as Postfix requires before it names a client).
async fn confirmed_name(resolver: &mail_auth::MessageAuthenticator, ip: IpAddr) -> Option<String> {
    use hickory_resolver::proto::rr::RData;
    let zone = if ip.is_ipv4() {
        "in-addr.arpa"
    } else {
        "ip6.arpa"
    };
    let pointers = resolver
        .resolver()
        .reverse_lookup(query_name(ip, zone).as_str())
        .await
        .ok()?;
    let names: Vec<String> = pointers
        .answers()
        .iter()
        .filter_map(|r| match &r.data {
            RData::PTR(name) => Some(name.to_ascii().trim_end_matches('.').to_ascii_lowercase()),
            _ => None,
        })
        .filter(|name| is_host_name(name))
        // A host with hundreds of names is not asked about each.
        .take(MAX_NAMES_CONFIRMED)
        .collect();
    for name in names {
        let Ok(addresses) = resolver.resolver().lookup_ip(format!("{name}.")).await else {
            continue;
        };
        if addresses.iter().any(|a| a == ip) {
            return Some(name);
        }
    }
    None
}

/// How many of an address's PTR names are looked up forward.
const MAX_NAMES_CONFIRMED: usize = 4;

/// A name fit for a header: letters, digits, hyphens and underscores between dots.
fn is_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The SPF check: the MAIL FROM identity, or the HELO one for the null sender.
async fn spf(resolver: &mail_auth::MessageAuthenticator, q: &SpfQuery) -> SpfVerdict {
    use mail_auth::spf::verify::SpfParameters;
    use mail_auth::SpfResult;
    let sender = if q.mail_from.is_empty() {
        format!("postmaster@{}", q.helo)
    } else {
        q.mail_from.clone()
    };
    let output = resolver
        .verify_spf(SpfParameters::verify_mail_from(
            q.ip,
            &q.helo,
            &q.receiver,
            &sender,
        ))
        .await;
    let result = match output.result() {
        SpfResult::Pass => "pass",
        SpfResult::Fail => "fail",
        SpfResult::SoftFail => "softfail",
        SpfResult::Neutral => "neutral",
        SpfResult::TempError => "temperror",
        SpfResult::PermError => "permerror",
        SpfResult::None => "none",
    };
    let domain = sender.rsplit_once('@').map_or("", |(_, d)| d).to_string();
    let why = match result {
        "pass" => format!("domain of {domain} designates {} as permitted sender", q.ip),
        "fail" | "softfail" => format!(
            "domain of {domain} does not designate {} as permitted sender",
            q.ip
        ),
        "none" => format!("domain of {domain} has no SPF record"),
        other => format!("{other} evaluating the SPF record of {domain}"),
    };
    verdict(result, q, &why)
}

fn verdict(result: &'static str, q: &SpfQuery, why: &str) -> SpfVerdict {
    // Header text comes from the client: keep it to one line of printable ASCII.
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' {
                    c
                } else {
                    '?'
                }
            })
            .collect()
    };
    SpfVerdict {
        result,
        header: format!(
            "Received-SPF: {result} ({}: {}) client-ip={}; envelope-from=<{}>; helo={};\r\n",
            clean(&q.receiver),
            clean(why),
            q.ip,
            clean(&q.mail_from),
            clean(&q.helo)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_host_names_are_written() {
        assert!(is_host_name("mail-out_1.example.net"));
        assert!(!is_host_name("evil) x"));
        assert!(!is_host_name("a..b"));
        assert!(!is_host_name(""));
    }

    #[test]
    fn reversed_names() {
        assert_eq!(
            query_name("192.0.2.99".parse().unwrap(), "bl.example."),
            "99.2.0.192.bl.example."
        );
        assert!(
            query_name("2001:db8::1".parse().unwrap(), "bl.example").starts_with(
                "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.example."
            )
        );
    }
}
