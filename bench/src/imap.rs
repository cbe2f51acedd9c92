//! The `imap` load: the same measurements as bench/peers/imap-bench.py, with a client
//! whose own parsing costs little, so that the server's speed shows. Against a mailbox
//! that already holds the test messages: LOGIN+SELECT latency, FETCH of metadata,
//! Thunderbird's header fetch (`UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS
//! (...)])`, what it sends to fill a folder's message list), FETCH of every body (MB/s), UID SEARCH (all, a header, the bodies), STORE on 1:*; and POP3
//! RETR of every message (MB/s).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

#[derive(clap::Args)]
pub struct Options {
    /// IMAP address (plain; loopback only).
    #[arg(long)]
    imap: SocketAddr,
    /// POP3 address (plain); POP3 is skipped without it.
    #[arg(long)]
    pop3: Option<SocketAddr>,
    #[arg(long)]
    user: String,
    #[arg(long)]
    password: String,
    /// Repetitions of each measurement.
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Logins timed for login_select.
    #[arg(long, default_value_t = 20)]
    logins: usize,
    /// Only the POP3 measurement (for profiling it alone).
    #[arg(long)]
    pop3_only: bool,
}

/// What Thunderbird sends to fill a folder's message list (its default header set).
const THUNDERBIRD_FETCH: &str = "UID FETCH 1:* (UID RFC822.SIZE FLAGS BODY.PEEK[HEADER.FIELDS \
     (From To Cc Bcc Subject Date Message-ID Priority X-Priority References Newsgroups \
     In-Reply-To Content-Type Reply-To)])";

pub(crate) struct Imap {
    stream: BufReader<TcpStream>,
    tag: u32,
    line: Vec<u8>,
    /// The last `* N EXISTS` the server sent.
    pub(crate) exists: u64,
}

impl Imap {
    pub(crate) async fn connect(addr: SocketAddr) -> anyhow::Result<Imap> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let mut c = Imap {
            stream: BufReader::with_capacity(256 * 1024, stream),
            tag: 0,
            line: Vec::new(),
            exists: 0,
        };
        c.read_line().await?;
        Ok(c)
    }

    async fn read_line(&mut self) -> anyhow::Result<()> {
        self.line.clear();
        if self.stream.read_until(b'\n', &mut self.line).await? == 0 {
            bail!("connection closed");
        }
        Ok(())
    }

    /// Sends a command; reads until its tagged reply. Returns the bytes of literals seen
    /// and the untagged lines' count.
    pub(crate) async fn command(&mut self, text: &str) -> anyhow::Result<(u64, usize)> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.stream
            .get_mut()
            .write_all(format!("{tag} {text}\r\n").as_bytes())
            .await?;
        let mut literal_bytes = 0u64;
        let mut untagged = 0;
        let mut skip = vec![0u8; 64 * 1024];
        loop {
            self.read_line().await?;
            if self.line.starts_with(tag.as_bytes()) && self.line.get(tag.len()) == Some(&b' ') {
                if !self.line[tag.len() + 1..].starts_with(b"OK") {
                    bail!("{text}: {}", String::from_utf8_lossy(&self.line).trim_end());
                }
                return Ok((literal_bytes, untagged));
            }
            if self.line.starts_with(b"* ") {
                untagged += 1;
                let words: Vec<&[u8]> = self.line.split(|&b| b == b' ').collect();
                if let [_, n, kind, ..] = words.as_slice() {
                    if kind.starts_with(b"EXISTS") {
                        if let Some(n) = std::str::from_utf8(n).ok().and_then(|n| n.parse().ok()) {
                            self.exists = n;
                        }
                    }
                }
            }
            // A line ending in {n} is followed by n bytes of literal, then the line goes on.
            while let Some(n) = literal_size(&self.line) {
                literal_bytes += n;
                let mut left = n as usize;
                while left > 0 {
                    let take = left.min(skip.len());
                    self.stream.read_exact(&mut skip[..take]).await?;
                    left -= take;
                }
                self.read_line().await?;
            }
        }
    }
}

fn literal_size(line: &[u8]) -> Option<u64> {
    let line = line.strip_suffix(b"\r\n")?;
    let inner = line.strip_suffix(b"}")?;
    let open = inner.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&inner[open + 1..]).ok()?.parse().ok()
}

