//! Support for the end-to-end tests: start the real `gannet` binary on a temporary data
//! directory and free loopback ports, run its admin commands, and speak SMTP to it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The `gannet` binary built in the same profile as this test.
pub fn gannet_bin() -> PathBuf {
    bin("gannet")
}

/// A binary of the workspace, next to the test executable's `deps/` folder.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target profile dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built: run `cargo build --release --workspace` first (the README's test command does)",
        path.display()
    );
    path
}

/// A free TCP port on 127.0.0.1, never one handed out before in this process: the
/// kernel may give a port it just freed to the next caller, and `gannet serve` binds with
/// `SO_REUSEPORT`, so two test servers given one port would both listen on it and share
/// its connections silently.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let mut given = GIVEN.lock().unwrap_or_else(|p| p.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// dnsmasq answering for the test zones only; stopped when dropped.
pub struct Dns {
    child: Child,
    pub addr: SocketAddr,
}

impl Dns {
    /// `records`: dnsmasq options such as `--mx-host=dest.test,mx1.dest.test,10`.
    pub fn start(records: &[String]) -> Dns {
        let port = free_port();
        let child = Command::new("dnsmasq")
            .args([
                "--keep-in-foreground",
                "--no-resolv",
                "--no-hosts",
                "--no-poll",
                "--bind-interfaces",
                "--listen-address=127.0.0.1",
                "--local=/test/",
                "--log-facility=-",
                "--user=root",
                "--pid-file=",
                &format!("--port={port}"),
            ])
            .args(records)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (apt-get install dnsmasq-base)");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        // Ready when it answers over TCP.
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Dns { child, addr }
    }
}

impl Drop for Dns {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `gannet serve` process on its own data directory; stopped when dropped.
pub struct Server {
    pub dir: tempfile::TempDir,
    extra: String,
    /// The loopback address every listener binds.
    ip: std::net::IpAddr,
    started_once: bool,
    pub smtp: SocketAddr,
    /// Submission with STARTTLS (587 in production).
    pub submission: SocketAddr,
    /// Submission over implicit TLS (465 in production).
    pub submissions: SocketAddr,
    pub pop3: SocketAddr,
    pub pop3s: SocketAddr,
    pub imap: SocketAddr,
    pub imaps: SocketAddr,
    /// HTTPS: the quarantine's release pages.
    pub web: SocketAddr,
    /// The admin console (plain HTTP on loopback).
    pub admin: SocketAddr,
    pub config: PathBuf,
    child: Option<Child>,
}

impl Server {
    /// A data directory and config, with `extra` TOML appended; not started yet.
    pub fn new(extra: &str) -> Server {
        Server::new_on("127.0.0.1", extra)
    }

    /// The same, listening on another loopback address (127.0.0.2, ...), as a second
    /// mail server on "another host" does in the delivery tests.
    pub fn new_on(ip: &str, extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("gannet.toml");
        let unset: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let mut server = Server {
            dir,
            extra: extra.to_string(),
            ip: ip.parse().expect("an IP address"),
            started_once: false,
            smtp: unset,
            submission: unset,
            submissions: unset,
            pop3: unset,
            pop3s: unset,
            imap: unset,
            imaps: unset,
            web: unset,
            admin: unset,
            config,
            child: None,
        };
        server.pick_ports();
        server
    }

    /// Chooses free ports and writes the configuration with them.
    fn pick_ports(&mut self) {
        let ip = self.ip;
        let port = || -> SocketAddr { SocketAddr::new(ip, free_port()) };
        (self.smtp, self.submission, self.submissions) = (port(), port(), port());
        (self.pop3, self.pop3s) = (port(), port());
        (self.imap, self.imaps) = (port(), port());
        self.web = port();
        self.admin = port();
        let text = format!(
            "[server]\nhostname = \"mx.example.test\"\nworkers = 2\nshutdown_grace = \"5s\"\n\n\
             [listen]\nsmtp = \"{}\"\nsubmission = \"{}\"\nsubmissions = \"{}\"\npop3 = \"{}\"\npop3s = \"{}\"\nimap = \"{}\"\nimaps = \"{}\"\nweb = \"{}\"\nadmin = \"{}\"\n\n{}",
            self.smtp, self.submission, self.submissions, self.pop3, self.pop3s, self.imap, self.imaps, self.web, self.admin, self.extra
        );
        // The built-in rules only, unless a test names rule directories: the stock rules
        // the machine may have would change every score (one test loads them itself).
        let text = match (text.contains("[spam]"), text.contains("rules_dirs")) {
            (_, true) => text,
            (true, false) => text.replacen("[spam]\n", "[spam]\nrules_dirs = []\n", 1),
            (false, false) => format!("{text}\n[spam]\nrules_dirs = []\n"),
        };
        // Outbound delivery never asks the machine's resolver: a test that wants DNS
        // names its own server; the others get one where nothing answers.
        let text = if self.extra.contains("[dns]") {
            text
        } else {
            format!("{text}\n[dns]\nnameservers = [\"127.0.0.1:9\"]\n")
        };
        std::fs::write(&self.config, text).unwrap();
    }

