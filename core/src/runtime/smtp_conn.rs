//! Drives one SMTP session over a tokio-uring TCP stream: reads into the session's own
//! buffer (through TLS when active), writes its replies, runs STARTTLS handshakes, sends
//! logins to the auth service and commits finished messages through the store.

use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use tokio_uring::net::TcpStream;

use super::conn::{self, Admission, Wake};
use super::tls::Transport;
use super::worker::{unix_now, WorkerContext};
use super::PortKind;
use crate::auth::service::AuthOutcome;
use crate::delivery::local::{delivery_batch, placements};
use crate::policy::RateKey;
use crate::smtp::{
    ConnectionPolicy, Delivery, DeliveryOutcome, Environment, RcptRoute, Session, Step,
};

/// Messages up to this size are scanned on the worker itself.
const INLINE_SCAN_LIMIT: usize = 256 * 1024;

/// A locked-out client waits this long for its refusal.
pub const LOCKOUT_DELAY: Duration = Duration::from_secs(2);
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
}

pub async fn serve(ctx: &WorkerContext, stream: TcpStream, peer: SocketAddr, kind: PortKind) {
    // Without TCP_NODELAY, pipelined replies stall on delayed ACKs.
    let _ = stream.set_nodelay(true);
    let ip = conn::canonical(peer.ip());
    let server = &ctx.server;
    let (trusted, _permit) = match conn::admit(ctx, ip) {
        Admission::Trusted => (true, None),
        Admission::Counted(permit) => (false, Some(permit)),
        Admission::Refused => {
            tracing::info!(%ip, "refused: too many connections");
            if kind == PortKind::Submissions {
                let _ = stream.shutdown(Shutdown::Both);
            } else {
                conn::refuse(&stream, TOO_MANY_CONNECTIONS).await;
            }
            return;
        }
    };
    let mut transport = Transport::Plain;
    if kind == PortKind::Submissions {
        match conn::handshake(ctx, &stream).await {
            Some(tls) => transport = Transport::Tls(Box::new(tls)),
            None => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    }
    let policy = ConnectionPolicy {
        client_ip: ip,
        tls: transport.is_tls(),
        starttls: true,
        auth_without_tls: server.plaintext_on_loopback && ip.is_loopback(),
        submission: kind != PortKind::Mx,
        trusted,
    };
    let mut session = Session::new(server.smtp.clone(), policy, ctx.buffers.take());
    let mut stop = ctx.stop.clone();
    loop {
        match session.step(&mut WorkerEnv(ctx)) {
            Step::Deliver => {
                if let Some(delivery) = session.take_delivery(ctx.buffers.take()) {
                    let outcome = store(ctx, delivery).await;
                    session.delivered(outcome);
                }
            }
            Step::Close => {
                flush(ctx, &stream, &mut transport, &mut session).await;
                transport.close(&stream).await;
                break;
            }
            Step::StartTls => {
                if !flush(ctx, &stream, &mut transport, &mut session).await {
                    break;
                }
                match conn::handshake(ctx, &stream).await {
                    Some(tls) => {
                        transport = Transport::Tls(Box::new(tls));
                        session.tls_started();
                    }
                    None => break,
                }
            }
            Step::Authenticate => {
                if let Some(credentials) = session.take_credentials() {
                    let outcome = server.auth.authenticate(credentials, ip).await;
                    if outcome == AuthOutcome::LockedOut {
                        tokio::time::sleep(LOCKOUT_DELAY).await;
                    }
                    session.auth_result(outcome);
                }
            }
            Step::NeedInput => {
                if !flush(ctx, &stream, &mut transport, &mut session).await {
                    break;
                }
                let idle = session.is_idle();
                let buf = session.take_input();
                match conn::read_input(ctx, &stream, &mut transport, buf, idle, &mut stop).await {
                    Wake::Data(buf) => session.input_filled(buf),
                    Wake::Closed => break,
                    Wake::IdleTimeout => session.close_with(Session::idle_timeout_reply()),
                    Wake::Stop => session.close_with(Session::shutdown_reply()),
                }
            }
        }
    }
    // A read may still be in flight: shutting the socket down ends it and tells the client.
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_input_buffer());
}

/// Writes pending replies; false if the client is gone or stopped reading.
async fn flush(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &mut Transport,
    session: &mut Session,
) -> bool {
    if !session.has_output() {
        return true;
    }
    let (sent, buf) = conn::write_out(ctx, stream, transport, session.take_output()).await;
    if let Some(buf) = buf {
        session.output_written(buf);
    }
    sent
}

/// Makes the message durable; only then may the session say 250.
async fn store(ctx: &WorkerContext, delivery: Delivery) -> DeliveryOutcome {
    let Delivery {
        envelope,
        mut buffer,
        message_len,
    } = delivery;
    buffer.truncate(message_len);
    let size = buffer.len();
    let mut accounts: Vec<u32> = envelope
        .recipients
        .iter()
        .filter_map(|r| r.account)
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    let quotas = &ctx.server.quotas;
    if let Some(full) = accounts.iter().find(|&&a| !quotas.allows(a, size as u64)) {
        // Refused whole, never half-stored: the client retries for every recipient.
        tracing::info!(
            id = format_args!("{:016x}", envelope.id),
            account = full,
            "mailbox full"
        );
        return DeliveryOutcome::OverQuota;
    }
    // One scan per message, whatever the number of recipients. Small messages are scanned
    // here (bounded CPU); large ones on a reader thread, so the worker stays responsive.
    let (verdict, buffer) = if accounts.is_empty() {
        (None, buffer)
    } else if buffer.len() <= INLINE_SCAN_LIMIT {
        (Some(ctx.server.rules.load().scan(&buffer)), buffer)
    } else {
        let rules = ctx.server.rules.load_full();
        match ctx
            .server
            .readers
            .run(move |_| (rules.scan(&buffer), buffer))
            .await
        {
            Some((v, b)) => (Some(v), b),
            None => return DeliveryOutcome::Failed,
        }
    };
    let from = crate::mime::header_value(&buffer, "From").map(|f| {
        f.rsplit_once('<')
            .map_or(f.as_str(), |(_, a)| a.trim_end_matches('>'))
            .trim()
            .to_string()
    });
    let directory = ctx.server.directory.load();
    let placed = placements(&envelope, verdict.as_ref(), &directory, from.as_deref());
    let added: Vec<(u32, i64)> = placed
        .iter()
        .flat_map(|p| {
            p.accounts
                .iter()
                .map(move |&a| (a, (size + p.headers.len()) as i64))
        })
        .collect();
    let junk = placed
        .iter()
        .filter(|p| p.mailbox == "Junk")
        .map(|p| p.accounts.len())
        .sum::<usize>();
    let batch = delivery_batch(&envelope, buffer, &placed);
    match ctx.server.store.commit(batch).await {
        Ok(()) => {
            for &(account, bytes) in &added {
                quotas.add(account, bytes);
            }
            let remote = envelope
                .recipients
                .iter()
                .filter(|r| r.account.is_none())
                .count();
            tracing::info!(
                id = format_args!("{:016x}", envelope.id),
                from = %envelope.reverse_path,
                recipients = envelope.recipients.len(),
                queued = remote,
                junk,
                score = verdict.as_ref().map_or(0.0, |v| v.score),
                size,
                "accepted"
            );
            DeliveryOutcome::Stored
        }
        Err(e) => {
            tracing::error!(id = format_args!("{:016x}", envelope.id), error = %e, "store failed");
            DeliveryOutcome::Failed
        }
    }
}
