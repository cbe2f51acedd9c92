//! `gannet serve`: opens the store, starts the commit thread, the control socket and one
//! worker per core, then waits for SIGTERM or SIGINT to shut down gracefully.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use arc_swap::ArcSwap;
use gannet_core::delivery::routing::Directory;
use gannet_core::runtime::{self, Listeners, ServerContext};
use gannet_core::smtp::SessionConfig;
use gannet_core::store::Store;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use crate::admin::{load_config, store_dir};
use crate::cli::Global;
use crate::control;

pub fn run(global: &Global, workers: Option<usize>) -> anyhow::Result<ExitCode> {
    let mut config = load_config(global)?;
    if let Some(n) = workers {
        config.server.workers = n;
    }
    raise_fd_limit();
    let data_dir = config.server.data_dir.clone();
    // Handlers first: a signal that arrives while starting is not lost.
    let mut signals = Signals::new([SIGTERM, SIGINT]).context("cannot install signal handlers")?;
    let owner = Store::open(&store_dir(&data_dir))
        .with_context(|| format!("cannot open the store in {}", data_dir.display()))?;
    let store = owner.store().clone();
    let routing = Arc::new(ArcSwap::from_pointee(Directory::load(&store)?));
    control::spawn(&data_dir, store.clone(), routing.clone())?;

    let limits = &config.limits;
    let smtp = Arc::new(SessionConfig {
        hostname: config.server.hostname.clone(),
        max_command_line: limits.max_command_line,
        max_recipients: limits.max_recipients,
        max_message_size: limits.max_message_size.0 as usize,
        max_bad_commands: limits.max_bad_commands,
    });
    let listeners = Listeners {
        smtp: config
            .listen
            .smtp
            .parse()
            .with_context(|| format!("listen.smtp: bad address {:?}", config.listen.smtp))?,
    };
    let ctx = ServerContext {
        smtp,
        store,
        directory: routing,
        idle_timeout: limits.idle_timeout.0,
        shutdown_grace: config.server.shutdown_grace.0,
    };
    let count = config.worker_count();
    let workers = runtime::start(ctx, &listeners, count)?;
    tracing::info!(
        smtp = %listeners.smtp,
        workers = count,
        data = %data_dir.display(),
        "gannet serving"
    );

    let signal = signals.forever().next();
    tracing::info!(
        ?signal,
        "shutting down: no new connections, finishing sessions"
    );
    workers.shutdown();
    owner.close();
    let _ = std::fs::remove_file(control::socket_path(&data_dir));
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

/// Many idle connections need many descriptors: raise the soft limit to the hard one.
fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on a local struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
