//! The POP3 server session: a state machine fed command lines, answering with replies and
//! asking the runtime (through [`Step`]) for what needs the world: a TLS handshake,
//! verifying credentials, opening (locking and listing) the maildrop, reading a message,
//! and removing the deleted messages at QUIT.

use std::sync::Arc;

use memchr::memchr;

use crate::auth::sasl::{self, Credentials, SaslError};
use crate::auth::service::AuthOutcome;
use crate::protocol::{Buffers, Protocol};

/// Bytes read ahead at a time (commands are short).
const READ_ROOM: usize = 4096;

#[derive(Debug, Clone)]
pub struct Pop3Config {
    pub hostname: String,
    /// Longest command line accepted (RFC 2449 allows 255 octets; clients send less).
    pub max_line: usize,
    /// Errors tolerated before the session is closed.
    pub max_bad_commands: u32,
}

impl Default for Pop3Config {
    fn default() -> Self {
        Pop3Config {
            hostname: "localhost".into(),
            max_line: 1024,
            max_bad_commands: 20,
        }
    }
}

/// What this connection may do.
#[derive(Debug, Clone, Copy)]
pub struct Pop3Policy {
    /// TLS is active (implicit TLS port).
    pub tls: bool,
    /// STLS may be offered.
    pub stls: bool,
    /// Login is allowed without TLS (loopback tests).
    pub auth_without_tls: bool,
}

/// One message of the maildrop, as the session sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DropMessage {
    pub uid: u32,
    pub size: u64,
    /// The unique id for UIDL: stable across sessions.
    pub uidl: String,
}

/// Why the maildrop could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaildropError {
    /// Another POP3 session holds it.
    InUse,
    Failed,
}

/// What the session asks of the runtime ([`Step::Request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Lock and list the account's INBOX; answer [`Answer::Maildrop`].
    OpenMaildrop { account: u32 },
    /// Read the message; answer [`Answer::Message`] with `top` (body lines for TOP).
    Retrieve { uid: u32, top: Option<u32> },
    /// Remove these messages (QUIT); answer [`Answer::Committed`].
    Commit { deleted: Vec<u32> },
}

/// The runtime's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Maildrop(Result<Vec<DropMessage>, MaildropError>),
    /// The message (None if it could not be read), and TOP's line count.
    Message {
        message: Option<Vec<u8>>,
        top: Option<u32>,
    },
    /// Whether the deleted messages were removed.
    Committed(bool),
}

/// What the runtime must do next (the shape every protocol shares).
pub type Step = crate::protocol::Step<Request>;

enum State {
    Authorization {
        user: Option<String>,
    },
    /// Waiting for the runtime (credentials, maildrop, message, commit).
    Waiting,
    Transaction,
    Closed,
}

/// A pending request to the runtime, returned by `step` once.
enum Pending {
    StartTls,
    Credentials(Credentials),
    Open(u32),
    Retrieve(u32, Option<u32>),
    Commit(Vec<u32>),
}

pub struct Session {
    config: Arc<Pop3Config>,
    policy: Pop3Policy,
    io: Buffers,
    /// First unprocessed byte of the input.
    pos: usize,
    state: State,
    pending: Option<Pending>,
    /// Reading the response line of AUTH PLAIN.
    sasl_pending: bool,
    account: Option<u32>,
    messages: Vec<DropMessage>,
    deleted: Vec<bool>,
    bad_commands: u32,
}

impl Session {
    pub fn new(config: Arc<Pop3Config>, policy: Pop3Policy, buffer: Vec<u8>) -> Session {
        let mut s = Session {
            config,
            policy,
            io: Buffers::new(buffer),
            pos: 0,
            state: State::Authorization { user: None },
            pending: None,
            sasl_pending: false,
            account: None,
            messages: Vec::new(),
            deleted: Vec::new(),
            bad_commands: 0,
        };
        let greeting = format!("Gannet POP3 server {} ready", s.config.hostname);
        s.ok(&greeting);
        s
    }

