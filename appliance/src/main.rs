//! `gannet`: the mail appliance's one binary. `gannet serve` runs the server; the other
//! commands administer it, talking to a running server over its control socket or, when
//! none runs, opening the store themselves.

mod admin;
mod cli;
mod command_line;
mod control;
mod live_settings;
mod memory;
mod purge;
mod scan_service;
mod serve;
mod spam;
mod spam_scan;
mod web;

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Everything Gannet creates (the store, keys, certificates, the control socket) is
    // the server user's alone: the store holds all mail and every password hash. Set
    // before any file or socket exists, so nothing is ever open to others, even briefly.
    // SAFETY: umask only changes this process's file-creation mask.
    unsafe {
        libc::umask(0o077);
    }
    let args = cli::Cli::parse();
    init_logging(args.log_format);
    if !matches!(args.command, cli::Command::Serve { .. }) {
        // Administration commands are filters too (`gannet rules check --list | head`):
        // a closed pipe ends them quietly, as it ends any Unix tool, instead of a panic
        // in println!. The server keeps SIGPIPE ignored (peers close sockets).
        // SAFETY: setting a signal disposition to its default, before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    let result = match args.command {
        cli::Command::Serve { workers } => serve::run(&args.global, workers),
        cli::Command::Admin(command) => command_line::run_cli(&args.global, command),
        cli::Command::Spam(command) => spam::run(&args.global, command),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gannet: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GANNET_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_thread_names(true);
    match format {
        cli::LogFormat::Human => builder.init(),
        cli::LogFormat::Json => builder.json().init(),
    }
}
