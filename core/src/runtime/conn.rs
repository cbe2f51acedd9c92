//! What every protocol's connection driver shares: admission (the per-IP connection
//! limit), TLS handshakes, writing replies and waiting for input with the idle timeout and
//! the shutdown signal in view.

use std::net::{IpAddr, Shutdown};
use std::time::Duration;

use tokio::sync::watch;
use tokio_uring::net::TcpStream;

use super::tls::{TlsStream, Transport};
use super::worker::WorkerContext;
use crate::policy::ConnectionPermit;

/// Longest a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d: use the IPv4 form.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// How a new connection is let in.
pub enum Admission {
    /// From a trusted network: no limit applies.
    Trusted,
    /// Counted against its IP's limit while the permit lives.
    Counted(ConnectionPermit),
    /// Over the limit: refused.
    Refused,
}

pub fn admit(ctx: &WorkerContext, ip: IpAddr) -> Admission {
    if ctx.server.trusted.contains(ip) {
        return Admission::Trusted;
    }
    match ctx.server.connections.acquire(ip) {
        Some(permit) => Admission::Counted(permit),
        None => Admission::Refused,
    }
}

/// Sends a last line in the clear and closes (for refusals before any session).
pub async fn refuse(stream: &TcpStream, line: &'static [u8]) {
    let _ = stream.write_all(line.to_vec()).await;
    let _ = stream.shutdown(Shutdown::Both);
}

/// Runs a TLS handshake with the current certificate; None if it fails or times out.
pub async fn handshake(ctx: &WorkerContext, stream: &TcpStream) -> Option<TlsStream> {
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

/// Writes `out` (bounded by the idle timeout); returns the buffer and whether it went out.
pub async fn write_out(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &mut Transport,
    out: Vec<u8>,
) -> (bool, Option<Vec<u8>>) {
    match tokio::time::timeout(ctx.server.idle_timeout, transport.write_all(stream, out)).await {
        Ok((Ok(()), out)) => (true, Some(out)),
        Ok((Err(_), out)) => (false, Some(out)),
        Err(_) => (false, None),
    }
}

/// What ended a wait for input.
pub enum Wake {
    /// Bytes were appended to the buffer.
    Data(Vec<u8>),
    /// The client closed or the connection failed.
    Closed,
    IdleTimeout,
    /// The server is shutting down (reported only while the session is idle).
    Stop,
}

/// Reads more input into `buf`, unless the client stays silent too long or, for an idle
/// session, the server shuts down.
pub async fn read_input(
    ctx: &WorkerContext,
    stream: &TcpStream,
    transport: &mut Transport,
    buf: Vec<u8>,
    idle: bool,
    stop: &mut watch::Receiver<bool>,
) -> Wake {
    tokio::select! {
        (result, buf) = transport.read(stream, buf) => match result {
            Ok(n) if n > 0 => Wake::Data(buf),
            _ => Wake::Closed,
        },
        _ = tokio::time::sleep(ctx.server.idle_timeout) => Wake::IdleTimeout,
        _ = stop.wait_for(|stop| *stop), if idle => Wake::Stop,
    }
}