    /// The session's buffers, for reuse once it is over.
    pub fn into_buffers(self) -> Buffers {
        self.io
    }

    /// Nothing is in progress: a shutdown may close this session now.
    /// For the unauthenticated-lifetime clock: None once logged in.
    pub fn lifetime_mark(&self) -> Option<u64> {
        self.account.is_none().then_some(0)
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_none() && !matches!(self.state, State::Waiting)
    }

    /// Ends the session with a last line (idle timeout, shutdown).
    pub fn close_with(&mut self, text: &str) {
        self.err(text);
        self.state = State::Closed;
    }

    // ---- replies ----

    fn ok(&mut self, text: &str) {
        self.line("+OK", text);
    }

    fn err(&mut self, text: &str) {
        self.line("-ERR", text);
    }

    fn line(&mut self, status: &str, text: &str) {
        self.io.output.extend_from_slice(status.as_bytes());
        if !text.is_empty() {
            self.io.output.push(b' ');
            self.io.output.extend_from_slice(text.as_bytes());
        }
        self.io.output.extend_from_slice(b"\r\n");
    }

    fn bad(&mut self, text: &str) {
        self.err(text);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            self.close_with("Too many errors, closing connection");
        }
    }

    // ---- the state machine ----

    pub fn step(&mut self) -> Step {
        loop {
            if let Some(p) = self.pending.take() {
                return match p {
                    Pending::StartTls => Step::StartTls,
                    Pending::Credentials(c) => Step::Authenticate(c),
                    Pending::Open(account) => Step::Request(Request::OpenMaildrop { account }),
                    Pending::Retrieve(uid, top) => Step::Request(Request::Retrieve { uid, top }),
                    Pending::Commit(deleted) => Step::Request(Request::Commit { deleted }),
                };
            }
            match self.state {
                State::Closed => return Step::Close,
                State::Waiting => return Step::NeedInput,
                _ => {}
            }
            let Some(lf) = memchr(b'\n', &self.io.input[self.pos..]) else {
                if self.io.input.len() - self.pos > self.config.max_line {
                    self.pos = self.io.input.len();
                    self.bad("Line too long");
                }
                return Step::NeedInput;
            };
            let start = self.pos;
            let mut end = start + lf;
            self.pos = end + 1;
            if end > start && self.io.input[end - 1] == b'\r' {
                end -= 1;
            }
            if end - start > self.config.max_line {
                self.bad("Line too long");
                continue;
            }
            let line = String::from_utf8_lossy(&self.io.input[start..end]).into_owned();
            if self.sasl_pending {
                self.sasl_pending = false;
                self.plain_response(line.as_bytes());
            } else {
                self.command(&line);
            }
            if matches!(self.pending, Some(Pending::StartTls)) {
                // Bytes sent after STLS in the clear are never read inside TLS.
                self.pos = self.io.input.len();
            }
        }
    }

    fn may_authenticate(&self) -> bool {
        self.policy.tls || self.policy.auth_without_tls
    }

    fn command(&mut self, line: &str) {
        let mut words = line.split(' ');
        let keyword = words.next().unwrap_or("").to_ascii_uppercase();
        let args: Vec<&str> = words.filter(|w| !w.is_empty()).collect();
        let in_transaction = matches!(self.state, State::Transaction);
        match (keyword.as_str(), in_transaction) {
            ("CAPA", _) => self.capa(),
            ("QUIT", false) => {
                self.ok("Gannet POP3 server signing off");
                self.state = State::Closed;
            }
            ("QUIT", true) => {
                let deleted: Vec<u32> = self
                    .messages
                    .iter()
                    .zip(&self.deleted)
                    .filter(|(_, d)| **d)
                    .map(|(m, _)| m.uid)
                    .collect();
                self.state = State::Waiting;
                self.pending = Some(Pending::Commit(deleted));
            }
            ("STLS", false) => self.stls(),
            ("USER", false) => self.user(&args),
            ("PASS", false) => self.pass(line),
            ("AUTH", false) => self.auth(&args),
            ("STAT", true) => {
                let (n, size) = self
                    .live()
                    .fold((0, 0), |(n, s), (_, m)| (n + 1, s + m.size));
                self.ok(&format!("{n} {size}"));
            }
            ("LIST", true) | ("UIDL", true) => self.list(keyword == "UIDL", &args),
            ("RETR", true) => match (self.message_arg(&args), args.len()) {
                (Some(i), 1) => self.retrieve(i, None),
                (Some(_), _) => self.bad("Syntax: RETR msg"),
                (None, _) => {}
            },
            ("TOP", true) => {
                let lines = args.get(1).and_then(|n| n.parse::<u32>().ok());
                match (self.message_arg(&args), lines, args.len()) {
                    (Some(i), Some(lines), 2) => self.retrieve(i, Some(lines)),
                    (Some(_), _, _) => self.bad("Syntax: TOP msg lines"),
                    (None, _, _) => {}
                }
            }
            ("DELE", true) => {
                if let Some(i) = self.message_arg(&args) {
                    self.deleted[i] = true;
                    self.ok(&format!("message {} deleted", i + 1));
                }
            }
            ("RSET", true) => {
                self.deleted.iter_mut().for_each(|d| *d = false);
                let n = self.messages.len();
                self.ok(&format!("maildrop has {n} messages"));
            }
            ("NOOP", true) => self.ok(""),
            ("STAT" | "LIST" | "UIDL" | "RETR" | "TOP" | "DELE" | "RSET" | "NOOP", false) => {
                self.bad("Not allowed before authentication")
            }
            ("STLS" | "USER" | "PASS" | "AUTH", true) => self.bad("Already authenticated"),
            _ => self.bad("Unknown command"),
        }
    }

    fn capa(&mut self) {
        let mut lines = vec!["TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"];
        let authorization = matches!(self.state, State::Authorization { .. });
        if authorization && self.may_authenticate() {
            lines.extend(["USER", "SASL PLAIN"]);
        }
        if authorization && self.policy.stls && !self.policy.tls {
            lines.push("STLS");
        }
        lines.push("IMPLEMENTATION Gannet");
        self.ok("Capability list follows");
        for l in lines {
            self.io.output.extend_from_slice(l.as_bytes());
            self.io.output.extend_from_slice(b"\r\n");
        }
        self.io.output.extend_from_slice(b".\r\n");
    }

    fn stls(&mut self) {
        if self.policy.tls {
            return self.bad("Already using TLS");
        }
        if !self.policy.stls {
            return self.bad("STLS not available");
        }
        self.ok("Begin TLS negotiation");
        self.pending = Some(Pending::StartTls);
    }

    /// The TLS handshake after STLS succeeded; the session starts over (RFC 2595 4).
    pub fn tls_started(&mut self) {
        self.policy.tls = true;
        self.io.input.clear();
        self.pos = 0;
        self.state = State::Authorization { user: None };
    }

    fn user(&mut self, args: &[&str]) {
        if !self.may_authenticate() {
            return self.bad("[AUTH] Plaintext authentication requires TLS (use STLS)");
        }
        match args {
            [name] => {
                self.state = State::Authorization {
                    user: Some(name.to_string()),
                };
                self.ok("send PASS");
            }
            _ => self.bad("Syntax: USER name"),
        }
    }

    fn pass(&mut self, line: &str) {
        let State::Authorization { user: Some(user) } = &self.state else {
            return self.bad("USER first");
        };
        // The password is the rest of the line: it may contain spaces.
        let password = line.get(5..).unwrap_or("").to_string();
        let username = user.clone();
        self.state = State::Authorization { user: None };
        self.start_auth(Credentials { username, password });
    }

    fn auth(&mut self, args: &[&str]) {
        if args.is_empty() {
            // Some clients ask for the mechanisms this way.
            self.ok("");
            self.io.output.extend_from_slice(b"PLAIN\r\n.\r\n");
            return;
        }
        if !self.may_authenticate() {
            return self.bad("[AUTH] Authentication requires TLS (use STLS)");
        }
        if !args[0].eq_ignore_ascii_case("PLAIN") {
            return self.bad("Unsupported authentication mechanism");
        }
        match args.get(1) {
            Some(initial) => self.plain_response(initial.as_bytes()),
            None => {
                self.io.output.extend_from_slice(b"+ \r\n");
                self.sasl_pending = true;
            }
        }
    }

    fn plain_response(&mut self, line: &[u8]) {
        match sasl::decode_response(line).and_then(|d| sasl::parse_plain(&d)) {
            Ok(credentials) => self.start_auth(credentials),
            Err(SaslError::Cancelled) => self.bad("Authentication cancelled"),
            Err(SaslError::Malformed) => self.bad("Cannot decode the response"),
            Err(SaslError::AuthzNotPermitted) => self.bad("[AUTH] Authentication failed"),
        }
    }

    fn start_auth(&mut self, credentials: Credentials) {
        if !self.may_authenticate() {
            return self.bad("[AUTH] Authentication requires TLS (use STLS)");
        }
        self.state = State::Waiting;
        self.pending = Some(Pending::Credentials(credentials));
    }

    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        self.state = State::Authorization { user: None };
        match outcome {
            AuthOutcome::Success { account } => {
                self.account = Some(account);
                self.state = State::Waiting;
                self.pending = Some(Pending::Open(account));
            }
            AuthOutcome::Failure => self.bad("[AUTH] Authentication failed"),
            AuthOutcome::LockedOut => {
                self.close_with("[SYS/TEMP] Too many failed logins, try again later")
            }
            AuthOutcome::Unavailable => self.err("[SYS/TEMP] Authentication unavailable"),
        }
    }

    pub fn maildrop_opened(&mut self, result: Result<Vec<DropMessage>, MaildropError>) {
        match result {
            Ok(messages) => {
                let size: u64 = messages.iter().map(|m| m.size).sum();
                self.deleted = vec![false; messages.len()];
                let text = format!(
                    "maildrop locked and ready, {} messages ({size} octets)",
                    messages.len()
                );
                self.messages = messages;
                self.state = State::Transaction;
                self.ok(&text);
            }
            Err(e) => {
                self.account = None;
                self.state = State::Authorization { user: None };
                self.err(match e {
                    MaildropError::InUse => "[IN-USE] Mailbox in use by another POP3 session",
                    MaildropError::Failed => "[SYS/TEMP] Cannot open the mailbox",
                });
            }
        }
    }

    /// Messages not marked deleted, with their 0-based index.
    fn live(&self) -> impl Iterator<Item = (usize, &DropMessage)> {
        self.messages
            .iter()
            .enumerate()
            .filter(|(i, _)| !self.deleted[*i])
    }

    /// The message named by the first argument, if it exists and is not deleted.
    fn message_arg(&mut self, args: &[&str]) -> Option<usize> {
        let Some(n) = args.first().and_then(|a| a.parse::<usize>().ok()) else {
            self.bad("Missing or invalid message number");
            return None;
        };
        if n == 0 || n > self.messages.len() {
            self.err("No such message");
            return None;
        }
        if self.deleted[n - 1] {
            self.err(&format!("Message {n} already deleted"));
            return None;
        }
        Some(n - 1)
    }

    fn list(&mut self, uidl: bool, args: &[&str]) {
        let field = |m: &DropMessage| {
            if uidl {
                m.uidl.clone()
            } else {
                m.size.to_string()
            }
        };
        if args.is_empty() {
            let lines: Vec<String> = self
                .live()
                .map(|(i, m)| format!("{} {}\r\n", i + 1, field(m)))
                .collect();
            self.ok(&format!("{} messages", lines.len()));
            for l in lines {
                self.io.output.extend_from_slice(l.as_bytes());
            }
            self.io.output.extend_from_slice(b".\r\n");
        } else if let Some(i) = self.message_arg(args) {
            let text = format!("{} {}", i + 1, field(&self.messages[i]));
            self.ok(&text);
        }
    }

    fn retrieve(&mut self, index: usize, top: Option<u32>) {
        self.state = State::Waiting;
        self.pending = Some(Pending::Retrieve(self.messages[index].uid, top));
    }

    /// The message asked for by [`Request::Retrieve`] (None if it could not be read).
    pub fn message_read(&mut self, message: Option<&[u8]>, top: Option<u32>) {
        self.state = State::Transaction;
        let Some(message) = message else {
            return self.err("[SYS/TEMP] Cannot read the message");
        };
        let content = match top {
            None => message,
            Some(lines) => top_of(message, lines),
        };
        self.io.output.extend_from_slice(b"+OK ");
        self.io.push_decimal(message.len() as u64);
        self.io.output.extend_from_slice(b" octets\r\n");
        self.io
            .output
            .reserve(content.len() + content.len() / 50 + 8);
        byte_stuff(content, &mut self.io.output);
    }

    /// Reports the removal at QUIT; the session ends.
    pub fn committed(&mut self, ok: bool) {
        if ok {
            self.ok("Gannet POP3 server signing off");
        } else {
            self.err("[SYS/TEMP] Some deleted messages were not removed");
        }
        self.state = State::Closed;
    }
}