    /// Starts a server with the default test configuration.
    pub fn started() -> Server {
        let mut s = Server::new("");
        s.start();
        s
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The server's self-signed certificate (PEM), for clients that verify it.
    pub fn cert(&self) -> PathBuf {
        self.data().join("tls/cert.pem")
    }

    /// Starts `gannet serve` and waits for its SMTP greeting. A port taken meanwhile by a
    /// test running in parallel makes it pick new ones (once the server ran, they stay).
    pub fn start(&mut self) {
        for _ in 0..3 {
            match self.try_start() {
                Ok(()) => return,
                Err(log) if log.contains("cannot listen") && !self.started_once => {
                    self.pick_ports()
                }
                Err(log) => panic!("gannet serve did not start: {log}"),
            }
        }
        panic!("gannet serve found no free ports");
    }

    fn try_start(&mut self) -> Result<(), String> {
        assert!(self.child.is_none(), "already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let child = Command::new(gannet_bin())
            .arg("serve")
            .arg("--config")
            .arg(&self.config)
            .arg("--data")
            .arg(self.data())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start gannet serve");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = TcpStream::connect(self.smtp) {
                let mut buf = [0u8; 64];
                if matches!(s.read(&mut buf), Ok(n) if n >= 3 && &buf[..3] == b"220") {
                    self.started_once = true;
                    return Ok(());
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                return Err(format!("exited with {status}: {}", self.log()));
            }
            assert!(
                Instant::now() < deadline,
                "server did not start: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// kill -9.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, and the exit status once it stopped (within `limit`).
    pub fn terminate(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        // SAFETY: sending a signal to our own child.
        unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs `gannet ARGS --config .. --data ..`.
    pub fn gannet(&self, args: &[&str]) -> Output {
        Command::new(gannet_bin())
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .arg("--data")
            .arg(self.data())
            .output()
            .expect("run gannet")
    }

    /// Runs an admin command that must succeed; returns its standard output.
    pub fn admin(&self, args: &[&str]) -> Vec<u8> {
        let out = self.gannet(args);
        assert!(
            out.status.success(),
            "gannet {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// `curl` over TLS to `scheme://mx.example.test:PORT/PATH`, verifying the server's
    /// certificate by name, as a careful client would; callers add the rest.
    pub fn curl_tls(&self, scheme: &str, port: SocketAddr, path: &str) -> Command {
        let mut c = Command::new("curl");
        c.args([
            "--silent",
            "--show-error",
            "--max-time",
            "30",
            "--ssl-reqd",
            "--cacert",
        ])
        .arg(self.cert())
        .args([
            "--resolve",
            &format!("mx.example.test:{}:127.0.0.1", port.port()),
        ])
        .arg(format!("{scheme}://mx.example.test:{}/{path}", port.port()));
        c
    }

    /// example.test with alice (password Secret123) and bob as an alias of alice.
    pub fn with_example_accounts(&self) {
        self.admin(&["domain", "add", "example.test"]);
        self.admin(&[
            "account",
            "add",
            "alice@example.test",
            "--password",
            "Secret123",
        ]);
        self.admin(&[
            "account",
            "add",
            "carol@example.test",
            "--password",
            "Secret123",
        ]);
        self.admin(&["alias", "add", "bob@example.test", "alice@example.test"]);
    }

    /// `gannet mail list`: (uid, size, subject) per message.
    pub fn mail_list(&self, address: &str) -> Vec<(u32, u64, String)> {
        let out = String::from_utf8(self.admin(&["mail", "list", address])).unwrap();
        out.lines()
            .map(|l| {
                let mut f = l.splitn(3, '\t');
                let uid = f.next().unwrap().parse().unwrap();
                let size = f.next().unwrap().parse().unwrap();
                (uid, size, f.next().unwrap_or("").to_string())
            })
            .collect()
    }

    pub fn mail_get(&self, address: &str, uid: u32) -> Vec<u8> {
        self.admin(&["mail", "get", address, &uid.to_string()])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.terminate(Duration::from_secs(10));
    }
}

/// Splits a stored message into the headers delivery added (Return-Path, the spam
/// verdict's X-Spam-*, Received-SPF, Received) and the message as the client sent it.
pub fn strip_trace_headers(stored: &[u8]) -> (String, &[u8]) {
    let text = stored;
    let mut pos = 0;
    let mut seen_received = false;
    loop {
        let end = text[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| pos + i + 2)
            .expect("header line");
        let line = &text[pos..end];
        let continuation = line.starts_with(b"\t") || line.starts_with(b" ");
        if pos == 0 {
            assert!(
                line.starts_with(b"Return-Path: <"),
                "first line: {:?}",
                String::from_utf8_lossy(line)
            );
        } else if (line.starts_with(b"X-Spam-") || line.starts_with(b"Received-SPF: "))
            && !seen_received
        {
        } else if line.starts_with(b"Received: ") && !seen_received {
            seen_received = true;
        } else if !(continuation && seen_received) {
            break;
        }
        pos = end;
    }
    (
        String::from_utf8_lossy(&text[..pos]).into_owned(),
        &text[pos..],
    )
}

/// A minimal SMTP client for tests that need exact control of the bytes on the wire.
pub struct RawSmtp {
    reader: BufReader<TcpStream>,
    greeting: String,
}

impl RawSmtp {
    pub fn connect(addr: SocketAddr) -> std::io::Result<RawSmtp> {
        Self::start(TcpStream::connect(addr)?)
    }

    /// Connects from another loopback address, such as 127.0.0.2 (not a trusted network).
    pub fn connect_from(addr: SocketAddr, source: &str) -> std::io::Result<RawSmtp> {
        Self::start(connect_from(addr, source)?)
    }

    fn start(stream: TcpStream) -> std::io::Result<RawSmtp> {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut c = RawSmtp {
            reader: BufReader::new(stream),
            greeting: String::new(),
        };
        c.greeting = c.reply()?;
        Ok(c)
    }

    /// The server's first reply (220, or 421 when it refused the connection).
    pub fn greeting(&self) -> &str {
        &self.greeting
    }

    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.reader.get_mut().write_all(bytes)
    }

    /// Reads one reply; returns all its lines joined.
    pub fn reply(&mut self) -> std::io::Result<String> {
        let mut all = String::new();
        loop {
            let mut line = String::new();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "closed",
                ));
            }
            all.push_str(&line);
            if line.len() < 4 || line.as_bytes()[3] != b'-' {
                return Ok(all);
            }
        }
    }

    /// Sends a command line and returns the reply.
    pub fn cmd(&mut self, line: &str) -> std::io::Result<String> {
        self.send(format!("{line}\r\n").as_bytes())?;
        self.reply()
    }

    /// MAIL, RCPT, DATA and an already dot-stuffed body; returns the final reply.
    pub fn send_message(
        &mut self,
        from: &str,
        to: &str,
        stuffed_body: &[u8],
    ) -> std::io::Result<String> {
        for (line, want) in [
            (format!("MAIL FROM:<{from}>"), "250"),
            (format!("RCPT TO:<{to}>"), "250"),
            ("DATA".to_string(), "354"),
        ] {
            let r = self.cmd(&line)?;
            if !r.starts_with(want) {
                return Ok(r);
            }
        }
        self.send(stuffed_body)?;
        self.send(b".\r\n")?;
        self.reply()
    }
}

/// The first line a client connecting from `source` reads: a greeting, or a refusal
/// at connect.
pub fn greeting_from(addr: SocketAddr, source: &str) -> String {
    let stream = connect_from(addr, source).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).expect("a line");
    line
}

/// A TCP connection to `addr` from the local address `source` (e.g. 127.0.0.2).
pub fn connect_from(addr: SocketAddr, source: &str) -> std::io::Result<TcpStream> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    let local: SocketAddr = format!("{source}:0").parse().expect("source address");
    socket.bind(&local.into())?;
    socket.connect(&addr.into())?;
    Ok(socket.into())
}

/// Runs a Python 3 script with arguments; returns stdout, panicking with stderr on failure.
pub fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "python failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a client program with `HOME` set to `home`; returns what it printed (standard
/// output, then standard error), panicking with it when the program fails.
pub fn run_client(program: &str, args: &[&std::ffi::OsStr], home: &Path) -> String {
    let out = Command::new(program)
        .args(args)
        .env("HOME", home)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} failed: {log}");
    log
}

impl Server {
    /// An mbsync configuration (in the server's directory) that syncs alice's mailboxes
    /// named by `patterns` over IMAPS into the Maildir `maildir`, with `channel_extra`
    /// lines added to its channel; returns the file's path.
    pub fn mbsync_config(&self, maildir: &Path, patterns: &str, channel_extra: &str) -> PathBuf {
        let rc = self.dir.path().join("mbsyncrc");
        let text = format!(
            "IMAPAccount gannet\nHost localhost\nPort {}\nUser alice@example.test\nPass Secret123\nSSLType IMAPS\nCertificateFile {}\n\n\
             IMAPStore remote\nAccount gannet\n\n\
             MaildirStore local\nPath {}/\nInbox {}/INBOX\nSubFolders Verbatim\n\n\
             Channel sync\nFar :remote:\nNear :local:\nPatterns {patterns}\nSyncState *\nSync All\n{channel_extra}",
            self.imaps.port(),
            self.cert().display(),
            maildir.display(),
            maildir.display()
        );
        std::fs::write(&rc, text).expect("write mbsyncrc");
        rc
    }

