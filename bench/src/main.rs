//! gannet-bench: load generator for Gannet (and any SMTP server, for side-by-side runs).
//!
//! * `smtp`: sends N messages of a given size over C concurrent sessions, one connection
//!   per message (as MTAs do) or reused connections, optionally pipelined; prints
//!   messages/s, MB/s and p50/p99/p999 latency of the final reply to the message.
//! * `idle`: opens N connections that stay idle and reports the server's RSS per connection.
//! * `tls`: full TLS handshakes per second against an implicit-TLS port.
//! * `imap`: IMAP and POP3 reading speed against a filled mailbox.
//! * `spam`: the spam engine alone on one core over a labelled corpus.
//! * `trace`: the message trace's searches over N traced messages.

mod idle;
mod imap;
mod probes;
mod smtp;
mod soak;
mod spam;
mod tls;
mod trace;

// The allocator the server uses, so the in-process loads (spam) allocate as it does.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "gannet-bench", about = "Load generator for SMTP servers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Send messages and measure throughput and latency.
    Smtp(smtp::Options),
    /// Hold idle connections and measure the server's memory per connection.
    Idle(idle::Options),
    /// Full TLS handshakes per second against an implicit-TLS port.
    Tls(tls::Options),
    /// IMAP and POP3 reading speed against a filled mailbox.
    Imap(imap::Options),
    /// Spam scanning speed and verdicts on one core over a labelled corpus.
    Spam(spam::Options),
    /// Message-trace searches over a store of N traced messages.
    Trace(trace::Options),
    /// A mixed load for a set time (ingest, IMAP readers, POP3 downloads, relaying to a
    /// sink), sampled every few seconds into a CSV.
    Soak(soak::Options),
}

/// A tokio runtime for a load against `target`, which must be on this machine.
fn loopback_runtime(
    target: std::net::SocketAddr,
    threads: usize,
) -> anyhow::Result<tokio::runtime::Runtime> {
    if !target.ip().is_loopback() {
        anyhow::bail!("refusing to load a non-loopback address: {target}");
    }
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?)
}

fn main() -> anyhow::Result<()> {
    gannet_core::process::raise_fd_limit();
    let cli = Cli::parse();
    match cli.command {
        Command::Smtp(opts) => smtp::run(opts),
        Command::Idle(opts) => idle::run(opts),
        Command::Tls(opts) => tls::run(opts),
        Command::Imap(opts) => imap::run(opts),
        Command::Spam(opts) => spam::run(opts),
        Command::Trace(opts) => trace::run(opts),
        Command::Soak(opts) => soak::run(opts),
    }
}
