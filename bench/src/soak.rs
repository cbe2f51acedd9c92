//! The `soak` load: what an appliance does all day, all at once, for a set time. SMTP
//! sessions deliver messages (one connection each, at a target rate or flat out); every
//! `--relay-every`th message is for a remote domain, which the server relays to its smart
//! host: this program, listening as a sink; every `--pop-every`th is for a POP3 user,
//! whose client downloads and deletes its mail every few seconds; IMAP readers poll the
//! reader's INBOX, fetch the newest messages whole and flag them. Every `--interval`
//! seconds a CSV line: each load's rate, the final SMTP reply's latency (p50/p99/p999),
//! the server's RSS and data size, and the store engine's compaction state (from
//! `--stats-command`, e.g. `gannet … store-stats`); and what a change in latency can be
//! put down to ([`crate::probes`]): CPU time (the server's, the machine's, iowait and
//! steal) and the mean time per message of the server's stages (from `--metrics-command`,
//! its `/metrics`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::imap::{pop3_login, pop3_reply, Imap};
use crate::probes::{self, CpuTicks};
use crate::smtp::{dir_mb, make_message, percentile_ms, rss_mb, Conn};

#[derive(clap::Args, Clone)]
pub struct Options {
    /// The server's SMTP address (loopback only).
    #[arg(long)]
    smtp: SocketAddr,
    /// Its IMAP address (plain).
    #[arg(long)]
    imap: SocketAddr,
    /// Its POP3 address (plain).
    #[arg(long)]
    pop3: SocketAddr,
    /// Where this program listens as the server's smart host (`delivery.relay_host`).
    #[arg(long)]
    sink: SocketAddr,
    /// The account the IMAP readers read (and most messages are for).
    #[arg(long, default_value = "reader@example.test")]
    reader: String,
    /// The accounts the POP3 clients download, one client each (a POP3 mailbox has one
    /// session at a time); comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pop1@example.test,pop2@example.test"
    )]
    pop_users: Vec<String>,
    /// Other accounts the ingest spreads over (`box0@DOMAIN` … `boxN-1@DOMAIN`, the
    /// reader's domain): the reader gets one message in N+1 of those left after relaying
    /// and POP3, as one mailbox of many on a real appliance (0: all to the reader).
    #[arg(long, default_value_t = 0)]
    boxes: u64,
    /// Every account's password.
    #[arg(long)]
    password: String,
    /// How long the load runs.
    #[arg(long, default_value_t = 1800)]
    seconds: u64,
    /// SMTP messages per second over all sessions (0: flat out).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// Concurrent SMTP sessions (one connection per message).
    #[arg(long, default_value_t = 20)]
    sessions: usize,
    /// Message size in bytes.
    #[arg(long, default_value_t = 10240)]
    size: usize,
    #[arg(long, default_value_t = 4)]
    imap_readers: usize,
    /// Every this many messages, one for a remote domain (relayed to the sink).
    #[arg(long, default_value_t = 10)]
    relay_every: u64,
    /// Every this many messages, one for a POP3 user (in turn).
    #[arg(long, default_value_t = 10)]
    pop_every: u64,
    /// Seconds between CSV lines.
    #[arg(long, default_value_t = 5)]
    interval: u64,
    #[arg(long)]
    csv: std::path::PathBuf,
    /// The server's process id (RSS).
    #[arg(long)]
    watch_pid: Option<u32>,
    /// The server's data directory (size on disk).
    #[arg(long)]
    watch_dir: Option<std::path::PathBuf>,
    /// A shell command printing the store engine's state as JSON, run every interval.
    #[arg(long)]
    stats_command: Option<String>,
    /// A shell command printing the server's metrics (Prometheus text, e.g. `curl` of
    /// the admin console's `/metrics`), run every interval: the stages' mean latencies.
    #[arg(long)]
    metrics_command: Option<String>,
}

