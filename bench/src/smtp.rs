//! The `smtp` load: concurrent SMTP sessions sending generated messages.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[derive(clap::Args, Clone)]
pub struct Options {
    /// Server address (loopback only).
    #[arg(long)]
    target: SocketAddr,
    /// Messages to send.
    #[arg(long, default_value_t = 1000)]
    count: u64,
    /// Message size in bytes (headers included).
    #[arg(long, default_value_t = 10240)]
    size: usize,
    /// Send this file (an RFC 5322 message, CRLF line ends) instead of a generated one.
    #[arg(long)]
    message: Option<std::path::PathBuf>,
    /// Concurrent sessions.
    #[arg(long, default_value_t = 20)]
    concurrency: usize,
    /// Send MAIL, RCPT and DATA in one write (RFC 2920).
    #[arg(long)]
    pipelining: bool,
    /// Keep each session's connection for all its messages (default: one per message).
    #[arg(long)]
    reuse: bool,
    #[arg(long, default_value = "bench@example.org")]
    from: String,
    #[arg(long, default_value = "rcpt@example.test")]
    to: String,
    /// Client threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 600)]
    max_seconds: u64,
    /// STARTTLS on each connection (TLS 1.3, full handshakes) before the messages.
    #[arg(long)]
    starttls: bool,
    /// Every this many seconds, a line of this CSV file: the rate and the final reply's
    /// latency (p50, p99, p999) in that interval, and with --watch-pid / --watch-dir the
    /// server's resident memory and its data directory's size.
    #[arg(long, value_name = "PATH")]
    interval_csv: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 10)]
    interval: u64,
    /// The server's process id, for its resident memory in the CSV.
    #[arg(long)]
    watch_pid: Option<u32>,
    /// The server's data directory, for its size on disk in the CSV.
    #[arg(long)]
    watch_dir: Option<std::path::PathBuf>,
    /// Each message begins with its own `X-Bench-Seq` header, so that no two are the
    /// same (a store that keeps one copy of identical messages then grows as with real
    /// mail).
    #[arg(long)]
    distinct: bool,
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    let runtime = crate::loopback_runtime(opts.target, opts.threads)?;
    runtime.block_on(load(opts))
}

struct Shared {
    opts: Options,
    tls: Option<TlsConnector>,
    message: Vec<u8>,
    next: AtomicU64,
    failed: AtomicU64,
    deadline: Instant,
    progress: ProgressBar,
    /// Why the first message that failed did (the progress bar's lines are not shown
    /// when standard error is not a terminal).
    first_error: std::sync::Mutex<Option<String>>,
    /// Latencies since the last interval line (when --interval-csv is given).
    window: Option<std::sync::Mutex<Vec<Duration>>>,
}

async fn load(opts: Options) -> anyhow::Result<()> {
    let progress = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(opts.count);
        bar.set_style(ProgressStyle::with_template(
            "{bar:40} {pos}/{len} msgs {per_sec} eta {eta}",
        )?);
        bar
    } else {
        ProgressBar::hidden()
    };
    let shared = Arc::new(Shared {
        tls: if opts.starttls {
            Some(crate::tls::connector(false, false)?)
        } else {
            None
        },
        message: match &opts.message {
            Some(path) => dot_stuff(&std::fs::read(path)?),
            None => make_message(opts.size),
        },
        deadline: Instant::now() + Duration::from_secs(opts.max_seconds),
        next: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        progress,
        first_error: std::sync::Mutex::new(None),
        window: opts
            .interval_csv
            .as_ref()
            .map(|_| std::sync::Mutex::new(Vec::new())),
        opts: opts.clone(),
    });
    let started = Instant::now();
    let tasks: Vec<_> = (0..opts.concurrency.max(1))
        .map(|_| tokio::spawn(session_loop(shared.clone())))
        .collect();
    let (stop_sampling, stopped) = tokio::sync::watch::channel(false);
    let sampler = opts
        .interval_csv
        .clone()
        .map(|path| tokio::spawn(sample(shared.clone(), path, started, stopped)));
    let mut latencies = Vec::with_capacity(opts.count as usize);
    for task in tasks {
        latencies.extend(task.await?);
    }
    let _ = stop_sampling.send(true);
    if let Some(sampler) = sampler {
        sampler.await??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    shared.progress.finish_and_clear();
    let ok = latencies.len() as u64;
    let failed = shared.failed.load(Ordering::Relaxed);
    latencies.sort_unstable();
    let pct = |p: f64| percentile_ms(&latencies, p);
    let mps = ok as f64 / elapsed;
    let mbps = mps * shared.message.len() as f64 / 1e6;
    println!(
        "{} messages of {} bytes, concurrency {}, {}{}: {ok} accepted, {failed} failed in {elapsed:.2} s",
        opts.count,
        shared.message.len(),
        opts.concurrency,
        if opts.reuse { "connections reused" } else { "one connection per message" },
        if opts.pipelining { ", pipelined" } else { "" },
    );
    if opts.starttls {
        println!("every connection upgraded with STARTTLS (TLS 1.3, full handshake)");
    }
    println!("throughput: {mps:.0} msgs/s, {mbps:.1} MB/s");
    println!(
        "latency of the final reply: p50 {:.2} ms, p99 {:.2} ms, p999 {:.2} ms",
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    println!(
        "result ok={ok} failed={failed} secs={elapsed:.3} mps={mps:.1} mbps={mbps:.2} p50_ms={:.3} p99_ms={:.3} p999_ms={:.3}",
        pct(0.5),
        pct(0.99),
        pct(0.999)
    );
    if failed > 0 {
        let first = shared
            .first_error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| "past --max-seconds".into());
        bail!("{failed} messages failed; the first: {first}");
    }
    Ok(())
}

