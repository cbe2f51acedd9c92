//! Bytes on and off a connection's socket where the socket can take or give them at once:
//! replies go out with a non-blocking `send(2)` (through io_uring only for what the socket
//! buffer does not take), input comes in with a non-blocking `recv(2)` when the worker's
//! epoll (the reactor tokio-uring runs underneath) says the socket is readable.
//!
//! Why not an io_uring read for input: a client that waits for each answer before its
//! next command (POP3 RETR, IMAP FETCH of one message, SMTP commands) makes every read a
//! round trip, and an io_uring read costs a submission (`io_uring_enter`) and task work
//! on top of the wake-up. Measured with POP3 RETR one message at a time (docs/benchmarks.md),
//! reading by readiness took ~2 µs of worker time off each RETR (19 → 17 µs) and the
//! download rate rose with it. A read by readiness is also cancelled by dropping it with
//! nothing lost, where an abandoned io_uring read keeps the socket busy.

use std::cell::OnceCell;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio_uring::buf::BoundedBuf;
use tokio_uring::net::TcpStream;

/// Room a read is given when the caller's buffer has none left.
const MIN_READ_ROOM: usize = 4096;

/// A connection's registration for readable events, made at its first read and kept
/// for the connection's life (across STARTTLS). Dropped before the socket closes: the
/// connection drivers own the `TcpStream` longer than the transport holding this.
#[derive(Default)]
pub(super) struct Readable {
    registered: OnceCell<AsyncFd<SocketFd>>,
}

/// The socket's descriptor as epoll sees it (the socket itself is owned by the
/// `TcpStream`; this only names it).
struct SocketFd(RawFd);

impl AsRawFd for SocketFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

impl Readable {
    /// Appends what the socket has to `buf` (waiting until it has something), up to the
    /// buffer's spare capacity; returns how many bytes (0 = the peer closed).
    pub(super) async fn recv(
        &self,
        tcp: &TcpStream,
        mut buf: Vec<u8>,
    ) -> (io::Result<usize>, Vec<u8>) {
        let registered = match self.registration(tcp) {
            Ok(registered) => registered,
            Err(e) => return (Err(e), buf),
        };
        let filled = buf.len();
        if buf.capacity() == filled {
            buf.reserve(MIN_READ_ROOM);
        }
        loop {
            let mut ready = match registered.readable().await {
                Ok(ready) => ready,
                Err(e) => return (Err(e), buf),
            };
            let room = buf.spare_capacity_mut();
            let got = ready.try_io(|fd| {
                // SAFETY: the descriptor is the open socket; the pointer and length
                // describe the buffer's spare capacity, which the kernel only writes.
                let n = unsafe {
                    libc::recv(
                        fd.as_raw_fd(),
                        room.as_mut_ptr().cast(),
                        room.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                usize::try_from(n).map_err(|_| io::Error::last_os_error())
            });
            match got {
                Ok(Ok(n)) => {
                    // SAFETY: the kernel initialised `n` bytes after `filled`, within the
                    // spare capacity.
                    unsafe { buf.set_len(filled + n) };
                    return (Ok(n), buf);
                }
                Ok(Err(e)) if e.kind() == io::ErrorKind::Interrupted => {}
                Ok(Err(e)) => return (Err(e), buf),
                // Not readable after all: the readiness is cleared, wait again.
                Err(_would_block) => {}
            }
        }
    }

    fn registration(&self, tcp: &TcpStream) -> io::Result<&AsyncFd<SocketFd>> {
        if let Some(registered) = self.registered.get() {
            return Ok(registered);
        }
        let fd = SocketFd(tcp.as_raw_fd());
        // SAFETY: the descriptor is the connection's open socket, and it stays open while
        // this registration lives: every connection driver owns its `TcpStream` for
        // longer than the transport (or handshake) holding this `Readable`, and the
        // stream closes its descriptor only when dropped.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
        Ok(self.registered.get_or_init(|| registered))
    }
}

/// Writes all of `buf` to the socket: at once with a non-blocking `send(2)` when the
/// socket buffer takes it (the usual case for a reply), the rest through io_uring. A reply
/// written at once saves the io_uring round trip and the wake-up of an asynchronous write:
/// a client that waits for each reply before its next command (POP3 RETR, IMAP FETCH of
/// one message) sees its answer sooner.
pub(super) async fn send_all(tcp: &TcpStream, buf: Vec<u8>) -> (io::Result<()>, Vec<u8>) {
    // SAFETY: the descriptor belongs to `tcp`, open for the whole call; the pointer and
    // length describe `buf`, which the kernel only reads during the call.
    let sent = unsafe {
        libc::send(
            tcp.as_raw_fd(),
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    let sent = match usize::try_from(sent) {
        Ok(n) => n,
        Err(_) => {
            let e = io::Error::last_os_error();
            if !matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) {
                return (Err(e), buf);
            }
            0
        }
    };
    if sent >= buf.len() {
        return (Ok(()), buf);
    }
    let (result, rest) = tcp.write_all(buf.slice(sent..)).await;
    (result, rest.into_inner())
}