/// Counters the loads add to and the sampler reads.
#[derive(Default)]
struct Counters {
    smtp: AtomicU64,
    smtp_failed: AtomicU64,
    imap_messages: AtomicU64,
    imap_failed: AtomicU64,
    pop3_messages: AtomicU64,
    pop3_failed: AtomicU64,
    relayed: AtomicU64,
    next_seq: AtomicU64,
    /// Final-reply latencies since the last line.
    window: Mutex<Vec<Duration>>,
    first_error: Mutex<Option<String>>,
}

impl Counters {
    fn failed(&self, counter: &AtomicU64, what: &str, e: &anyhow::Error) {
        counter.fetch_add(1, Ordering::Relaxed);
        let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if first.is_none() {
            *first = Some(format!("{what}: {e:#}"));
        }
    }
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    for addr in [opts.imap, opts.pop3, opts.sink] {
        if !addr.ip().is_loopback() {
            bail!("refusing to load a non-loopback address: {addr}");
        }
    }
    let runtime = crate::loopback_runtime(opts.smtp, 2)?;
    runtime.block_on(soak(opts))
}

async fn soak(opts: Options) -> anyhow::Result<()> {
    let counters = Arc::new(Counters::default());
    let started = Instant::now();
    let deadline = started + Duration::from_secs(opts.seconds);
    let sink = TcpListener::bind(opts.sink)
        .await
        .with_context(|| format!("sink on {}", opts.sink))?;
    tokio::spawn(run_sink(sink, counters.clone()));
    let message = Arc::new(make_message(opts.size));
    let mut tasks = Vec::new();
    for _ in 0..opts.sessions {
        let (opts, counters, message) = (opts.clone(), counters.clone(), message.clone());
        tasks.push(tokio::spawn(async move {
            smtp_session(&opts, &counters, &message, started, deadline).await
        }));
    }
    for _ in 0..opts.imap_readers {
        let (opts, counters) = (opts.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                if let Err(e) = imap_reader(&opts, &counters, deadline).await {
                    counters.failed(&counters.imap_failed, "IMAP", &e);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }));
    }
    for user in opts.pop_users.clone() {
        let (opts, counters) = (opts.clone(), counters.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                match pop3_download(&opts, &user).await {
                    Ok(n) => {
                        counters.pop3_messages.fetch_add(n, Ordering::Relaxed);
                    }
                    Err(e) => counters.failed(&counters.pop3_failed, "POP3", &e),
                }
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        }));
    }
    let sampler = tokio::spawn(sample(opts.clone(), counters.clone(), started, deadline));
    for t in tasks {
        t.await?;
    }
    sampler.await??;
    let c = &counters;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "soak {secs:.0} s: smtp {} delivered ({:.1}/s), {} failed; imap {} fetched, {} failed; \
         pop3 {} downloaded, {} failed; relayed to the sink {}",
        c.smtp.load(Ordering::Relaxed),
        c.smtp.load(Ordering::Relaxed) as f64 / secs,
        c.smtp_failed.load(Ordering::Relaxed),
        c.imap_messages.load(Ordering::Relaxed),
        c.imap_failed.load(Ordering::Relaxed),
        c.pop3_messages.load(Ordering::Relaxed),
        c.pop3_failed.load(Ordering::Relaxed),
        c.relayed.load(Ordering::Relaxed),
    );
    if let Some(e) = c
        .first_error
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .as_ref()
    {
        println!("first error: {e}");
    }
    Ok(())
}

