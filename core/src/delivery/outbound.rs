//! The outbound queue runner: on its own thread (a tokio runtime, as the design's
//! `control` work), it takes the queue entries that are due, resolves where each
//! recipient's domain takes mail (the smart host if one is configured, else MX records
//! by preference, else the domain's own address), speaks SMTP through the sans-IO
//! [`Client`], and writes what became of every recipient back in one batch: delivered,
//! bounced (with a DSN to the sender) or queued again on the retry schedule until
//! `max_queue_age`. Every network step has a timeout; a DNS failure, a refused
//! connection, a 4xx or a dropped session only costs a retry.
//!
//! A message stays in the queue until the batch that records its outcome is durable,
//! so a crash during delivery can deliver it twice, never zero times.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_resolver::proto::rr::RData;
use hickory_resolver::TokioResolver;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::dsn::{self, Failure};
use super::local::{delivery_changes, placements};
use super::routing::{ForwardTarget, SharedDirectory};
use crate::clock::unix_now;
use crate::dns::resolver;
use crate::smtp::client::{dot_stuff, Action, Client, ClientConfig, Negotiated, RcptOutcome};
use crate::smtp::{Envelope, RcptRoute, Recipient};
use crate::store::queue::{self, QueuedMessage, RecipientStatus};
use crate::store::{mail, Changes, Store, StoreError};

/// How the runner delivers.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Announced in EHLO and in DSNs.
    pub hostname: String,
    /// Every message goes here when set ("host", port).
    pub relay_host: Option<(String, u16)>,
    /// AUTH PLAIN for the smart host (user, password).
    pub relay_auth: Option<(String, String)>,
    /// The CA file that the smart host's certificate must chain to when it gets
    /// credentials (empty: the system's roots).
    pub relay_ca: String,
    /// Port of MX delivery (25; tests use high ports).
    pub remote_port: u16,
    pub retry_schedule: Vec<Duration>,
    pub max_queue_age: Duration,
    /// Empty: the system's resolver configuration.
    pub nameservers: Vec<SocketAddr>,
    pub connect_timeout: Duration,
    /// For each reply of the server (RFC 5321 suggests minutes; the data phase's final
    /// reply can take long on a loaded server).
    pub reply_timeout: Duration,
    /// How often the queue is looked at.
    pub poll_interval: Duration,
    /// Messages delivered at the same time.
    pub concurrency: usize,
    /// Messages delivered at the same time to one destination (a smart host, a
    /// customer's server, a domain's MX hosts): what one server is asked to bear.
    pub destination_concurrency: usize,
    /// Record each attempt in the message trace (`trace.enabled`).
    pub trace: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        OutboundConfig {
            hostname: "localhost".into(),
            relay_host: None,
            relay_auth: None,
            relay_ca: String::new(),
            remote_port: 25,
            retry_schedule: vec![Duration::from_secs(300)],
            max_queue_age: Duration::from_secs(5 * 86400),
            nameservers: Vec::new(),
            connect_timeout: Duration::from_secs(30),
            reply_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_secs(1),
            concurrency: 64,
            destination_concurrency: 20,
            trace: true,
        }
    }
}

/// The trace of one delivery attempt: who got it, who is still waiting and why, who
/// was returned to the sender.
fn trace_attempt(
    changes: &mut Changes,
    message: u64,
    now: i64,
    delivered: Vec<String>,
    deferred: Vec<String>,
    last_error: Option<&str>,
    failures: &[Failure],
) {
    use crate::store::trace::{self, Event, EventKind};
    let mut record = |kind| {
        trace::record(
            changes,
            &Event {
                at: now,
                message,
                kind,
            },
        )
    };
    if !delivered.is_empty() {
        record(EventKind::Attempt {
            recipients: delivered,
            answer: "accepted".into(),
            delivered: true,
        });
    }
    if !deferred.is_empty() {
        record(EventKind::Attempt {
            recipients: deferred,
            answer: trace::short(last_error.unwrap_or("deferred")),
            delivered: false,
        });
    }
    if let Some(first) = failures.first() {
        record(EventKind::Bounced {
            recipients: failures.iter().map(|f| f.recipient.clone()).collect(),
            why: trace::short(&first.diagnostic),
        });
    }
}

