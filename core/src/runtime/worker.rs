//! One worker thread: a tokio-uring runtime accepting on its own listeners and running
//! every session it accepted to its end.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use tokio::sync::watch;

use super::bufpool::BufferPool;
use super::{imap_conn, pop3_conn, smtp_conn, PortKind, ServerContext};
use crate::clock::unix_now;

/// Per-worker state shared by the worker's sessions (single-threaded, no locks).
pub(super) struct WorkerContext {
    pub server: ServerContext,
    pub index: u8,
    pub buffers: BufferPool,
    pub stop: watch::Receiver<bool>,
    active: Cell<usize>,
    message_seq: Cell<u32>,
}

impl WorkerContext {
    /// A message id unique across workers and restarts: Unix seconds, worker, sequence.
    pub(super) fn next_message_id(&self) -> u64 {
        let seq = self.message_seq.get().wrapping_add(1);
        self.message_seq.set(seq);
        (unix_now() as u64) << 32 | u64::from(self.index) << 24 | u64::from(seq & 0xff_ffff)
    }
}

/// Keeps the count of live sessions, for the bounded wait at shutdown.
struct ActiveGuard(Rc<WorkerContext>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.set(self.0.active.get() - 1);
    }
}

pub(super) fn run(
    index: u8,
    server: ServerContext,
    sockets: Vec<(PortKind, std::net::TcpListener)>,
    stop: watch::Receiver<bool>,
) {
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tokio_uring::builder()
            .entries(1024)
            .start(serve(index, server, sockets, stop))
    }));
    if result.is_err() {
        tracing::error!(worker = index, "worker runtime panicked");
    }
}

async fn serve(
    index: u8,
    server: ServerContext,
    sockets: Vec<(PortKind, std::net::TcpListener)>,
    stop: watch::Receiver<bool>,
) {
    let grace = server.shutdown_grace;
    let ctx = Rc::new(WorkerContext {
        server,
        index,
        buffers: BufferPool::default(),
        stop: stop.clone(),
        active: Cell::new(0),
        message_seq: Cell::new(0),
    });
    let acceptors: Vec<_> = sockets
        .into_iter()
        .map(|(kind, socket)| tokio_uring::spawn(accept_loop(ctx.clone(), kind, socket)))
        .collect();
    tracing::debug!(worker = index, "worker started");
    for acceptor in acceptors {
        let _ = acceptor.await;
    }
    let deadline = Instant::now() + grace;
    while ctx.active.get() > 0 && Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if ctx.active.get() > 0 {
        tracing::warn!(
            worker = index,
            sessions = ctx.active.get(),
            "sessions cut at shutdown"
        );
    }
}

/// Accepts on one listener until the stop signal, one task per connection.
async fn accept_loop(ctx: Rc<WorkerContext>, kind: PortKind, socket: std::net::TcpListener) {
    let listener = tokio_uring::net::TcpListener::from_std(socket);
    let mut stop = ctx.stop.clone();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // The listener's and the process's caps come before anything else:
                    // past them a connection costs one short write.
                    let Some(slot) = ctx.server.connections.slot(kind as usize) else {
                        tracing::warn!(?kind, %peer, "refused: connection cap reached");
                        tokio_uring::spawn(async move {
                            match busy_line(kind) {
                                Some(line) => super::conn::refuse(&stream, line).await,
                                None => {
                                    let _ = stream.shutdown(std::net::Shutdown::Both);
                                }
                            }
                        });
                        continue;
                    };
                    ctx.active.set(ctx.active.get() + 1);
                    let guard = ActiveGuard(ctx.clone());
                    tokio_uring::spawn(async move {
                        let _slot = slot;
                        match kind {
                            PortKind::Mx | PortKind::Submission | PortKind::Submissions => {
                                smtp_conn::serve(&guard.0, stream, peer, kind).await
                            }
                            PortKind::Pop3 | PortKind::Pop3s => {
                                pop3_conn::serve(&guard.0, stream, peer, kind).await
                            }
                            PortKind::Imap | PortKind::Imaps => {
                                imap_conn::serve(&guard.0, stream, peer, kind).await
                            }
                        }
                        drop(guard);
                    });
                }
                Err(e) => {
                    // Out of descriptors or memory: back off instead of spinning.
                    tracing::warn!(worker = ctx.index, error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            _ = stop.wait_for(|stop| *stop) => break,
        }
    }
}

/// What a plain-text port says when the server is at its connection cap (implicit-TLS
/// ports just close: nothing can be said before the handshake).
fn busy_line(kind: PortKind) -> Option<&'static [u8]> {
    match kind {
        PortKind::Mx | PortKind::Submission => {
            Some(b"421 4.3.2 Too many connections, try again later\r\n")
        }
        PortKind::Pop3 => Some(b"-ERR [SYS/TEMP] Too many connections, try again later\r\n"),
        PortKind::Imap => Some(b"* BYE [UNAVAILABLE] Too many connections, try again later\r\n"),
        PortKind::Submissions | PortKind::Pop3s | PortKind::Imaps => None,
    }
}
