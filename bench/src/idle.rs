//! The `idle` load: many connections that only read the greeting and wait, to measure the
//! server's memory per idle connection (RSS from /proc).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

#[derive(clap::Args)]
pub struct Options {
    /// Server address (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Connections to open.
    #[arg(long, default_value_t = 1000)]
    connections: usize,
    /// The server's process id, to read its RSS.
    #[arg(long)]
    pid: u32,
    /// Seconds to hold the connections after the measurement.
    #[arg(long, default_value_t = 0)]
    hold: u64,
}

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("no process {pid}"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS")
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    if !opts.target.ip().is_loopback() {
        bail!("refusing to load a non-loopback address: {}", opts.target);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let before = rss_kib(opts.pid)?;
        let started = Instant::now();
        let mut held = Vec::with_capacity(opts.connections);
        for _ in 0..opts.connections {
            let mut stream = TcpStream::connect(opts.target).await?;
            stream.set_nodelay(true)?;
            let mut greeting = [0u8; 512];
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut greeting))
                .await
                .context("no greeting within 10 s")??;
            if n < 4 || &greeting[..3] != b"220" {
                bail!("bad greeting");
            }
            held.push(stream);
        }
        // Let the server settle (buffers returned, allocator caches) before measuring.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let after = rss_kib(opts.pid)?;
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / opts.connections as f64;
        println!(
            "{} idle connections opened in {:.2} s: server RSS {} KiB -> {} KiB, {:.0} bytes per connection",
            opts.connections,
            started.elapsed().as_secs_f64(),
            before,
            after,
            per
        );
        println!("result connections={} rss_before_kib={before} rss_after_kib={after} bytes_per_conn={per:.0}", opts.connections);
        tokio::time::sleep(Duration::from_secs(opts.hold)).await;
        drop(held);
        Ok(())
    })
}