fn stats(label: &str, values: &mut [f64], unit: &str) {
    values.sort_by(f64::total_cmp);
    let median = values[values.len() / 2];
    println!(
        "{label:<18} {:>10.2} / {:>10.2} / {:>10.2} {unit}",
        values[0],
        median,
        values[values.len() - 1]
    );
    println!("result {label}={median:.3}");
}

pub fn run(opts: Options) -> anyhow::Result<()> {
    // One connection at a time: a runtime on this thread alone, so that each read's
    // wake-up is not handed from an I/O thread to this one (two thread switches per
    // reply, the client's cost, which hid part of the servers' difference).
    if !opts.imap.ip().is_loopback() || opts.pop3.is_some_and(|p| !p.ip().is_loopback()) {
        bail!("refusing to load a non-loopback address");
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if let (true, Some(pop3)) = (opts.pop3_only, opts.pop3) {
            let mut mbps = Vec::new();
            for _ in 0..opts.runs {
                mbps.push(pop3_retr_all(pop3, &opts.user, &opts.password).await?);
            }
            stats("pop3_retr_MBps", &mut mbps, "MB/s");
            return Ok(());
        }
        let login = format!("LOGIN \"{}\" \"{}\"", opts.user, opts.password);
        let mut times = Vec::new();
        for _ in 0..opts.logins {
            let t = Instant::now();
            let mut c = Imap::connect(opts.imap).await?;
            c.command(&login).await?;
            c.command("SELECT INBOX").await?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            c.command("LOGOUT").await.ok();
        }
        stats("login_select", &mut times, "ms");
        let mut c = Imap::connect(opts.imap).await?;
        c.command(&login).await?;
        let (_, n) = c.command("SELECT INBOX").await?;
        let _ = n;
        let timed =
            |values: &mut Vec<f64>, t: Instant| values.push(t.elapsed().as_secs_f64() * 1000.0);
        let mut headers = vec![];
        let (mut meta, mut body, mut body_mbps, mut all, mut subj, mut text, mut add, mut del) = (
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
            vec![],
        );
        let mut messages = 0;
        for _ in 0..opts.runs {
            let t = Instant::now();
            let (_, count) = c.command("FETCH 1:* (FLAGS RFC822.SIZE ENVELOPE)").await?;
            messages = count;
            timed(&mut meta, t);
            let t = Instant::now();
            c.command(THUNDERBIRD_FETCH).await?;
            timed(&mut headers, t);
            let t = Instant::now();
            let (bytes, _) = c.command("FETCH 1:* BODY.PEEK[]").await?;
            let secs = t.elapsed().as_secs_f64();
            body.push(secs * 1000.0);
            body_mbps.push(bytes as f64 / secs / 1e6);
            let t = Instant::now();
            c.command("UID SEARCH ALL").await?;
            timed(&mut all, t);
            let t = Instant::now();
            c.command("UID SEARCH SUBJECT \"the\"").await?;
            timed(&mut subj, t);
            let t = Instant::now();
            c.command("UID SEARCH BODY \"unsubscribe\"").await?;
            timed(&mut text, t);
            let t = Instant::now();
            c.command("STORE 1:* +FLAGS.SILENT (\\Flagged)").await?;
            timed(&mut add, t);
            let t = Instant::now();
            c.command("STORE 1:* -FLAGS.SILENT (\\Flagged)").await?;
            timed(&mut del, t);
        }
        c.command("LOGOUT").await.ok();
        println!(
            "{messages} messages; min / median / max of {} runs",
            opts.runs
        );
        stats("fetch_meta", &mut meta, "ms");
        stats("fetch_headers_tb", &mut headers, "ms");
        stats("fetch_body", &mut body, "ms");
        stats("fetch_body_MBps", &mut body_mbps, "MB/s");
        stats("search_all", &mut all, "ms");
        stats("search_subj", &mut subj, "ms");
        stats("search_body", &mut text, "ms");
        stats("store_add", &mut add, "ms");
        stats("store_del", &mut del, "ms");
        if let Some(pop3) = opts.pop3 {
            let mut mbps = Vec::new();
            for _ in 0..opts.runs {
                mbps.push(pop3_retr_all(pop3, &opts.user, &opts.password).await?);
            }
            stats("pop3_retr_MBps", &mut mbps, "MB/s");
        }
        Ok(())
    })
}