    /// Runs mbsync on `rc` (from [`Server::mbsync_config`]); panics if it fails.
    pub fn mbsync(&self, rc: &Path) -> String {
        run_client(
            "mbsync",
            &[
                std::ffi::OsStr::new("-c"),
                rc.as_os_str(),
                std::ffi::OsStr::new("-a"),
            ],
            self.dir.path(),
        )
    }
}

/// Fails the test unless a required client program is installed.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {name}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "{name} is not installed: run the README's test command, which installs it"
    );
}

/// The corpus, with CRLF line endings as an MTA sends them: tests/corpus/, unpacked from
/// tests/corpus.tar.xz by scripts/unpack-corpus.sh (which the test command runs first).
pub fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut out = Vec::new();
    for kind in ["ham", "spam"] {
        let mut files: Vec<PathBuf> = std::fs::read_dir(root.join(kind))
            .unwrap_or_else(|e| {
                panic!(
                    "corpus at {}: {e} (run scripts/unpack-corpus.sh: ./test.sh does)",
                    root.join(kind).display()
                )
            })
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for f in files {
            let raw = std::fs::read(&f).unwrap();
            out.push((
                f.file_name().unwrap().to_string_lossy().into_owned(),
                to_crlf(&raw),
            ));
        }
    }
    out
}

