//! Listening sockets: one per worker and port, bound with SO_REUSEPORT.

use std::net::SocketAddr;

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of each listener: bursts of new connections (one per message) must not be lost.
const BACKLOG: i32 = 4096;

/// Fails if anything listens on `addr` already. SO_REUSEPORT would otherwise let a second
/// server (of the same user) share the port silently and take half of its connections.
pub(super) fn ensure_free(addr: SocketAddr) -> std::io::Result<()> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))
}

pub(super) fn bind_reuseport(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket
        .bind(&addr.into())
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    socket.listen(BACKLOG)?;
    Ok(socket.into())
}