struct Runner {
    store: Store,
    directory: SharedDirectory,
    config: OutboundConfig,
    resolver: TokioResolver,
    tls: tokio_rustls::TlsConnector,
    /// For the smart host that gets credentials: a verified connection, or why none can
    /// be made (every such delivery is deferred with that reason).
    relay_tls: Result<tokio_rustls::TlsConnector, String>,
    in_flight: RefCell<HashSet<u64>>,
    /// Sessions left open for the next message, by server address.
    idle: RefCell<HashMap<SocketAddr, Vec<Idle>>>,
    /// Deliveries in flight per destination (of a message's first recipient).
    per_destination: RefCell<HashMap<Destination, usize>>,
    /// Signalled when a delivery ends.
    finished: tokio::sync::Notify,
    /// Signalled when mail is queued.
    wake: Wake,
}

/// The verified TLS connector for a smart host that gets credentials (unused otherwise).
fn relay_connector(config: &OutboundConfig) -> Result<tokio_rustls::TlsConnector, String> {
    if config.relay_auth.is_none() {
        return Err("no credentials configured".into());
    }
    super::tls::verified_client_config(&config.relay_ca)
        .map(tokio_rustls::TlsConnector::from)
        .map_err(|e| {
            tracing::error!(error = %e, "smart host: no trusted CA: mail to it stays queued");
            e.to_string()
        })
}

/// Signalled by whoever queues mail, so that the runner looks at once.
pub type Wake = Arc<tokio::sync::Notify>;

/// Starts the runner on its own thread; `wake` is signalled by whoever queues mail.
pub fn spawn(
    store: Store,
    directory: SharedDirectory,
    config: OutboundConfig,
    wake: Wake,
) -> std::io::Result<()> {
    crate::process::spawn_service("delivery", move || async move {
        let resolver = match resolver(&config.nameservers) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(error = %e, "no DNS resolver: outbound delivery stopped");
                return;
            }
        };
        let tls = match super::tls::opportunistic_client_config() {
            Ok(config) => tokio_rustls::TlsConnector::from(config),
            Err(e) => {
                tracing::error!(error = %e, "no TLS client: outbound delivery stopped");
                return;
            }
        };
        let runner = Rc::new(Runner {
            store,
            directory,
            tls,
            relay_tls: relay_connector(&config),
            resolver,
            config,
            in_flight: RefCell::new(HashSet::new()),
            per_destination: RefCell::new(HashMap::new()),
            idle: RefCell::new(HashMap::new()),
            finished: tokio::sync::Notify::new(),
            wake,
        });
        runner.run().await;
    })?;
    Ok(())
}

/// Queue ids of DSNs: the top byte of the worker field is reserved for this thread.
fn next_dsn_id(now: i64) -> u64 {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    (now as u64) << 32 | 0xff << 24 | u64::from(seq & 0xff_ffff)
}

/// How long a session may wait for the next message before it is closed.
const IDLE_LIMIT: Duration = Duration::from_secs(5);

/// A session left open after a delivered message.
struct Idle {
    conn: Conn,
    negotiated: Negotiated,
    since: Instant,
}

/// How a session begins: a new connection, or a kept one.
enum Start {
    Fresh(TcpStream),
    Reuse(Idle),
}

/// The message a session carries.
struct Outgoing<'a> {
    destination: &'a Destination,
    reverse_path: &'a str,
    recipients: &'a [String],
    body: &'a [u8],
}

/// Where a group of recipients goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Destination {
    /// `delivery.relay_host`.
    SmartHost,
    /// A backup-MX primary or scan-relay target, "host[:port]".
    Host(String),
    /// The domain's MX hosts (without this appliance, for a backup MX).
    Mx { domain: String, exclude_self: bool },
}