/// Writes a CSV line every `--interval` seconds (and one for the last part) until
/// `stopped`: seconds since the start, messages accepted in the interval, their rate,
/// the final reply's p50/p99/p999 in ms, the server's RSS in MB and its data directory in
/// MB (empty when not watched).
async fn sample(
    shared: Arc<Shared>,
    path: std::path::PathBuf,
    started: Instant,
    mut stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&path).with_context(|| format!("{}", path.display()))?,
    );
    writeln!(
        out,
        "seconds,messages,msgs_per_s,p50_ms,p99_ms,p999_ms,rss_mb,data_mb"
    )?;
    let every = Duration::from_secs(shared.opts.interval.max(1));
    let mut last = started;
    loop {
        let done = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            _ = stopped.wait_for(|s| *s) => true,
        };
        let now = Instant::now();
        let mut window = match &shared.window {
            Some(w) => std::mem::take(&mut *w.lock().unwrap_or_else(|p| p.into_inner())),
            None => Vec::new(),
        };
        window.sort_unstable();
        let pct = |p: f64| percentile_ms(&window, p);
        let secs = now.duration_since(last).as_secs_f64().max(1e-9);
        let rss = shared.opts.watch_pid.and_then(rss_mb);
        let data = shared.opts.watch_dir.as_deref().map(dir_mb);
        writeln!(
            out,
            "{:.1},{},{:.1},{:.3},{:.3},{:.3},{},{}",
            now.duration_since(started).as_secs_f64(),
            window.len(),
            window.len() as f64 / secs,
            pct(0.5),
            pct(0.99),
            pct(0.999),
            rss.map_or(String::new(), |m| format!("{m:.1}")),
            data.map_or(String::new(), |m| format!("{m:.1}")),
        )?;
        out.flush()?;
        last = now;
        if done {
            return Ok(());
        }
    }
}

/// The `p` quantile of sorted latencies, in ms (0 when there are none).
pub(crate) fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i].as_secs_f64() * 1000.0
}

