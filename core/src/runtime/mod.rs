//! The runtime: thread-per-core io_uring workers that move bytes between sockets and the
//! sans-IO protocol sessions.
//!
//! One worker thread per core, each its own `tokio-uring` runtime with its own
//! `SO_REUSEPORT` listener on every port, so the kernel spreads connections over cores and
//! a connection lives on one core. Workers share nothing mutable but the store's commit
//! channel and the routing snapshot.

mod bufpool;
mod listener;
mod smtp_conn;
mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::sync::watch;

use crate::delivery::routing::SharedDirectory;
use crate::smtp::SessionConfig;
use crate::store::Store;

/// What the workers need to serve.
#[derive(Clone)]
pub struct ServerContext {
    pub smtp: Arc<SessionConfig>,
    pub store: Store,
    pub directory: SharedDirectory,
    pub idle_timeout: Duration,
    /// How long sessions in the middle of a transaction may take to finish at shutdown.
    pub shutdown_grace: Duration,
}

/// Addresses to listen on.
#[derive(Debug, Clone)]
pub struct Listeners {
    pub smtp: SocketAddr,
}

/// Running workers; [`Workers::shutdown`] stops them gracefully.
pub struct Workers {
    threads: Vec<JoinHandle<()>>,
    stop: watch::Sender<bool>,
}

/// Binds every listener for every worker, then starts the workers.
pub fn start(ctx: ServerContext, listeners: &Listeners, count: usize) -> std::io::Result<Workers> {
    let (stop, stop_rx) = watch::channel(false);
    listener::ensure_free(listeners.smtp)?;
    let mut bound = Vec::with_capacity(count);
    for _ in 0..count.max(1) {
        bound.push(listener::bind_reuseport(listeners.smtp)?);
    }
    let mut threads = Vec::with_capacity(bound.len());
    for (index, smtp) in bound.into_iter().enumerate() {
        let ctx = ctx.clone();
        let stop_rx = stop_rx.clone();
        let thread = std::thread::Builder::new()
            .name(format!("worker-{index}"))
            .spawn(move || worker::run(index as u8, ctx, smtp, stop_rx))?;
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