/// One SMTP session's loop: a connection per message, paced to the rate when one is set.
async fn smtp_session(
    opts: &Options,
    counters: &Counters,
    message: &[u8],
    started: Instant,
    deadline: Instant,
) {
    while Instant::now() < deadline {
        let seq = counters.next_seq.fetch_add(1, Ordering::Relaxed);
        if opts.rate > 0.0 {
            let due = started + Duration::from_secs_f64(seq as f64 / opts.rate);
            if due >= deadline {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
        let to = if opts.relay_every > 0 && seq.is_multiple_of(opts.relay_every) {
            format!("soak{seq}@sink.example")
        } else if opts.pop_every > 0 && seq % opts.pop_every == 1 && !opts.pop_users.is_empty() {
            let turn = (seq / opts.pop_every) as usize % opts.pop_users.len();
            opts.pop_users[turn].clone()
        } else if opts.boxes > 0 && !seq.is_multiple_of(opts.boxes + 1) {
            let domain = opts
                .reader
                .rsplit_once('@')
                .map_or("example.test", |(_, d)| d);
            format!("box{}@{domain}", seq % opts.boxes)
        } else {
            opts.reader.clone()
        };
        match deliver(opts.smtp, &to, seq, message).await {
            Ok(latency) => {
                counters.smtp.fetch_add(1, Ordering::Relaxed);
                counters
                    .window
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(latency);
            }
            Err(e) => {
                counters.failed(&counters.smtp_failed, "SMTP", &e);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// One message on a connection of its own; the time from the end of DATA to its reply.
async fn deliver(
    target: SocketAddr,
    to: &str,
    seq: u64,
    message: &[u8],
) -> anyhow::Result<Duration> {
    let mut c = Conn::open(target, None).await?;
    c.command(b"MAIL FROM:<soak@bench.example>\r\n", 1)
        .await
        .context("MAIL")?;
    c.command(format!("RCPT TO:<{to}>\r\n").as_bytes(), 1)
        .await
        .context("RCPT")?;
    c.stream.get_mut().write_all(b"DATA\r\n").await?;
    c.expect(3).await.context("DATA")?;
    let header = format!("X-Bench-Seq: {seq}\r\n");
    c.stream.get_mut().write_all(header.as_bytes()).await?;
    c.stream.get_mut().write_all(message).await?;
    c.stream.get_mut().write_all(b".\r\n").await?;
    let sent = Instant::now();
    c.expect(2).await.context("end of data")?;
    let latency = sent.elapsed();
    let _ = c.stream.get_mut().write_all(b"QUIT\r\n").await;
    Ok(latency)
}

/// An IMAP client that stays logged in: every second a NOOP for news, the newest five
/// messages fetched whole, the newest flagged seen.
async fn imap_reader(opts: &Options, counters: &Counters, deadline: Instant) -> anyhow::Result<()> {
    let mut c = Imap::connect(opts.imap).await?;
    c.command(&format!("LOGIN {} {}", opts.reader, opts.password))
        .await?;
    c.command("SELECT INBOX").await?;
    while Instant::now() < deadline {
        c.command("NOOP").await?;
        let n = c.exists;
        if n > 0 {
            let first = n.saturating_sub(4).max(1);
            c.command(&format!("FETCH {first}:{n} (FLAGS BODY.PEEK[])"))
                .await?;
            c.command(&format!("STORE {n} +FLAGS.SILENT (\\Seen)"))
                .await?;
            counters
                .imap_messages
                .fetch_add(n - first + 1, Ordering::Relaxed);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    c.command("LOGOUT").await?;
    Ok(())
}

/// A POP3 download as a client does it: every message retrieved and deleted (at most
/// 200 a session), QUIT. Returns the messages retrieved.
async fn pop3_download(opts: &Options, user: &str) -> anyhow::Result<u64> {
    let (mut s, count) = pop3_login(opts.pop3, user, &opts.password, 64 * 1024).await?;
    let mut line = Vec::new();
    let count = (count as u64).min(200);
    for i in 1..=count {
        s.get_mut()
            .write_all(format!("RETR {i}\r\n").as_bytes())
            .await?;
        pop3_reply(&mut s, &mut line).await?;
        loop {
            line.clear();
            if s.read_until(b'\n', &mut line).await? == 0 {
                bail!("POP3: connection closed in RETR");
            }
            if line == b".\r\n" {
                break;
            }
        }
        s.get_mut()
            .write_all(format!("DELE {i}\r\n").as_bytes())
            .await?;
        pop3_reply(&mut s, &mut line).await?;
    }
    s.get_mut().write_all(b"QUIT\r\n").await?;
    pop3_reply(&mut s, &mut line).await.context("QUIT")?;
    Ok(count)
}

/// The smart host: accepts every message and counts it.
async fn run_sink(listener: TcpListener, counters: Arc<Counters>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let counters = counters.clone();
        tokio::spawn(async move {
            let _ = sink_session(stream, &counters).await;
        });
    }
}

async fn sink_session(stream: TcpStream, counters: &Counters) -> anyhow::Result<()> {
    let mut s = BufReader::new(stream);
    s.get_mut().write_all(b"220 sink.example ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if s.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = line
            .get(..4)
            .map(|v| v.to_ascii_uppercase())
            .unwrap_or_default();
        let reply: &[u8] = match verb.as_slice() {
            b"EHLO" => b"250-sink.example\r\n250 PIPELINING\r\n",
            b"DATA" => {
                s.get_mut().write_all(b"354 go on\r\n").await?;
                loop {
                    line.clear();
                    if s.read_until(b'\n', &mut line).await? == 0 {
                        return Ok(());
                    }
                    if line == b".\r\n" {
                        break;
                    }
                }
                counters.relayed.fetch_add(1, Ordering::Relaxed);
                b"250 accepted\r\n"
            }
            b"QUIT" => {
                s.get_mut().write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => b"250 ok\r\n",
        };
        s.get_mut().write_all(reply).await?;
    }
}

/// What a shell command prints; None without a command or when it cannot run.
async fn command_output(command: Option<String>) -> Option<Vec<u8>> {
    let command = command?;
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("sh")
            .args(["-c", &command])
            .output()
    })
    .await
    .ok()?
    .ok()?;
    Some(out.stdout)
}

/// The server's latency histograms as the metrics command prints them; empty when unknown.
async fn server_histograms(command: Option<String>) -> BTreeMap<String, (f64, f64)> {
    command_output(command)
        .await
        .map(|text| probes::histograms(&String::from_utf8_lossy(&text)))
        .unwrap_or_default()
}

async fn sample(
    opts: Options,
    counters: Arc<Counters>,
    started: Instant,
    deadline: Instant,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&opts.csv).with_context(|| format!("{}", opts.csv.display()))?,
    );
    writeln!(
        out,
        "seconds,smtp_per_s,p50_ms,p99_ms,p999_ms,smtp_failed,imap_msgs_per_s,pop3_msgs_per_s,\
         relayed_per_s,rss_mb,data_mb,pending_compaction_mb,running_compactions,\
         delayed_write_rate,write_stopped,memtables_mb,table_readers_mb,block_cache_mb,\
         listed_messages,gannet_cores,busy_cores,iowait_cores,steal_cores,delivery_ms,\
         scan_ms,commit_wait_ms,group_commit_ms,group_write_ms,groups_per_s,cpu_speed_ms,level0_files_max,immutable_memtables,running_flushes,\
         rss_anon_mb,rss_file_mb,c_heap_mb,c_heap_free_mb,heap_committed_mb"
    )?;
    let every = Duration::from_secs(opts.interval.max(1));
    let mut last = started;
    let take = |c: &AtomicU64, seen: &mut u64| {
        let now = c.load(Ordering::Relaxed);
        let delta = now - *seen;
        *seen = now;
        delta
    };
    let (mut smtp, mut failed, mut imap, mut pop3, mut relayed) = (0, 0, 0, 0, 0);
    let mut cpu = CpuTicks::read(opts.watch_pid);
    let mut histograms = server_histograms(opts.metrics_command.clone()).await;
    loop {
        let next = last + every;
        tokio::time::sleep_until(next.min(deadline).into()).await;
        let now = Instant::now();
        let secs = now.duration_since(last).as_secs_f64().max(1e-9);
        let mut window =
            std::mem::take(&mut *counters.window.lock().unwrap_or_else(|p| p.into_inner()));
        window.sort_unstable();
        let stats: Option<serde_json::Value> = command_output(opts.stats_command.clone())
            .await
            .and_then(|out| serde_json::from_slice(&out).ok());
        let cpu_now = CpuTicks::read(opts.watch_pid);
        let cores = match (&cpu_now, &cpu) {
            (Some(now), Some(then)) => now.cores_since(then),
            _ => None,
        }
        .map_or_else(
            || vec![String::new(); 4],
            |c| c.iter().map(|v| format!("{v:.2}")).collect(),
        );
        cpu = cpu_now;
        let histograms_now = server_histograms(opts.metrics_command.clone()).await;
        let stage = |name: &str| {
            probes::mean_ms(&histograms, &histograms_now, name)
                .map(|(ms, n)| (format!("{ms:.3}"), n))
        };
        let stage_ms = |name: &str| stage(name).map_or(String::new(), |(ms, _)| ms);
        let stages = [
            stage_ms("gannet_delivery"),
            stage_ms("gannet_spam_scan"),
            stage_ms("gannet_delivery_commit"),
            stage_ms("gannet_store_commit"),
            stage_ms("gannet_store_write"),
            stage("gannet_store_write").map_or(String::new(), |(_, n)| format!("{:.1}", n / secs)),
        ];
        histograms = histograms_now;
        let speed = tokio::task::spawn_blocking(probes::cpu_speed_ms)
            .await
            .ok()
            .flatten()
            .map_or(String::new(), |ms| format!("{ms:.2}"));
        let stat = |key: &str| {
            stats
                .as_ref()
                .and_then(|s| s.get(key).cloned())
                .map_or(String::new(), |v| v.to_string())
        };
        let megabytes = |key: &str| {
            stats
                .as_ref()
                .and_then(|s| s.get(key)?.as_f64())
                .map_or(String::new(), |b| format!("{:.1}", b / 1e6))
        };
        let rate = |delta: u64| format!("{:.1}", delta as f64 / secs);
        writeln!(
            out,
            "{:.1},{},{:.3},{:.3},{:.3},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
            now.duration_since(started).as_secs_f64(),
            rate(take(&counters.smtp, &mut smtp)),
            percentile_ms(&window, 0.5),
            percentile_ms(&window, 0.99),
            percentile_ms(&window, 0.999),
            take(&counters.smtp_failed, &mut failed),
            rate(take(&counters.imap_messages, &mut imap)),
            rate(take(&counters.pop3_messages, &mut pop3)),
            rate(take(&counters.relayed, &mut relayed)),
            opts.watch_pid
                .and_then(rss_mb)
                .map_or(String::new(), |m| format!("{m:.1}")),
            opts.watch_dir
                .as_deref()
                .map_or(String::new(), |d| format!("{:.1}", dir_mb(d))),
            megabytes("pending_compaction_bytes"),
            stat("running_compactions"),
            stat("delayed_write_rate"),
            stat("write_stopped"),
            megabytes("memtable_bytes"),
            megabytes("table_readers_bytes"),
            megabytes("block_cache_bytes"),
            stat("listed_messages"),
            cores.join(","),
            stages.join(","),
            speed,
            stat("level0_files_max"),
            stat("immutable_memtables"),
            stat("running_flushes"),
            megabytes("rss_anon_bytes"),
            megabytes("rss_file_bytes"),
            megabytes("c_heap_bytes"),
            megabytes("c_heap_free_bytes"),
            megabytes("heap_committed_bytes"),
        )?;
        out.flush()?;
        last = now;
        if now >= deadline {
            return Ok(());
        }
    }
}