/// The header section and the first `lines` lines of the body.
fn top_of(message: &[u8], lines: u32) -> &[u8] {
    let body_start = memchr::memmem::find(message, b"\r\n\r\n").map_or(message.len(), |i| i + 4);
    let mut end = body_start;
    for _ in 0..lines {
        match memchr(b'\n', &message[end..]) {
            Some(i) => end += i + 1,
            None => {
                end = message.len();
                break;
            }
        }
    }
    &message[..end]
}

/// Writes a multi-line response body: lines starting with "." get another, and the
/// terminating line "." follows (RFC 1939 section 3).
fn byte_stuff(content: &[u8], out: &mut Vec<u8>) {
    // Copied in runs between the lines that start with "." (rare): one search for
    // "\n." over the message, not one per line.
    let mut start = 0;
    if content.first() == Some(&b'.') {
        out.push(b'.');
    }
    for dot in memchr::memmem::find_iter(content, b"\n.") {
        out.extend_from_slice(&content[start..=dot]);
        out.push(b'.');
        start = dot + 1;
    }
    out.extend_from_slice(&content[start..]);
    if !content.is_empty() && !content.ends_with(b"\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
}

impl Protocol for Session {
    type Request = Request;
    type Answer = Answer;
    type Context<'a> = ();

    fn step(&mut self, _: &mut ()) -> Step {
        Session::step(self)
    }

    fn answer(&mut self, answer: Answer) {
        match answer {
            Answer::Maildrop(result) => self.maildrop_opened(result),
            Answer::Message { message, top } => self.message_read(message.as_deref(), top),
            Answer::Committed(ok) => self.committed(ok),
        }
    }

    fn tls_started(&mut self) {
        Session::tls_started(self);
    }

    fn auth_result(&mut self, outcome: AuthOutcome) {
        Session::auth_result(self, outcome);
    }

    fn buffers(&mut self) -> &mut Buffers {
        &mut self.io
    }

    fn buffers_ref(&self) -> &Buffers {
        &self.io
    }

    fn prepare_read(&mut self) -> usize {
        if self.pos > 0 {
            self.io.input.drain(..self.pos);
            self.pos = 0;
        }
        READ_ROOM
    }

    fn is_idle(&self) -> bool {
        Session::is_idle(self)
    }

    fn lifetime_mark(&self) -> Option<u64> {
        Session::lifetime_mark(self)
    }

    fn close_idle(&mut self) {
        self.close_with("Idle timeout, closing connection");
    }

    fn close_shutdown(&mut self) {
        self.close_with("[SYS/TEMP] Server shutting down");
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