/// Reads one POP3 reply line into `line`; an error unless it is `+OK`.
pub(crate) async fn pop3_reply(
    s: &mut BufReader<TcpStream>,
    line: &mut Vec<u8>,
) -> anyhow::Result<()> {
    line.clear();
    s.read_until(b'\n', line).await?;
    if !line.starts_with(b"+OK") {
        bail!("POP3: {}", String::from_utf8_lossy(line).trim_end());
    }
    Ok(())
}

/// Connects, logs in with USER and PASS, and asks STAT: the session and the message count.
pub(crate) async fn pop3_login(
    addr: SocketAddr,
    user: &str,
    password: &str,
    buffer: usize,
) -> anyhow::Result<(BufReader<TcpStream>, usize)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut s = BufReader::with_capacity(buffer, stream);
    let mut line = Vec::new();
    pop3_reply(&mut s, &mut line).await?;
    for cmd in [
        format!("USER {user}\r\n"),
        format!("PASS {password}\r\n"),
        "STAT\r\n".to_string(),
    ] {
        s.get_mut().write_all(cmd.as_bytes()).await?;
        pop3_reply(&mut s, &mut line).await.context("login")?;
    }
    let count = String::from_utf8_lossy(&line)
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Ok((s, count))
}

/// USER, PASS, STAT, RETR every message (one at a time, as clients do), QUIT: MB/s of
/// message lines (each with its CRLF, as sent: byte-stuffed).
///
/// A blocking client on its own thread, as `fetchmail` or `poplib` are: one `write` per
/// RETR and one `read` per arrival, the end found by one search for the terminator. One
/// RETR at a time, the rate is a round trip, and an asynchronous client adds its own
/// wake-ups to each (the servers' difference then shows less).
async fn pop3_retr_all(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<f64> {
    let (user, password) = (user.to_string(), password.to_string());
    tokio::task::spawn_blocking(move || pop3_retr_blocking(addr, &user, &password)).await?
}

fn pop3_retr_blocking(addr: SocketAddr, user: &str, password: &str) -> anyhow::Result<f64> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut filled = 0;
    // Reads until `buf[..filled]` holds `end`; where it ends. An error unless it starts
    // with +OK.
    let mut reply =
        |s: &mut std::net::TcpStream, filled: &mut usize, end: &[u8]| -> anyhow::Result<Vec<u8>> {
            let finder = memchr::memmem::Finder::new(end);
            let mut searched = 0;
            loop {
                if let Some(at) = finder.find(&buf[searched..*filled]) {
                    if !buf.starts_with(b"+OK") {
                        bail!(
                            "POP3: {}",
                            String::from_utf8_lossy(&buf[..*filled]).trim_end()
                        );
                    }
                    let end_at = searched + at + end.len();
                    let content = buf[..end_at].to_vec();
                    buf.copy_within(end_at..*filled, 0);
                    *filled -= end_at;
                    return Ok(content);
                }
                searched = filled.saturating_sub(end.len() - 1).max(searched);
                if *filled == buf.len() {
                    buf.resize(buf.len() * 2, 0);
                }
                let n = s.read(&mut buf[*filled..])?;
                if n == 0 {
                    bail!("POP3: the server closed the connection");
                }
                *filled += n;
            }
        };
    reply(&mut s, &mut filled, b"\r\n")?;
    let mut stat = Vec::new();
    for cmd in [
        format!("USER {user}\r\n"),
        format!("PASS {password}\r\n"),
        "STAT\r\n".to_string(),
    ] {
        s.write_all(cmd.as_bytes())?;
        stat = reply(&mut s, &mut filled, b"\r\n").context("login")?;
    }
    let count: usize = String::from_utf8_lossy(&stat)
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let started = Instant::now();
    let mut bytes = 0u64;
    for i in 1..=count {
        s.write_all(format!("RETR {i}\r\n").as_bytes())?;
        let answer = reply(&mut s, &mut filled, b"\r\n.\r\n")?;
        // The lines between the +OK line and the terminating ".\r\n".
        let first = memchr::memmem::find(&answer, b"\r\n").map_or(0, |at| at + 2);
        bytes += answer.len().saturating_sub(first + 3) as u64;
    }
    let secs = started
        .elapsed()
        .as_secs_f64()
        .max(Duration::from_micros(1).as_secs_f64());
    s.write_all(b"QUIT\r\n")?;
    Ok(bytes as f64 / secs / 1e6)
}
