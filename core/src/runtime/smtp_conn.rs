//! Drives one SMTP session over a tokio-uring TCP stream: reads into the session's own
//! buffer (through TLS when active), writes its replies, runs STARTTLS handshakes, sends
//! logins to the auth service and commits finished messages through the store.

use std::net::{IpAddr, Shutdown, SocketAddr};
use std::time::Duration;

use tokio_uring::net::TcpStream;

use super::tls::{TlsStream, Transport};
use super::worker::{unix_now, WorkerContext};
use super::PortKind;
use crate::auth::service::AuthOutcome;
use crate::delivery::local::delivery_batch;
use crate::policy::RateKey;
use crate::smtp::{
    ConnectionPolicy, Delivery, DeliveryOutcome, Environment, RcptRoute, Session, Step,
};

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
/// A locked-out client waits this long for its refusal.
const LOCKOUT_DELAY: Duration = Duration::from_secs(2);
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
}

/// An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d: use the IPv4 form.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

pub async fn serve(ctx: &WorkerContext, stream: TcpStream, peer: SocketAddr, kind: PortKind) {
    // Without TCP_NODELAY, pipelined replies stall on delayed ACKs.
    let _ = stream.set_nodelay(true);
    let ip = canonical(peer.ip());
    let server = &ctx.server;
    let trusted = server.trusted.contains(ip);
    let _permit = if trusted {
        None
    } else {
        match server.connections.acquire(ip) {
            Some(permit) => Some(permit),
            None => {
                tracing::info!(%ip, "refused: too many connections");
                if kind != PortKind::Submissions {
                    let _ = stream.write_all(TOO_MANY_CONNECTIONS.to_vec()).await;
                }
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
        }
    };
    let mut transport = Transport::Plain;
    if kind == PortKind::Submissions {
        match handshake(ctx, &stream).await {
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
                match handshake(ctx, &stream).await {
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
                tokio::select! {
                    (result, buf) = transport.read(&stream, buf) => {
                        match result {
                            Ok(n) if n > 0 => session.input_filled(buf),
                            _ => break,
                        }
                    }
                    _ = tokio::time::sleep(server.idle_timeout) => {
                        session.close_with(Session::idle_timeout_reply());
                    }
                    _ = stop.wait_for(|stop| *stop), if idle => {
                        session.close_with(Session::shutdown_reply());
                    }
                }
            }
        }
    }
    // A read may still be in flight: shutting the socket down ends it and tells the client.
    let _ = stream.shutdown(Shutdown::Both);
    ctx.buffers.give(session.into_input_buffer());
}

/// Runs a TLS handshake with the current certificate; None if it fails or times out.
async fn handshake(ctx: &WorkerContext, stream: &TcpStream) -> Option<TlsStream> {
    let config = ctx.server.tls.load_full();
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsStream::accept(stream, config)).await {
        Ok(Ok(tls)) => {
            tracing::debug!(protocol = ?tls.protocol(), "TLS established");
            Some(tls)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => None,
    }
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
    let out = session.take_output();
    match tokio::time::timeout(ctx.server.idle_timeout, transport.write_all(stream, out)).await {
        Ok((Ok(()), out)) => {
            session.output_written(out);
            true
        }
        _ => false,
    }
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
    let batch = delivery_batch(&envelope, buffer);
    match ctx.server.store.commit(batch).await {
        Ok(()) => {
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
