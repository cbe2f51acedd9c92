//! Process-wide settings made once at start by the binaries (server and bench).

/// Many connections need many descriptors: raises the soft limit to the hard one.
pub fn raise_fd_limit() {
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

/// Starts a thread named `name` that runs `service` on a current-thread tokio runtime of
/// its own (inside a `LocalSet`, so `spawn_local` works too): the services that must stay
/// off the io_uring workers (outbound delivery, DNS checks, antivirus, the web pages).
pub fn spawn_service<F, Fut>(name: &str, service: F) -> std::io::Result<()>
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let thread = name.to_string();
    std::thread::Builder::new()
        .name(thread.clone())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => tokio::task::LocalSet::new().block_on(&runtime, service()),
                Err(e) => {
                    tracing::error!(error = %e, thread, "no runtime: the service does not run")
                }
            }
        })?;
    Ok(())
}