/// A process's resident memory in MB (VmRSS of /proc/PID/status).
pub(crate) fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// The bytes of the files under `dir`, in MB.
pub(crate) fn dir_mb(dir: &std::path::Path) -> f64 {
    fn walk(dir: &std::path::Path, depth: usize) -> u64 {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() && depth < 8 => walk(&e.path(), depth + 1),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(dir, 0) as f64 / 1e6
}

/// `message` as DATA sends it: lines starting with a dot get another (RFC 5321 4.5.2),
/// and it ends with CRLF.
fn dot_stuff(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 64);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A message of exactly `size` bytes: a few headers and 76-character lines of text.
pub(crate) fn make_message(size: usize) -> Vec<u8> {
    let mut m =
        b"From: bench@example.org\r\nTo: rcpt@example.test\r\nSubject: gannet-bench\r\n\r\n"
            .to_vec();
    let line = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 the quick fox\r\n";
    while m.len() + line.len() <= size {
        m.extend_from_slice(line);
    }
    while m.len() + 2 < size {
        m.push(b'x');
    }
    m.extend_from_slice(b"\r\n");
    m
}

/// One session slot: takes messages until none are left, returns their latencies.
async fn session_loop(shared: Arc<Shared>) -> Vec<Duration> {
    let mut latencies = Vec::new();
    let mut conn: Option<Conn> = None;
    loop {
        let seq = shared.next.fetch_add(1, Ordering::Relaxed);
        if seq >= shared.opts.count {
            break;
        }
        if Instant::now() > shared.deadline {
            shared.failed.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        let result = send_one(&shared, &mut conn, seq).await;
        match result {
            Ok(latency) => {
                latencies.push(latency);
                if let Some(window) = &shared.window {
                    if let Ok(mut w) = window.lock() {
                        w.push(latency);
                    }
                }
            }
            Err(e) => {
                shared.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = shared.first_error.lock() {
                    first.get_or_insert_with(|| format!("{e:#}"));
                }
                shared.progress.println(format!("message failed: {e:#}"));
                conn = None;
            }
        }
        shared.progress.inc(1);
        if !shared.opts.reuse {
            if let Some(mut c) = conn.take() {
                let _ = c.command(b"QUIT\r\n", 1).await;
            }
        }
    }
    if let Some(mut c) = conn.take() {
        let _ = c.command(b"QUIT\r\n", 1).await;
    }
    latencies
}

/// A byte stream: TCP, or TLS over TCP after STARTTLS.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) struct Conn {
    pub(crate) stream: BufReader<Box<dyn Io>>,
    line: String,
}

impl Conn {
    pub(crate) async fn open(
        target: SocketAddr,
        tls: Option<&TlsConnector>,
    ) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(target).await.context("connect")?;
        stream.set_nodelay(true)?;
        let mut c = Conn {
            stream: BufReader::new(Box::new(stream)),
            line: String::new(),
        };
        c.expect(2).await.context("greeting")?;
        c.command(b"EHLO bench.example.org\r\n", 1)
            .await
            .context("EHLO")?;
        if let Some(connector) = tls {
            c.command(b"STARTTLS\r\n", 1).await.context("STARTTLS")?;
            let placeholder: Box<dyn Io> = Box::new(tokio::io::empty());
            let plain = std::mem::replace(&mut c.stream, BufReader::new(placeholder));
            let secured = connector
                .connect(crate::tls::server_name(), plain.into_inner())
                .await
                .context("TLS handshake")?;
            c.stream = BufReader::new(Box::new(secured));
            c.command(b"EHLO bench.example.org\r\n", 1)
                .await
                .context("EHLO after STARTTLS")?;
        }
        Ok(c)
    }

    /// Reads one reply (all its lines) and checks its class.
    pub(crate) async fn expect(&mut self, class: u8) -> anyhow::Result<()> {
        loop {
            self.line.clear();
            if self.stream.read_line(&mut self.line).await? == 0 {
                bail!("connection closed");
            }
            let bytes = self.line.as_bytes();
            if bytes.len() < 4 {
                bail!("bad reply {:?}", self.line);
            }
            if bytes[3] == b' ' {
                if bytes[0] != b'0' + class {
                    bail!("unexpected reply {:?}", self.line.trim_end());
                }
                return Ok(());
            }
        }
    }

    /// Writes `bytes` and reads `replies` replies, all of class 2.
    pub(crate) async fn command(&mut self, bytes: &[u8], replies: usize) -> anyhow::Result<()> {
        self.stream.get_mut().write_all(bytes).await?;
        for _ in 0..replies {
            self.expect(2).await?;
        }
        Ok(())
    }
}

async fn send_one(shared: &Shared, conn: &mut Option<Conn>, seq: u64) -> anyhow::Result<Duration> {
    let opts = &shared.opts;
    if conn.is_none() {
        *conn = Some(Conn::open(opts.target, shared.tls.as_ref()).await?);
    }
    let c = conn.as_mut().expect("just opened");
    let mail = format!("MAIL FROM:<{}>\r\n", opts.from);
    let rcpt = format!("RCPT TO:<{}>\r\n", opts.to);
    if opts.pipelining {
        let group = format!("{mail}{rcpt}DATA\r\n");
        c.stream.get_mut().write_all(group.as_bytes()).await?;
        c.expect(2).await.context("MAIL")?;
        c.expect(2).await.context("RCPT")?;
        c.expect(3).await.context("DATA")?;
    } else {
        c.command(mail.as_bytes(), 1).await.context("MAIL")?;
        c.command(rcpt.as_bytes(), 1).await.context("RCPT")?;
        c.stream.get_mut().write_all(b"DATA\r\n").await?;
        c.expect(3).await.context("DATA")?;
    }
    if opts.distinct {
        let header = format!("X-Bench-Seq: {seq}\r\n");
        c.stream.get_mut().write_all(header.as_bytes()).await?;
    }
    c.stream.get_mut().write_all(&shared.message).await?;
    c.stream.get_mut().write_all(b".\r\n").await?;
    let sent = Instant::now();
    c.expect(2).await.context("end of data")?;
    Ok(sent.elapsed())
}

#[cfg(test)]
mod tests {
    #[test]
    fn files_are_dot_stuffed() {
        assert_eq!(super::dot_stuff(b"a\r\n.b\r\n..c"), b"a\r\n..b\r\n...c\r\n");
    }

    #[test]
    fn messages_have_the_requested_size() {
        for size in [200, 1024, 10240, 102400] {
            let m = super::make_message(size);
            assert_eq!(m.len(), size);
            assert!(m.ends_with(b"\r\n"));
        }
    }
}
