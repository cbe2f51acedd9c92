//! Drives one SMTP session over a tokio-uring TCP stream: reads into the session's own
//! buffer (through TLS when active), writes its replies, runs STARTTLS handshakes, sends
//! logins to the auth service and hands finished messages to [`crate::delivery::inbound`].

use std::net::{Shutdown, SocketAddr};

use tokio_uring::net::TcpStream;

use super::conn;
use super::driver::{self, Service};
use super::worker::WorkerContext;
use super::PortKind;
use crate::clock::unix_now;
use crate::delivery::screening::Origin;
use crate::policy::dns_checks::{ReverseDns, SpfQuery};
use crate::policy::RateKey;
use crate::smtp::{
    ConnectionPolicy, DeliveryOutcome, Environment, RcptRoute, RecipientRefusal, Request, Session,
};

const TOO_MANY_CONNECTIONS: &[u8] = b"421 4.7.0 Too many connections from your address\r\n";

/// The session's view of the world, backed by the worker.
struct WorkerEnv<'a>(&'a WorkerContext);

impl Environment for WorkerEnv<'_> {
    fn now(&self) -> i64 {
        unix_now()
    }
    fn next_message_id(&mut self) -> u64 {
        self.0.next_message_id()
    }
    fn route(&self, address: &str) -> RcptRoute {
        self.0.server.directory.load().route(address)
    }
    fn admit_message(&mut self, key: RateKey) -> bool {
        self.0.server.rates.admit(key)
    }
    fn quota_allows(&self, account: u32, bytes: u64) -> bool {
        self.0.server.quotas.allows(account, bytes)
    }
    fn recipient_refused(&mut self, r: &RecipientRefusal<'_>) {
        let reason = format!("{} {} {}", r.reply.code, r.reply.enhanced, r.reply.text);
        self.0.server.inbound.record_turned_away(
            self.0.next_message_id(),
            r.at,
            r.client_ip,
            r.sender,
            Some(r.recipient),
            &reason,
        );
    }
}

pub(super) async fn serve(
    ctx: &WorkerContext,
    stream: TcpStream,
    peer: SocketAddr,
    kind: PortKind,
) {
    let implicit = kind == PortKind::Submissions;
    let Some(opened) = conn::open(ctx, &stream, peer, implicit, TOO_MANY_CONNECTIONS).await else {
        return;
    };
    let (ip, trusted) = (opened.ip, opened.trusted);
    let mut transport = opened.transport;
    let server = &ctx.server;
    // Blocklists and the reverse lookup apply to the MX port, never to trusted networks
    // or submission ports (where a roaming user on a listed address still
    // authenticates); both are asked at once, before the greeting, as Postfix does.
    let mut reverse_dns = ReverseDns::NotLookedUp;
    if kind == PortKind::Mx && !opened.trusted {
        let (listed, name) = tokio::join!(
            server.dns_checks.rejecting_list(ip),
            server.dns_checks.reverse_dns(ip)
        );
        if let Some(zone) = listed {
            tracing::info!(%ip, zone, "refused: listed by a DNS blocklist");
            let line =
                format!("554 5.7.1 Service unavailable; client [{ip}] blocked using {zone}\r\n");
            conn::refuse(&stream, line.as_bytes()).await;
            server.inbound.record_turned_away(
                ctx.next_message_id(),
                unix_now(),
                ip,
                "",
                None,
                line.trim_end(),
            );
            return;
        }
        reverse_dns = name;
    }
    let policy = ConnectionPolicy {
        client_ip: ip,
        reverse_dns,
        tls: transport.is_tls(),
        starttls: true,
        auth_without_tls: server.auth_without_tls(kind, ip),
        submission: kind != PortKind::Mx,
        trusted: opened.trusted,
    };
    let mut session = Session::new(server.smtp.load_full(), policy, ctx.buffers.take());
    let mut delivery = Deliveries {
        ctx,
        ip,
        // SPF is for mail from the outside: not from trusted networks, not from
        // authenticated users, not on the submission ports.
        outside: kind == PortKind::Mx && !trusted,
    };
    let mut env = WorkerEnv(ctx);
    driver::drive(
        ctx,
        &stream,
        &mut transport,
        ip,
        &mut session,
        &mut env,
        &mut delivery,
    )
    .await;
    // Shut down before the stream is dropped: the client is told at once.
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_buffers().into_input());
}

/// Hands each finished message to the inbound path.
struct Deliveries<'a> {
    ctx: &'a WorkerContext,
    ip: std::net::IpAddr,
    /// On the MX port from an untrusted client: SPF and the scoring blocklists apply.
    outside: bool,
}

impl Service<Session> for Deliveries<'_> {
    async fn fulfil(&mut self, session: &mut Session, _: Request) -> DeliveryOutcome {
        let origin = if self.outside && !session.is_authenticated() {
            Origin::Outside
        } else {
            Origin::Inside
        };
        let spf = (origin == Origin::Outside).then(|| SpfQuery {
            ip: self.ip,
            helo: session.helo_name().unwrap_or_default().to_string(),
            mail_from: String::new(),
            receiver: self.ctx.server.smtp.load().hostname.clone(),
        });
        match session.take_delivery(self.ctx.buffers.take()) {
            Some(delivery) => {
                let spf = spf.map(|q| SpfQuery {
                    mail_from: delivery.envelope.reverse_path.clone(),
                    ..q
                });
                self.ctx.server.inbound.accept(delivery, spf, origin).await
            }
            None => DeliveryOutcome::Failed,
        }
    }
}