/// Bytes on the wire, plain or after STARTTLS.
enum Conn {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Conn {
    async fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf).await,
            Conn::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
            Conn::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }
}

impl Runner {
    async fn run(self: Rc<Self>) {
        loop {
            self.sweep_idle();
            self.start_due();
            // Look again when a delivery ends (a slot is free, a retry may be due
            // sooner) or after the poll interval (new mail, retries coming due).
            tokio::select! {
                _ = self.finished.notified() => {}
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.config.poll_interval) => {}
            }
        }
    }

    /// Starts deliveries of due messages, up to the concurrency limit.
    fn start_due(self: &Rc<Self>) {
        let free = self
            .config
            .concurrency
            .saturating_sub(self.in_flight.borrow().len());
        if free == 0 {
            return;
        }
        let due = match queue::due(
            &self.store,
            unix_now(),
            free + self.in_flight.borrow().len(),
        ) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the queue failed");
                return;
            }
        };
        for message in due {
            if self.in_flight.borrow().len() >= self.config.concurrency {
                break;
            }
            if self.in_flight.borrow().contains(&message.id) {
                continue;
            }
            // A message whose destination is busy waits for a later round.
            let Some(first) = message
                .recipients
                .iter()
                .find(|r| r.status == RecipientStatus::Queued)
            else {
                continue;
            };
            let destination = self.destination_of(&first.address);
            let busy = self
                .per_destination
                .borrow()
                .get(&destination)
                .copied()
                .unwrap_or(0);
            if busy >= self.config.destination_concurrency {
                continue;
            }
            *self
                .per_destination
                .borrow_mut()
                .entry(destination.clone())
                .or_default() += 1;
            self.in_flight.borrow_mut().insert(message.id);
            let runner = self.clone();
            tokio::task::spawn_local(async move {
                let id = message.id;
                runner.deliver(message).await;
                runner.in_flight.borrow_mut().remove(&id);
                if let Some(n) = runner.per_destination.borrow_mut().get_mut(&destination) {
                    *n = n.saturating_sub(1);
                }
                runner.finished.notify_one();
            });
        }
    }

    async fn deliver(&self, mut message: QueuedMessage) {
        let blob = match mail::blob(&self.store, &message.blob) {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::error!(
                    id = format_args!("{:016x}", message.id),
                    "queued message has no blob; dropped"
                );
                let _ = self.store.submit(queue::remove(&message)).await;
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "reading a queued message failed");
                return;
            }
        };
        let body = blob.get(message.skip as usize..).unwrap_or(&[]);
        // Recipients still to do, by destination: one SMTP session per destination.
        let mut groups: BTreeMap<Destination, Vec<usize>> = BTreeMap::new();
        for (i, r) in message.recipients.iter().enumerate() {
            if r.status == RecipientStatus::Queued {
                groups
                    .entry(self.destination_of(&r.address))
                    .or_default()
                    .push(i);
            }
        }
        let mut outcomes: Vec<(usize, RcptOutcome)> = Vec::new();
        if message.created == queue::RETURNED_BY_ADMIN {
            // `gannet queue bounce`: no delivery, a DSN for everyone still queued.
            let returned =
                RcptOutcome::Failed("550 5.0.0 returned to the sender by the postmaster".into());
            for indices in groups.into_values() {
                outcomes.extend(indices.into_iter().map(|i| (i, returned.clone())));
            }
            groups = BTreeMap::new();
        }
        for (destination, indices) in groups {
            let addresses: Vec<String> = indices
                .iter()
                .map(|&i| message.recipients[i].address.clone())
                .collect();
            let results = self
                .deliver_to(&destination, &message.reverse_path, &addresses, body)
                .await;
            outcomes.extend(indices.into_iter().zip(results));
        }
        let id = message.id;
        let changes = self.record(&mut message, outcomes, &blob);
        match self.store.submit(changes).await {
            Ok(Ok(_)) => {}
            Ok(Err(StoreError::Changed(_))) => tracing::info!(
                id = format_args!("{id:016x}"),
                "queue entry changed by an admin during the attempt; their change stands"
            ),
            Ok(Err(e)) => {
                tracing::error!(id = format_args!("{id:016x}"), error = %e, "recording a delivery failed")
            }
            Err(_) => tracing::error!("the commit thread is gone"),
        }
    }

    /// Where mail for `address` goes.
    fn destination_of(&self, address: &str) -> Destination {
        let domain = address
            .rsplit_once('@')
            .map_or("", |(_, d)| d)
            .to_ascii_lowercase();
        match (
            self.directory.load().forward_target(&domain),
            &self.config.relay_host,
        ) {
            (Some(ForwardTarget::Host(host)), _) => Destination::Host(host),
            (Some(ForwardTarget::OtherMx), _) => Destination::Mx {
                domain,
                exclude_self: true,
            },
            (None, Some(_)) => Destination::SmartHost,
            (None, None) => Destination::Mx {
                domain,
                exclude_self: false,
            },
        }
    }

    /// Where `destination` takes mail: the smart host, a customer's server, or MX hosts
    /// by preference (each host's addresses in turn; a backup MX skips itself), or the
    /// domain's own addresses if it has no MX.
    async fn targets(&self, destination: &Destination) -> Result<Vec<SocketAddr>, String> {
        let (domain, exclude_self) = match destination {
            Destination::SmartHost => {
                let (host, port) = self.config.relay_host.as_ref().ok_or("no smart host")?;
                return self.addresses(host, *port).await;
            }
            Destination::Host(target) => {
                let (host, port) = match target.rsplit_once(':') {
                    Some((h, p)) if p.parse::<u16>().is_ok() => (h, p.parse().unwrap_or(25)),
                    _ => (target.as_str(), 25),
                };
                return self.addresses(host, port).await;
            }
            Destination::Mx {
                domain,
                exclude_self,
            } => (domain, *exclude_self),
        };
        let port = self.config.remote_port;
        let fqdn = format!("{}.", domain.trim_end_matches('.'));
        let is_self = |host: &str| {
            exclude_self
                && host
                    .trim_end_matches('.')
                    .eq_ignore_ascii_case(self.config.hostname.trim_end_matches('.'))
        };
        match self.resolver.mx_lookup(fqdn.as_str()).await {
            Ok(lookup) => {
                let mut mx: Vec<(u16, String)> = lookup
                    .answers()
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::MX(m) => Some((m.preference, m.exchange.to_ascii())),
                        _ => None,
                    })
                    .filter(|(_, host)| !is_self(host))
                    .collect();
                mx.sort();
                if mx.is_empty() {
                    return self.addresses(&fqdn, port).await;
                }
                let mut out = Vec::new();
                let mut last_error = None;
                for (_, host) in mx {
                    match self.addresses(&host, port).await {
                        Ok(a) => out.extend(a),
                        Err(e) => last_error = Some(e),
                    }
                }
                if out.is_empty() {
                    return Err(last_error.unwrap_or_else(|| "no address for the MX hosts".into()));
                }
                Ok(out)
            }
            Err(e) if e.is_no_records_found() => self.addresses(&fqdn, port).await,
            Err(e) => Err(format!("DNS: MX of {domain}: {e}")),
        }
    }

    async fn addresses(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, String> {
        if let Ok(ip) = host.trim_matches(['[', ']']).parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let lookup = self
            .resolver
            .lookup_ip(host)
            .await
            .map_err(|e| format!("DNS: address of {host}: {e}"))?;
        Ok(lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect())
    }

    /// Delivers to one destination, trying its servers in order until one gives
    /// answers about the recipients.
    async fn deliver_to(
        &self,
        destination: &Destination,
        reverse_path: &str,
        recipients: &[String],
        body: &[u8],
    ) -> Vec<RcptOutcome> {
        let deferred = |why: String| vec![RcptOutcome::Deferred(why); recipients.len()];
        let targets = match self.targets(destination).await {
            Ok(t) if !t.is_empty() => t,
            Ok(_) => return deferred(format!("no address for {destination:?}")),
            Err(e) => return deferred(e),
        };
        let message = Outgoing {
            destination,
            reverse_path,
            recipients,
            body,
        };
        let mut last_error = String::new();
        for target in targets {
            // A session an earlier message left open first; if the server has closed it
            // meanwhile, a new one.
            if let Some(idle) = self.take_idle(target) {
                let (outcomes, answered) = self.session(Start::Reuse(idle), target, &message).await;
                if answered {
                    return outcomes;
                }
            }
            let stream =
                match tokio::time::timeout(self.config.connect_timeout, TcpStream::connect(target))
                    .await
                {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        last_error = format!("connect to {target}: {e}");
                        continue;
                    }
                    Err(_) => {
                        last_error = format!("connect to {target}: timed out");
                        continue;
                    }
                };
            let _ = stream.set_nodelay(true);
            let (outcomes, answered) = self.session(Start::Fresh(stream), target, &message).await;
            if answered {
                return outcomes;
            }
            // The server said nothing about the recipients (refused us, broke off):
            // the next one may do better.
            last_error = match outcomes.first() {
                Some(RcptOutcome::Deferred(e) | RcptOutcome::Failed(e)) => format!("{target}: {e}"),
                _ => format!("{target}: no answer"),
            };
        }
        deferred(last_error)
    }

    /// An open session to `target` left by an earlier message, if one is fresh enough.
    fn take_idle(&self, target: SocketAddr) -> Option<Idle> {
        let mut pool = self.idle.borrow_mut();
        let list = pool.get_mut(&target)?;
        while let Some(idle) = list.pop() {
            if idle.since.elapsed() < IDLE_LIMIT {
                return Some(idle);
            }
        }
        None
    }

    /// Closes the sessions that have waited too long for a next message.
    fn sweep_idle(&self) {
        self.idle.borrow_mut().retain(|_, list| {
            list.retain(|idle| idle.since.elapsed() < IDLE_LIMIT);
            !list.is_empty()
        });
    }

    /// One SMTP session (or the next transaction of a kept one); the outcomes, and
    /// whether the server answered about the recipients (as opposed to failing the
    /// session as a whole). A session that delivered is kept for the next message.
    async fn session(
        &self,
        start: Start,
        target: SocketAddr,
        message: &Outgoing<'_>,
    ) -> (Vec<RcptOutcome>, bool) {
        let config = ClientConfig {
            helo: self.config.hostname.clone(),
            tls_available: true,
            // Credentials go to the smart host only, never to an MX.
            auth: self
                .config
                .relay_auth
                .clone()
                .filter(|_| *message.destination == Destination::SmartHost),
            keep_open: true,
        };
        let size = message.body.len() as u64;
        let body_8bit = message.body.iter().any(|b| *b >= 0x80);
        let recipients = message.recipients.to_vec();
        let (mut client, mut conn, first): (Client, Conn, Vec<Action>) = match start {
            Start::Fresh(stream) => (
                Client::new(config, message.reverse_path, recipients, size, body_8bit),
                Conn::Plain(stream),
                Vec::new(),
            ),
            Start::Reuse(idle) => {
                let (client, actions) = Client::reuse(
                    config,
                    idle.negotiated,
                    message.reverse_path,
                    recipients,
                    size,
                    body_8bit,
                );
                (client, idle.conn, actions)
            }
        };
        let mut actions: VecDeque<Action> = first.into();
        let mut kept = false;
        let mut buf = vec![0u8; 8192];
        let why = loop {
            let mut failed = None;
            while let Some(action) = actions.pop_front() {
                let result = match action {
                    Action::Send(bytes) => {
                        write(&mut conn, &bytes, self.config.reply_timeout).await
                    }
                    Action::SendMessage => {
                        write(
                            &mut conn,
                            &dot_stuff(message.body),
                            self.config.reply_timeout,
                        )
                        .await
                    }
                    Action::StartTls => match self.start_tls(conn, message.destination).await {
                        Ok(c) => {
                            conn = c;
                            actions.extend(client.tls_established());
                            Ok(())
                        }
                        Err(e) => {
                            // The connection is gone with the failed handshake.
                            let answered = client.answered();
                            return (client.finish(&format!("{target}: TLS: {e}")), answered);
                        }
                    },
                    Action::Keep => {
                        kept = true;
                        Ok(())
                    }
                    Action::Close => Ok(()),
                };
                if let Err(e) = result {
                    failed = Some(format!("{target}: {e}"));
                    break;
                }
            }
            if let Some(e) = failed {
                break e;
            }
            if client.is_done() {
                break String::new();
            }
            let n = match tokio::time::timeout(self.config.reply_timeout, conn.read(&mut buf)).await
            {
                Ok(Ok(0)) => break format!("{target}: connection closed by the server"),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => break format!("{target}: {e}"),
                Err(_) => break format!("{target}: timed out waiting for a reply"),
            };
            actions.extend(client.feed(&buf[..n]));
        };
        if kept {
            let mut pool = self.idle.borrow_mut();
            let list = pool.entry(target).or_default();
            if list.len() < self.config.destination_concurrency {
                list.push(Idle {
                    conn,
                    negotiated: client.negotiated(),
                    since: Instant::now(),
                });
            }
        }
        let answered = client.answered();
        (client.finish(&why), answered)
    }

    /// The STARTTLS handshake. Opportunistic for every server but a smart host that gets
    /// credentials: that one must present a certificate valid for its configured name.
    async fn start_tls(&self, conn: Conn, destination: &Destination) -> Result<Conn, String> {
        let Conn::Plain(stream) = conn else {
            return Err("already encrypted".into());
        };
        let verified = *destination == Destination::SmartHost && self.config.relay_auth.is_some();
        let (connector, name) = if verified {
            let connector = self.relay_tls.as_ref().map_err(Clone::clone)?;
            let (host, _) = self.config.relay_host.as_ref().ok_or("no smart host")?;
            let name = rustls::pki_types::ServerName::try_from(host.clone())
                .map_err(|e| format!("smart host name {host}: {e}"))?;
            (connector, name)
        } else {
            // Any name will do: the certificate is not checked against it.
            let name = rustls::pki_types::ServerName::try_from(self.config.hostname.clone())
                .or_else(|_| rustls::pki_types::ServerName::try_from("localhost".to_string()))
                .map_err(|e| e.to_string())?;
            (&self.tls, name)
        };
        match tokio::time::timeout(self.config.reply_timeout, connector.connect(name, stream)).await
        {
            Ok(Ok(s)) => Ok(Conn::Tls(Box::new(s))),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("handshake timed out".into()),
        }
    }

    /// The changes that record a delivery run: recipient statuses, the entry queued
    /// again or removed, and a DSN for the recipients that failed for good.
    fn record(
        &self,
        message: &mut QueuedMessage,
        outcomes: Vec<(usize, RcptOutcome)>,
        blob: &[u8],
    ) -> Changes {
        let now = unix_now();
        let mut failures = Vec::new();
        let mut last_error = None;
        let (mut delivered, mut deferred) = (Vec::new(), Vec::new());
        for (i, outcome) in outcomes {
            let r = &mut message.recipients[i];
            if self.config.trace {
                match &outcome {
                    RcptOutcome::Delivered => delivered.push(r.address.clone()),
                    RcptOutcome::Deferred(_) => deferred.push(r.address.clone()),
                    RcptOutcome::Failed(_) => {}
                }
            }
            match outcome {
                RcptOutcome::Delivered => r.status = RecipientStatus::Delivered,
                RcptOutcome::Failed(e) => {
                    r.status = RecipientStatus::Bounced;
                    failures.push(Failure {
                        recipient: r.address.clone(),
                        diagnostic: e,
                    });
                }
                RcptOutcome::Deferred(e) => last_error = Some(e),
            }
        }
        let expired = now - message.created >= self.config.max_queue_age.as_secs() as i64;
        if expired {
            for r in message
                .recipients
                .iter_mut()
                .filter(|r| r.status == RecipientStatus::Queued)
            {
                r.status = RecipientStatus::Bounced;
                failures.push(Failure {
                    recipient: r.address.clone(),
                    diagnostic: format!(
                        "450 4.4.7 delivery time expired; last error: {}",
                        last_error.as_deref().unwrap_or("none")
                    ),
                });
            }
        }
        let mut changes = Changes::new();
        if self.config.trace {
            trace_attempt(
                &mut changes,
                message.id,
                now,
                delivered,
                deferred,
                last_error.as_deref(),
                &failures,
            );
        }
        // If an admin deleted, retried or bounced the entry during this attempt, their
        // change stands and this outcome is dropped (the commit answers Changed).
        let attempted = message.clone();
        let remaining = message
            .recipients
            .iter()
            .any(|r| r.status == RecipientStatus::Queued);
        message.attempts += 1;
        if remaining {
            let schedule = &self.config.retry_schedule;
            let wait = schedule
                .get((message.attempts as usize).saturating_sub(1))
                .or(schedule.last())
                .copied()
                .unwrap_or(Duration::from_secs(3600));
            message.next_attempt = now + wait.as_secs().max(1) as i64;
            message.last_error = last_error;
            changes.requeue(&attempted, message);
        } else {
            changes.dequeue(&attempted);
            changes.count("messages_delivered_remote", 1);
        }
        let id = format_args!("{:016x}", message.id).to_string();
        tracing::info!(
            id,
            delivered = message
                .recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Delivered)
                .count(),
            bounced = failures.len(),
            queued = message
                .recipients
                .iter()
                .filter(|r| r.status == RecipientStatus::Queued)
                .count(),
            error = message.last_error.as_deref().unwrap_or(""),
            "delivery attempt"
        );
        // Never a DSN for a message from the null sender: no loops.
        if !failures.is_empty() && !message.reverse_path.is_empty() {
            let original = blob.get(message.skip as usize..).unwrap_or(&[]);
            let report = dsn::build(
                &self.config.hostname,
                &message.reverse_path,
                message.id,
                original,
                message.created,
                &failures,
                now,
            );
            self.add_dsn(&mut changes, &message.reverse_path, report, now);
        }
        changes
    }

    /// Adds the DSN's delivery to `changes`: into the sender's mailbox if the sender is
    /// local, else to the queue (from the null sender).
    fn add_dsn(&self, changes: &mut Changes, sender: &str, report: Vec<u8>, now: i64) {
        let directory = self.directory.load();
        let account = match directory.route(&sender.to_ascii_lowercase()) {
            RcptRoute::Local { account } | RcptRoute::Report { account } => Some(account),
            RcptRoute::Remote | RcptRoute::Forward { .. } => None,
            RcptRoute::UnknownUser => {
                tracing::warn!(sender, "DSN for an unknown local sender dropped");
                return;
            }
        };
        let envelope = Envelope {
            id: next_dsn_id(now),
            reverse_path: String::new(),
            recipients: vec![Recipient {
                address: sender.to_string(),
                account,
                scan: false,
            }],
            body_8bit: false,
            smtputf8: false,
            received_at: now,
            submitter: None,
            client_ip: None,
        };
        let mut message = b"Return-Path: <>\r\n".to_vec();
        message.extend_from_slice(&report);
        let places = placements(&envelope, None, &[], &directory, None);
        changes.extend(delivery_changes(&envelope, message, &places, None));
    }
}

async fn write(conn: &mut Conn, bytes: &[u8], limit: Duration) -> std::io::Result<()> {
    match tokio::time::timeout(limit, conn.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "write timed out",
        )),
    }
}
