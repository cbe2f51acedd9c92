//! DNS blocklists: is a client address listed in one of the configured zones? The
//! lookups run on their own thread (a tokio runtime with the hickory resolver); workers
//! send an address and await the answer, so a slow DNS server never blocks a worker.
//! A lookup that fails or takes longer than [`CHECK_TIMEOUT`] counts as "not listed":
//! a broken blocklist must not refuse mail.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

/// Longest a connection waits for the blocklists.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One configured list.
#[derive(Debug, Clone, PartialEq)]
pub struct List {
    pub zone: String,
    /// Refuse listed clients (554 5.7.1), or only score them.
    pub reject: bool,
    pub score: f64,
}

type Request = (IpAddr, oneshot::Sender<Option<String>>);

/// Handle to the lookup thread; cheap to clone.
#[derive(Clone)]
pub struct Dnsbl {
    lists: Arc<Vec<List>>,
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

impl Dnsbl {
    /// Starts the lookup thread if any list refuses clients; `nameservers` as for
    /// outbound delivery (empty: the system's resolver).
    pub fn start(
        lists: Vec<List>,
        nameservers: Vec<std::net::SocketAddr>,
    ) -> std::io::Result<Dnsbl> {
        let lists = Arc::new(lists);
        if !lists.iter().any(|l| l.reject) {
            return Ok(Dnsbl {
                lists,
                requests: None,
            });
        }
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let thread_lists = lists.clone();
        std::thread::Builder::new().name("dnsbl".into()).spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                tracing::error!("dnsbl runtime did not start");
                return;
            };
            runtime.block_on(async move {
                let resolver = match crate::delivery::outbound::resolver(&nameservers) {
                    Ok(r) => Arc::new(r),
                    Err(e) => {
                        tracing::error!(error = %e, "no DNS resolver: blocklists not checked");
                        return;
                    }
                };
                while let Some((ip, answer)) = rx.recv().await {
                    let resolver = resolver.clone();
                    let lists = thread_lists.clone();
                    tokio::spawn(async move {
                        let mut listed = None;
                        for list in lists.iter().filter(|l| l.reject) {
                            let name = query_name(ip, &list.zone);
                            if let Ok(found) = resolver.ipv4_lookup(name.as_str()).await {
                                // Listings answer with 127.0.0.x.
                                if found.answers().iter().any(|r| {
                                    matches!(&r.data, hickory_resolver::proto::rr::RData::A(a) if a.0.octets()[0] == 127)
                                }) {
                                    listed = Some(list.zone.clone());
                                    break;
                                }
                            }
                        }
                        let _ = answer.send(listed);
                    });
                }
            });
        })?;
        Ok(Dnsbl {
            lists,
            requests: Some(tx),
        })
    }

    /// No lists: nothing is ever listed.
    pub fn none() -> Dnsbl {
        Dnsbl {
            lists: Arc::new(Vec::new()),
            requests: None,
        }
    }

    pub fn lists(&self) -> &[List] {
        &self.lists
    }

    /// The first refusing list that lists `ip`, if any.
    pub async fn rejecting_list(&self, ip: IpAddr) -> Option<String> {
        let requests = self.requests.as_ref()?;
        let (tx, rx) = oneshot::channel();
        requests.send((ip, tx)).ok()?;
        tokio::time::timeout(CHECK_TIMEOUT, rx).await.ok()?.ok()?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