/// Every line ending (CRLF, bare LF, bare CR) as CRLF, and a final one.
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 30);
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'\r' if raw.get(i + 1) == Some(&b'\n') => {
                out.extend_from_slice(b"\r\n");
                i += 1;
            }
            b'\r' | b'\n' => out.extend_from_slice(b"\r\n"),
            b => out.push(b),
        }
        i += 1;
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A tmpfs mounted on a directory for as long as the guard lives (root only).
pub struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (as `mount -o size=` reads it, e.g. "64m") on `dir`; None
    /// when not running as root.
    pub fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        // SAFETY: a plain system call.
        if unsafe { libc::geteuid() } != 0 {
            return None;
        }
        std::fs::create_dir_all(dir).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount tmpfs on {} failed", dir.display());
        Some(Tmpfs {
            dir: dir.to_path_buf(),
        })
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a server still running (a failed test) must not keep it mounted.
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// The number of descriptors process `pid` has open.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

/// A minimal IMAP client over plain TCP (the server must allow LOGIN on loopback): one
/// command at a time, untagged lines collected as text.
pub struct RawImap {
    reader: BufReader<TcpStream>,
    tag: u32,
}

impl RawImap {
    pub fn connect(addr: SocketAddr) -> std::io::Result<RawImap> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        let mut c = RawImap {
            reader: BufReader::new(stream),
            tag: 0,
        };
        let mut greeting = String::new();
        if c.reader.read_line(&mut greeting)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(c)
    }

    /// Sends a command; returns the lines before the tagged reply, and the tagged reply
    /// without its tag.
    pub fn cmd(&mut self, command: &str) -> std::io::Result<(Vec<String>, String)> {
        self.tag += 1;
        let tag = format!("t{}", self.tag);
        self.reader
            .get_mut()
            .write_all(format!("{tag} {command}\r\n").as_bytes())?;
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let line = String::from_utf8_lossy(&line).trim_end().to_string();
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                return Ok((lines, rest.to_string()));
            }
            lines.push(line);
        }
    }
}

