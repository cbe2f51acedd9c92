//! The runtime: thread-per-core io_uring workers that move bytes between sockets and the
//! sans-IO protocol sessions.
//!
//! One worker thread per core, each its own `tokio-uring` runtime with its own
//! `SO_REUSEPORT` listener on every port, so the kernel spreads connections over cores and
//! a connection lives on one core. Workers share nothing mutable but the store's commit
//! channel and the routing snapshot.

mod bufpool;
pub mod certs;
mod conn;
mod driver;
mod imap_conn;
mod listener;
mod pop3_conn;
mod smtp_conn;
mod socket;
pub mod tls;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::watch;

use crate::auth::service::AuthService;
use crate::delivery::routing::SharedDirectory;
use crate::imap::ImapConfig;
use crate::policy::{ConnectionLimiter, Networks, QuotaBook, RateLimiter};
use crate::pop3::Pop3Config;
use crate::smtp::SessionConfig;
use crate::store::reader::Readers;
use crate::store::Store;

/// What the workers need to serve.
#[derive(Clone)]
pub struct ServerContext {
    /// The SMTP session settings; the admin console may replace them (new sessions
    /// take the new ones).
    pub smtp: Arc<ArcSwap<SessionConfig>>,
    pub store: Store,
    pub directory: SharedDirectory,
    pub idle_timeout: Duration,
    /// How long a session may go unauthenticated (on the MX port: without a message
    /// accepted) before it is closed.
    pub unauthenticated_lifetime: Duration,
    /// How long sessions in the middle of a transaction may take to finish at shutdown.
    pub shutdown_grace: Duration,
    /// The TLS configuration for new handshakes (replaced on SIGHUP).
    pub tls: Arc<ArcSwap<rustls::ServerConfig>>,
    pub auth: AuthService,
    /// Clients that may relay without AUTH, and are exempt from the connection limit;
    /// replaceable while the server runs, as `smtp`.
    pub trusted: Arc<ArcSwap<Networks>>,
    /// Where passwords may be sent without TLS (`auth.plaintext_on_loopback`,
    /// `auth.allow_plaintext`).
    pub auth_settings: crate::config::Auth,
    pub connections: Arc<ConnectionLimiter>,
    pub rates: Arc<RateLimiter>,
    pub quotas: Arc<QuotaBook>,
    /// Threads for reads that may touch the disk (message bodies, mailbox listings).
    pub readers: Readers,
    pub pop3: Arc<Pop3Config>,
    /// Replaceable as `smtp` (the largest APPEND follows `limits.max_message_size`).
    pub imap: Arc<ArcSwap<ImapConfig>>,
    /// Accounts with an open POP3 maildrop.
    pub pop3_locks: Arc<pop3_conn::MaildropLocks>,
    /// DNS blocklists (checked at connect on the MX port) and SPF.
    pub dns_checks: crate::policy::DnsChecks,
    /// What becomes of each accepted message (checks, scan, placement, commit).
    pub inbound: Arc<crate::delivery::inbound::Inbound>,
}

pub use pop3_conn::MaildropLocks;

/// What a listening port serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// SMTP for incoming mail (25): STARTTLS and AUTH offered, neither required.
    Mx,
    /// Submission (587): STARTTLS, then AUTH before MAIL.
    Submission,
    /// Submission over implicit TLS (465): AUTH before MAIL.
    Submissions,
    /// POP3 (110): STLS, then login.
    Pop3,
    /// POP3 over implicit TLS (995).
    Pop3s,
    /// IMAP (143): STARTTLS, then login.
    Imap,
    /// IMAP over implicit TLS (993).
    Imaps,
}

impl PortKind {
    /// The listener's name in the configuration when it has a plain port (where a
    /// password could travel in the clear); `None` for the implicit-TLS ones.
    fn plain_listener(self) -> Option<crate::config::PlainListener> {
        use crate::config::PlainListener;
        match self {
            PortKind::Mx => Some(PlainListener::Smtp),
            PortKind::Submission => Some(PlainListener::Submission),
            PortKind::Pop3 => Some(PlainListener::Pop3),
            PortKind::Imap => Some(PlainListener::Imap),
            PortKind::Submissions | PortKind::Pop3s | PortKind::Imaps => None,
        }
    }
}

impl ServerContext {
    /// Whether a session on a `kind` port from `ip` may log in without TLS.
    fn auth_without_tls(&self, kind: PortKind, ip: std::net::IpAddr) -> bool {
        kind.plain_listener()
            .is_some_and(|l| self.auth_settings.plaintext_allowed(l, ip))
    }
}

/// Addresses to listen on.
#[derive(Debug, Clone)]
pub struct Listeners {
    pub smtp: SocketAddr,
    pub submission: SocketAddr,
    pub submissions: SocketAddr,
    pub pop3: SocketAddr,
    pub pop3s: SocketAddr,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
}

impl Listeners {
    fn all(&self) -> [(PortKind, SocketAddr); 7] {
        [
            (PortKind::Mx, self.smtp),
            (PortKind::Submission, self.submission),
            (PortKind::Submissions, self.submissions),
            (PortKind::Pop3, self.pop3),
            (PortKind::Pop3s, self.pop3s),
            (PortKind::Imap, self.imap),
            (PortKind::Imaps, self.imaps),
        ]
    }
}

/// Running workers; [`Workers::shutdown`] stops them gracefully.
pub struct Workers {
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Binds every listener for every worker, then starts the workers.
pub fn start(ctx: ServerContext, listeners: &Listeners, count: usize) -> std::io::Result<Workers> {
    let (stop, stop_rx) = watch::channel(false);
    for (_, addr) in listeners.all() {
        listener::ensure_free(addr)?;
    }
    let mut bound = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        let mut sockets = Vec::new();
        for (kind, addr) in listeners.all() {
            sockets.push((kind, listener::bind_reuseport(addr)?));
        }
        bound.push(sockets);
    }
    let mut threads = Vec::with_capacity(bound.len());
    for (index, sockets) in bound.into_iter().enumerate() {
        let ctx = ctx.clone();
        let stop_rx = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || worker::run(index as u8, ctx, sockets, stop_rx))?;
        threads.push(thread);
    }
    Ok(Workers { threads, stop })
}

impl Workers {
    /// Stops accepting, lets sessions in flight finish (bounded by the grace period), and
    /// waits for every worker to exit.
    pub fn shutdown(self) {
        let _ = self.stop.send(true);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
