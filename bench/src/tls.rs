//! TLS for the load generator: a client configuration, and the `tls` load (full handshakes
//! per second against an implicit-TLS port).
//!
//! The benchmark talks to a server on loopback with a self-signed certificate, so the
//! client accepts any certificate (signatures are still checked); it measures the
//! server's handshake cost, not PKI.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use gannet_core::delivery::tls::AcceptAnyCertificate;
use rustls::pki_types::ServerName;
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// A TLS client: TLS 1.3 (or 1.2 with `tls12`), with or without session resumption.
pub fn connector(tls12: bool, resume: bool) -> anyhow::Result<TlsConnector> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = if tls12 {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13]
    };
    let mut config = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(versions)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    if !resume {
        config.resumption = rustls::client::Resumption::disabled();
    }
    Ok(TlsConnector::from(Arc::new(config)))
}

pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("localhost").expect("valid name")
}

#[derive(clap::Args)]
pub struct Options {
    /// An implicit-TLS port (submissions, 465 in production; loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Handshakes to make.
    #[arg(long, default_value_t = 2000)]
    count: u64,
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// TLS 1.2 instead of 1.3.
    #[arg(long)]
    tls12: bool,
    /// Allow session resumption (default: every handshake is a full one).
    #[arg(long)]
    resume: bool,
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    let runtime = crate::loopback_runtime(opts.target, opts.threads)?;
    runtime.block_on(async {
        let connector = connector(opts.tls12, opts.resume)?;
        let next = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let tasks: Vec<_> = (0..opts.concurrency.max(1))
            .map(|_| {
                let (connector, next, failed) = (connector.clone(), next.clone(), failed.clone());
                let (target, count) = (opts.target, opts.count);
                tokio::spawn(async move {
                    let mut times = Vec::new();
                    while next.fetch_add(1, Ordering::Relaxed) < count {
                        let t0 = Instant::now();
                        match handshake(&connector, target).await {
                            Ok(()) => times.push(t0.elapsed()),
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    times
                })
            })
            .collect();
        let mut times: Vec<Duration> = Vec::new();
        for t in tasks {
            times.extend(t.await?);
        }
        let secs = started.elapsed().as_secs_f64();
        times.sort_unstable();
        let p50 = times.get(times.len() / 2).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        let rate = times.len() as f64 / secs;
        let failed = failed.load(Ordering::Relaxed);
        println!(
            "{} TLS {} handshakes{} (connect, handshake, read the 220 greeting, close), concurrency {}: {:.0}/s, p50 {:.2} ms, {} failed",
            times.len(),
            if opts.tls12 { "1.2" } else { "1.3" },
            if opts.resume { " with resumption" } else { "" },
            opts.concurrency,
            rate,
            p50,
            failed
        );
        println!("result ok={} failed={failed} secs={secs:.3} hps={rate:.1} p50_ms={p50:.3}", times.len());
        if failed > 0 {
            bail!("{failed} handshakes failed");
        }
        Ok(())
    })
}

async fn handshake(connector: &TlsConnector, target: SocketAddr) -> anyhow::Result<()> {
    let tcp = TcpStream::connect(target).await.context("connect")?;
    tcp.set_nodelay(true)?;
    let mut tls = connector
        .connect(server_name(), tcp)
        .await
        .context("handshake")?;
    let mut greeting = [0u8; 256];
    let n = tls.read(&mut greeting).await?;
    if n < 4 || &greeting[..3] != b"220" {
        bail!("no greeting");
    }
    tls.write_all(b"QUIT\r\n").await?;
    let _ = tls.read(&mut greeting).await;
    Ok(())
}