/// The EICAR anti-virus test file: 68 bytes every scanner reports, harmless.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

/// A real ClamAV `clamd` in the foreground on a temporary directory, with a config of its
/// own and a signature database made on the spot (`freshclam` has no network here): one
/// `.ndb` line that finds [`EICAR`] (`Eicar-Test-Signature.UNOFFICIAL`). With `ScanMail`
/// it decodes base64 and quoted-printable parts and nested messages, with `ScanArchive`
/// it opens ZIPs. Killed when dropped.
pub struct Clamd {
    pub dir: tempfile::TempDir,
    /// Its `LocalSocket`.
    pub socket: PathBuf,
    /// From the start of the process until it answered PING.
    pub load_time: Duration,
    child: Option<Child>,
}

impl Clamd {
    /// Starts clamd and waits (at most 60 s) until its socket answers `PING` with `PONG`.
    /// Fails the test when clamd is not installed.
    pub fn start() -> Clamd {
        let binary = ["/usr/sbin/clamd", "/usr/bin/clamd"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())
            .expect("clamd is not installed: run scripts/install-deps.sh (Debian's clamav-daemon)");
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let hex: String = EICAR.iter().map(|b| format!("{b:02x}")).collect();
        std::fs::write(
            db.join("eicar.ndb"),
            format!("Eicar-Test-Signature:0:*:{hex}\n"),
        )
        .unwrap();
        let socket = dir.path().join("clamd.sock");
        let config = dir.path().join("clamd.conf");
        std::fs::write(
            &config,
            format!(
                "Foreground yes\nLocalSocket {}\nDatabaseDirectory {}\nUser root\nLogFile {}\n\
                 StreamMaxLength 30M\nScanArchive yes\nScanMail yes\n",
                socket.display(),
                db.display(),
                dir.path().join("clamd.log").display()
            ),
        )
        .unwrap();
        let output = std::fs::File::create(dir.path().join("clamd.out")).unwrap();
        let started = Instant::now();
        let child = Command::new(&binary)
            .arg("--config-file")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .expect("start clamd");
        let mut clamd = Clamd {
            dir,
            socket,
            load_time: Duration::ZERO,
            child: Some(child),
        };
        let deadline = started + Duration::from_secs(60);
        loop {
            if clamd.ping() {
                clamd.load_time = started.elapsed();
                return clamd;
            }
            if let Some(status) = clamd.child.as_mut().unwrap().try_wait().unwrap() {
                clamd.child = None;
                panic!("clamd exited with {status}: {}", clamd.log());
            }
            assert!(
                Instant::now() < deadline,
                "clamd did not answer PING within 60 s: {}",
                clamd.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the socket answers `zPING` with `PONG`.
    pub fn ping(&self) -> bool {
        use std::os::unix::net::UnixStream;
        let Ok(mut stream) = UnixStream::connect(&self.socket) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut reply = Vec::new();
        stream.write_all(b"zPING\0").is_ok()
            && stream.read_to_end(&mut reply).is_ok()
            && reply == b"PONG\0"
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// What clamd printed and logged.
    pub fn log(&self) -> String {
        let read =
            |name: &str| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("clamd.out"), read("clamd.log"))
    }

    /// kill -9 (the socket file stays, nobody listening on it).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Clamd {
    fn drop(&mut self) {
        self.kill();
    }
}
