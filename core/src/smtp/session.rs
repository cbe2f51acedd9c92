//! The SMTP server session: a sans-IO state machine (RFC 5321, with PIPELINING, SIZE,
//! 8BITMIME, ENHANCEDSTATUSCODES, SMTPUTF8 and CHUNKING).
//!
//! The session owns its input buffer. Commands are parsed where they lie; DATA content is
//! dot-unstuffed in place and BDAT chunks are moved down over the command lines between
//! them, so a message ends up contiguous at the start of the buffer, behind its trace
//! headers, without a copy. That buffer is then handed out whole in a [`Delivery`].

use std::net::IpAddr;
use std::sync::Arc;

use memchr::memchr;

use super::command::{parse_command, Command, CommandError, MailParams, Path};
use super::data::{has_bare_cr_or_lf, DotReader, DotScan};
use super::received::{trace_headers, TraceInfo};
use super::reply::{replies, write_line, Reply};
use crate::auth::sasl::{self, Credentials, SaslError};
use crate::auth::service::AuthOutcome;
use crate::policy::dns_checks::ReverseDns;
use crate::policy::RateKey;
use crate::protocol::{Buffers, Protocol};

/// Limits and names a session works with.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub hostname: String,
    /// Longest command line, CRLF included.
    pub max_command_line: usize,
    pub max_recipients: usize,
    pub max_message_size: usize,
    /// Protocol errors tolerated before the session is closed with 421.
    pub max_bad_commands: u32,
    /// An authenticated user may send only from the addresses of their account.
    pub restrict_sender: bool,
    /// A full mailbox is a permanent failure (552 5.2.2) rather than a temporary one
    /// (452 4.2.2).
    pub over_quota_permanent: bool,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            hostname: "localhost".into(),
            max_command_line: 512,
            max_recipients: 50,
            max_message_size: 50_000_000,
            max_bad_commands: 20,
            restrict_sender: true,
            over_quota_permanent: false,
        }
    }
}

/// What the session needs from the world: time, identifiers and routing decisions.
pub trait Environment {
    /// Seconds since the Unix epoch.
    fn now(&self) -> i64;
    /// A new, unique id for a message.
    fn next_message_id(&mut self) -> u64;
    /// Where mail for `address` (lower-cased) may go.
    fn route(&self, address: &str) -> RcptRoute;
    /// Counts one message against `key`'s hourly limit; false when over it.
    fn admit_message(&mut self, key: RateKey) -> bool;
    /// True when `bytes` more fit in the account's storage quota.
    fn quota_allows(&self, account: u32, bytes: u64) -> bool;
    /// A recipient was refused by policy (unknown, relay, limits, quota): for the
    /// message trace, at most [`MAX_REPORTED_REFUSALS`] times a session. Nothing by
    /// default.
    fn recipient_refused(&mut self, _refusal: &RecipientRefusal<'_>) {}
}

/// Refused recipients a session reports: refusals that are not errors (over the
/// recipient limit, a full mailbox, the hourly limit) never close the session, so
/// without a bound one client could turn endless RCPT lines into trace records.
pub(super) const MAX_REPORTED_REFUSALS: u32 = 32;

/// One recipient refused at RCPT, as [`Environment::recipient_refused`] hears of it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecipientRefusal<'a> {
    /// Seconds since the Unix epoch.
    pub at: i64,
    pub client_ip: IpAddr,
    pub sender: &'a str,
    /// The address as the client wrote it.
    pub recipient: &'a str,
    pub reply: Reply,
}

/// What one connection may do, decided by the runtime when it accepts it.
#[derive(Debug, Clone)]
pub struct ConnectionPolicy {
    pub client_ip: IpAddr,
    /// The client's reverse DNS name, for the `Received:` header.
    pub reverse_dns: ReverseDns,
    /// TLS is active from the first byte (implicit TLS port).
    pub tls: bool,
    /// STARTTLS may be offered.
    pub starttls: bool,
    /// AUTH is allowed without TLS (`plaintext_on_loopback` and a loopback client).
    pub auth_without_tls: bool,
    /// A submission port: AUTH is required before MAIL.
    pub submission: bool,
    /// The client is in the trusted networks: it may relay without AUTH.
    pub trusted: bool,
}

impl ConnectionPolicy {
    /// An MX connection with no TLS and no special rights.
    pub fn plain(client_ip: IpAddr) -> Self {
        ConnectionPolicy {
            client_ip,
            reverse_dns: ReverseDns::NotLookedUp,
            tls: false,
            starttls: false,
            auth_without_tls: false,
            submission: false,
            trusted: false,
        }
    }
}

/// The routing decision for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcptRoute {
    /// Delivered into this account's mailbox.
    Local { account: u32 },
    /// A hosted domain without this address: 550 5.1.1.
    UnknownUser,
    /// A customer's domain this appliance passes mail on for (backup MX, or scan relay
    /// when `scan`): accepted from anyone, queued for the customer's server.
    Forward { scan: bool },
    /// Not a hosted domain: relayed for authenticated or trusted clients, else 554 5.7.1.
    Remote,
    /// The spam-report account (`spam.report_address`): accepted from authenticated users
    /// only, so that no one outside can teach the filter (550 5.7.1).
    Report { account: u32 },
}

/// An accepted recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub address: String,
    /// The local account, or None for a remote address (relayed through the queue).
    pub account: Option<u32>,
    /// A scan-relay address: its queued copy carries the spam verdict's headers.
    pub scan: bool,
}

/// The envelope of a message ready to be stored.
#[derive(Debug, Clone)]
pub struct Envelope {
    pub id: u64,
    /// The reverse-path; empty for the null sender.
    pub reverse_path: String,
    pub recipients: Vec<Recipient>,
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub received_at: i64,
    /// The authenticated account that sent it (None: not authenticated).
    pub submitter: Option<u32>,
    /// The client it came from (None: made here, such as a bounce).
    pub client_ip: Option<IpAddr>,
}

impl Envelope {
    /// The local accounts among the recipients, each once, in id order.
    pub fn local_accounts(&self) -> Vec<u32> {
        let mut accounts: Vec<u32> = self.recipients.iter().filter_map(|r| r.account).collect();
        accounts.sort_unstable();
        accounts.dedup();
        accounts
    }
}

/// A complete message, handed to the runtime to be made durable.
#[derive(Debug)]
pub struct Delivery {
    pub envelope: Envelope,
    /// The buffer the message was received in; the message is `buffer[..message_len]`,
    /// trace headers included.
    pub buffer: Vec<u8>,
    pub message_len: usize,
}

impl Delivery {
    pub fn message(&self) -> &[u8] {
        &self.buffer[..self.message_len]
    }
}

/// How the runtime's attempt to store a [`Delivery`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Durable: the 250 may be sent.
    Stored,
    /// Not stored: a temporary failure is reported.
    Failed,
    /// Not stored: a local recipient's mailbox is full.
    OverQuota,
    /// Not stored: the server's disk is full (452 4.3.1).
    NoSpace,
    /// Not stored: the sender's SPF record says this client may not send for it.
    SpfFail,
    /// Refused: the message carries this virus (from an authenticated or trusted sender:
    /// mail from the outside is held in the quarantine instead).
    Virus(String),
    /// Refused: a forbidden attachment (this one, by this rule).
    Attachment(String),
    /// Not stored: the virus scan could not be done; try again later.
    ScanFailed,
}

/// What the session asks of the runtime ([`Step::Request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Call [`Session::take_delivery`], store it, then answer the [`DeliveryOutcome`].
    Deliver,
}

/// What the runtime must do next (the shape every protocol shares).
pub type Step = crate::protocol::Step<Request>;

struct Helo {
    name: String,
    extended: bool,
}

struct Transaction {
    id: u64,
    reverse_path: String,
    params: MailParams,
    recipients: Vec<Recipient>,
    received_at: i64,
    bdat: Option<BdatProgress>,
    /// The relay rate limit was already counted for this message.
    rate_counted: bool,
}

struct BdatProgress {
    /// Content bytes received so far (trace headers excluded).
    total: u64,
    overflowed: bool,
}

enum Mode {
    Command,
    Data(DotReader),
    /// Reading a BDAT chunk; `refusal` is the reply owed when the chunk is read, if it
    /// is being discarded because the transaction cannot take it.
    BdatChunk {
        remaining: u64,
        last: bool,
        refusal: Option<Reply>,
    },
    /// A message is complete and waits for [`Session::take_delivery`].
    MessageReady,
    /// The runtime is storing the message.
    Storing,
    /// STARTTLS was accepted; the runtime runs the handshake.
    StartTls,
    /// Reading a SASL response line.
    Sasl(SaslStep),
    /// Credentials wait for [`Session::take_credentials`].
    CredentialsReady(Credentials),
    /// The runtime is verifying credentials.
    Authenticating,
    Closed,
}

/// Where a SASL exchange is.
#[derive(Debug, Clone)]
enum SaslStep {
    PlainResponse,
    LoginUsername,
    LoginPassword { username: String },
}

/// Bytes read ahead in command mode; DATA reads more at a time.
const COMMAND_READ: usize = 4096;
const DATA_READ: usize = 64 * 1024;

/// One SMTP server session.
pub struct Session {
    config: Arc<SessionConfig>,
    policy: ConnectionPolicy,
    /// The authenticated account.
    authenticated: Option<u32>,
    io: Buffers,
    /// First unprocessed byte of the input.
    pos: usize,
    /// In command mode during BDAT: the message so far is `input[..msg_len]`.
    msg_len: usize,
    helo: Option<Helo>,
    tx: Option<Transaction>,
    mode: Mode,
    bad_commands: u32,
    /// Refused recipients told to the environment so far (at most
    /// [`MAX_REPORTED_REFUSALS`]).
    refusals_reported: u32,
    /// Messages accepted in this session (for the unauthenticated-lifetime clock).
    accepted: u64,
    /// Discarding an over-long command line up to its end.
    skipping_line: bool,
}

impl Session {
    /// Starts a session; the greeting is already in the output.
    pub fn new(config: Arc<SessionConfig>, policy: ConnectionPolicy, buffer: Vec<u8>) -> Self {
        let mut s = Session {
            config,
            policy,
            authenticated: None,
            io: Buffers::new(buffer),
            pos: 0,
            msg_len: 0,
            helo: None,
            tx: None,
            mode: Mode::Command,
            bad_commands: 0,
            refusals_reported: 0,
            accepted: 0,
            skipping_line: false,
        };
        let greeting = format!("{} ESMTP Gannet", s.config.hostname);
        write_line(&mut s.io.output, 220, "", &greeting, true);
        s
    }

    /// The session's buffers, for reuse once it is over.
    pub fn into_buffers(self) -> Buffers {
        self.io
    }

    /// No transaction is in progress: a shutdown may close this session now.
    pub fn is_idle(&self) -> bool {
        matches!(self.mode, Mode::Command) && self.tx.is_none()
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    /// Ends the session with a final reply (idle timeout, shutdown).
    pub fn close_with(&mut self, reply: Reply) {
        reply.write_to(&mut self.io.output);
        self.mode = Mode::Closed;
    }

    /// The TLS handshake after STARTTLS succeeded: the session starts over (RFC 3207 4.2),
    /// knowing nothing it was told before, and awaits a new EHLO.
    pub fn tls_started(&mut self) {
        self.policy.tls = true;
        self.helo = None;
        self.reset_transaction();
        self.io.input.clear();
        self.pos = 0;
        self.mode = Mode::Command;
    }

    /// The credentials to verify, once they are complete.
    fn take_credentials(&mut self) -> Option<Credentials> {
        match std::mem::replace(&mut self.mode, Mode::Authenticating) {
            Mode::CredentialsReady(c) => Some(c),
            other => {
                self.mode = other;
                None
            }
        }
    }

    /// Reports the verification of the credentials.
    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        self.mode = Mode::Command;
        match outcome {
            AuthOutcome::Success { account } => {
                self.authenticated = Some(account);
                self.reply(replies::AUTH_OK);
            }
            AuthOutcome::Failure => self.error(replies::AUTH_FAILED),
            AuthOutcome::LockedOut => self.close_with(replies::AUTH_LOCKED),
            AuthOutcome::Unavailable => self.reply(replies::AUTH_UNAVAILABLE),
        }
    }

    /// The authenticated account, if any.
    pub fn authenticated(&self) -> Option<u32> {
        self.authenticated
    }

    /// Drops bytes already processed, keeping a message in progress at the start.
    fn compact(&mut self) {
        match &mut self.mode {
            Mode::Data(reader) => reader.compact(&mut self.io.input),
            _ => {
                if self.pos > self.msg_len {
                    self.io.input.drain(self.msg_len..self.pos);
                    self.pos = self.msg_len;
                }
            }
        }
    }

    /// Processes buffered input as far as it can and says what the runtime must do next.
    pub fn step(&mut self, env: &mut dyn Environment) -> Step {
        loop {
            match &mut self.mode {
                Mode::Closed => return Step::Close,
                Mode::MessageReady => return Step::Request(Request::Deliver),
                Mode::StartTls => return Step::StartTls,
                Mode::CredentialsReady(_) => {
                    if let Some(credentials) = self.take_credentials() {
                        return Step::Authenticate(credentials);
                    }
                }
                Mode::Storing | Mode::Authenticating => return Step::NeedInput,
                Mode::Data(reader) => match reader.advance(&mut self.io.input) {
                    DotScan::NeedMore => return Step::NeedInput,
                    DotScan::End { next } => {
                        let (len, overflowed, bare) = (
                            reader.write,
                            reader.overflowed(),
                            reader.saw_bare_line_ending(),
                        );
                        self.pos = next;
                        self.msg_len = len;
                        self.mode = Mode::Command;
                        self.finish_message(overflowed, bare);
                    }
                },
                Mode::BdatChunk { .. } => {
                    if !self.read_chunk() {
                        return Step::NeedInput;
                    }
                }
                Mode::Command | Mode::Sasl(_) => {
                    if !self.next_command(env) {
                        return Step::NeedInput;
                    }
                }
            }
        }
    }

    /// Takes the complete message out of the session, leaving it `fresh` as its new input
    /// buffer (with any pipelined bytes that followed the message).
    /// The name the client gave in EHLO or HELO.
    pub fn helo_name(&self) -> Option<&str> {
        self.helo.as_ref().map(|h| h.name.as_str())
    }

    /// For the unauthenticated-lifetime clock: None once authenticated; before, the
    /// number of messages accepted (each one restarts the clock, so an MX session that
    /// keeps delivering is never cut).
    pub fn lifetime_mark(&self) -> Option<u64> {
        self.authenticated.is_none().then_some(self.accepted)
    }

    /// Whether the client has authenticated.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated.is_some()
    }

    pub fn take_delivery(&mut self, mut fresh: Vec<u8>) -> Option<Delivery> {
        if !matches!(self.mode, Mode::MessageReady) {
            return None;
        }
        let tx = self.tx.take()?;
        fresh.clear();
        fresh.extend_from_slice(&self.io.input[self.pos..]);
        let buffer = std::mem::replace(&mut self.io.input, fresh);
        let message_len = self.msg_len;
        self.pos = 0;
        self.msg_len = 0;
        self.mode = Mode::Storing;
        Some(Delivery {
            envelope: Envelope {
                id: tx.id,
                reverse_path: tx.reverse_path,
                recipients: tx.recipients,
                body_8bit: tx.params.body_8bit,
                smtputf8: tx.params.smtputf8,
                received_at: tx.received_at,
                submitter: self.authenticated,
                client_ip: Some(self.policy.client_ip),
            },
            buffer,
            message_len,
        })
    }

    /// Reports how storing the message ended; the session answers the client.
    pub fn delivered(&mut self, outcome: DeliveryOutcome) {
        let reply = match outcome {
            DeliveryOutcome::Stored => {
                self.accepted += 1;
                replies::QUEUED
            }
            DeliveryOutcome::Failed => replies::STORE_FAILED,
            DeliveryOutcome::OverQuota => self.mailbox_full(),
            DeliveryOutcome::NoSpace => replies::INSUFFICIENT_STORAGE,
            DeliveryOutcome::SpfFail => replies::SPF_FAIL,
            DeliveryOutcome::ScanFailed => replies::SCAN_FAILED,
            DeliveryOutcome::Virus(name) => {
                let text = format!(
                    "Message refused: it contains a virus ({})",
                    printable(&name)
                );
                write_line(&mut self.io.output, 554, "5.7.1", &text, true);
                self.mode = Mode::Command;
                return;
            }
            DeliveryOutcome::Attachment(what) => {
                let text = format!(
                    "Message refused: forbidden attachment ({})",
                    printable(&what)
                );
                write_line(&mut self.io.output, 554, "5.7.1", &text, true);
                self.mode = Mode::Command;
                return;
            }
        };
        reply.write_to(&mut self.io.output);
        self.mode = Mode::Command;
    }

    fn mailbox_full(&self) -> Reply {
        if self.config.over_quota_permanent {
            replies::MAILBOX_FULL_PERMANENT
        } else {
            replies::MAILBOX_FULL_TEMPORARY
        }
    }

    /// Forgets the transaction and any partial BDAT message.
    fn reset_transaction(&mut self) {
        self.tx = None;
        self.msg_len = 0;
    }

    fn reply(&mut self, reply: Reply) {
        reply.write_to(&mut self.io.output);
    }

    /// Sends an error reply for a client mistake, closing after too many of them.
    fn error(&mut self, reply: Reply) {
        self.reply(reply);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            self.close_with(replies::TOO_MANY_ERRORS);
        }
    }

    /// Handles one command line if a whole one is buffered; false when more input is needed.
    fn next_command(&mut self, env: &mut dyn Environment) -> bool {
        let max = self.config.max_command_line;
        let Some(lf) = memchr(b'\n', &self.io.input[self.pos..]) else {
            if self.io.input.len() - self.pos > max {
                // Too long already: discard what we have and the rest of the line.
                self.skipping_line = true;
                self.pos = self.io.input.len();
            }
            return false;
        };
        let start = self.pos;
        let mut end = start + lf;
        self.pos = end + 1;
        if self.skipping_line {
            self.skipping_line = false;
            self.error(replies::LINE_TOO_LONG);
            return true;
        }
        if end > start && self.io.input[end - 1] == b'\r' {
            end -= 1;
        }
        if end - start + 2 > max {
            self.error(replies::LINE_TOO_LONG);
            return true;
        }
        if let Mode::Sasl(step) = &self.mode {
            let step = step.clone();
            let response = sasl::decode_response(&self.io.input[start..end]);
            self.sasl_response(step, response);
            return true;
        }
        // The line borrows the buffer while the session changes: lend the buffer out.
        let input = std::mem::take(&mut self.io.input);
        let parsed = parse_command(&input[start..end]);
        let mut prefix = None;
        match parsed {
            Ok(command) => prefix = self.handle(command, env),
            Err(e) => self.error(match e {
                CommandError::Unrecognized => replies::UNRECOGNIZED,
                CommandError::Syntax => replies::SYNTAX,
                CommandError::BadAddress => replies::BAD_ADDRESS,
                CommandError::BadSenderAddress => replies::BAD_SENDER_ADDRESS,
                CommandError::BadParam => replies::BAD_PARAM,
            }),
        }
        self.io.input = input;
        if let Some(prefix) = prefix {
            self.start_message_body(prefix.as_bytes());
        }
        if matches!(self.mode, Mode::StartTls) {
            // Whatever the client pipelined after STARTTLS was sent in the clear and must
            // not be executed inside the TLS session (CVE-2011-0411).
            self.pos = self.io.input.len();
        }
        true
    }

    /// Continues a SASL exchange with one decoded client response.
    fn sasl_response(&mut self, step: SaslStep, response: Result<Vec<u8>, SaslError>) {
        self.mode = Mode::Command;
        let result = response.and_then(|decoded| match step {
            SaslStep::PlainResponse => sasl::parse_plain(&decoded).map(Some),
            SaslStep::LoginUsername => {
                let username = sasl::parse_login_field(decoded)?;
                write_line(
                    &mut self.io.output,
                    334,
                    "",
                    sasl::LOGIN_PASSWORD_CHALLENGE,
                    true,
                );
                self.mode = Mode::Sasl(SaslStep::LoginPassword { username });
                Ok(None)
            }
            SaslStep::LoginPassword { username } => {
                let password = sasl::parse_login_field(decoded)?;
                Ok(Some(Credentials { username, password }))
            }
        });
        match result {
            Ok(Some(credentials)) => self.mode = Mode::CredentialsReady(credentials),
            Ok(None) => {}
            Err(SaslError::Cancelled) => self.error(replies::AUTH_CANCELLED),
            Err(SaslError::Malformed) => self.error(replies::AUTH_MALFORMED),
            Err(SaslError::AuthzNotPermitted) => self.error(replies::AUTH_FAILED),
        }
    }

    fn starttls(&mut self) {
        if self.policy.tls {
            return self.error(replies::TLS_ACTIVE);
        }
        if !self.policy.starttls {
            return self.error(replies::NOT_IMPLEMENTED);
        }
        self.reply(replies::READY_FOR_TLS);
        self.mode = Mode::StartTls;
    }

    fn may_authenticate(&self) -> bool {
        self.policy.tls || self.policy.auth_without_tls
    }

    fn auth(&mut self, mechanism: &str, initial: Option<&str>) {
        if self.helo.is_none() {
            return self.error(replies::NEED_HELO);
        }
        if self.authenticated.is_some() {
            return self.error(replies::ALREADY_AUTHENTICATED);
        }
        if self.tx.is_some() {
            return self.error(replies::AUTH_IN_TRANSACTION);
        }
        if !self.may_authenticate() {
            return self.error(replies::NEED_STARTTLS);
        }
        let step = if mechanism.eq_ignore_ascii_case("PLAIN") {
            SaslStep::PlainResponse
        } else if mechanism.eq_ignore_ascii_case("LOGIN") {
            SaslStep::LoginUsername
        } else {
            return self.error(replies::UNKNOWN_MECHANISM);
        };
        match (initial, &step) {
            (Some(initial), _) => {
                let response = sasl::decode_response(initial.as_bytes());
                self.sasl_response(step, response);
            }
            (None, SaslStep::LoginUsername) => {
                write_line(
                    &mut self.io.output,
                    334,
                    "",
                    sasl::LOGIN_USERNAME_CHALLENGE,
                    true,
                );
                self.mode = Mode::Sasl(step);
            }
            (None, _) => {
                write_line(&mut self.io.output, 334, "", "", true);
                self.mode = Mode::Sasl(step);
            }
        }
    }

    /// Puts the trace headers where the message will start: the processed command lines
    /// at the front of the buffer are replaced by them.
    fn start_message_body(&mut self, prefix: &[u8]) {
        debug_assert_eq!(self.msg_len, 0);
        self.io.input.splice(0..self.pos, prefix.iter().copied());
        self.pos = prefix.len();
        self.msg_len = prefix.len();
        if let Mode::Data(reader) = &mut self.mode {
            *reader = DotReader::new(self.msg_len, self.pos, Some(self.config.max_message_size));
        }
    }

    /// Acts on one command. Returns the trace headers when a message body starts.
    fn handle(&mut self, command: Command<'_>, env: &mut dyn Environment) -> Option<String> {
        match command {
            Command::Ehlo(name) => {
                self.reset_transaction();
                self.helo = Some(Helo {
                    name: name.to_owned(),
                    extended: true,
                });
                let first = format!("{} greets {}", self.config.hostname, name);
                let size = format!("SIZE {}", self.config.max_message_size);
                let mut lines = vec![
                    first.as_str(),
                    "PIPELINING",
                    size.as_str(),
                    "8BITMIME",
                    "ENHANCEDSTATUSCODES",
                    "SMTPUTF8",
                    "CHUNKING",
                ];
                if self.policy.starttls && !self.policy.tls {
                    lines.push("STARTTLS");
                }
                if self.may_authenticate() && self.authenticated.is_none() {
                    lines.push("AUTH PLAIN LOGIN");
                }
                for (i, line) in lines.iter().enumerate() {
                    write_line(&mut self.io.output, 250, "", line, i == lines.len() - 1);
                }
            }
            Command::Helo(name) => {
                self.reset_transaction();
                self.helo = Some(Helo {
                    name: name.to_owned(),
                    extended: false,
                });
                write_line(
                    &mut self.io.output,
                    250,
                    "",
                    &self.config.hostname.clone(),
                    true,
                );
            }
            Command::Mail { from, params } => self.mail(from, params, env),
            Command::Rcpt { to } => self.rcpt(to, env),
            Command::Data => return self.data(env),
            Command::Bdat { size, last } => return self.bdat(size, last, env),
            Command::Rset => {
                self.reset_transaction();
                self.reply(replies::OK);
            }
            Command::Noop => self.reply(replies::OK),
            Command::Quit => self.close_with(replies::BYE),
            Command::Vrfy => self.reply(replies::VRFY),
            Command::Expn => self.error(replies::NOT_IMPLEMENTED),
            Command::Help => {
                write_line(
                    &mut self.io.output,
                    214,
                    "2.0.0",
                    "Gannet SMTP; commands:",
                    false,
                );
                write_line(
                    &mut self.io.output,
                    214,
                    "2.0.0",
                    "EHLO HELO MAIL RCPT DATA BDAT RSET NOOP QUIT VRFY HELP",
                    true,
                );
            }
            Command::StartTls => self.starttls(),
            Command::Auth { mechanism, initial } => self.auth(mechanism, initial),
            Command::NotImplemented => self.error(replies::NOT_IMPLEMENTED),
        }
        None
    }

    fn mail(&mut self, from: Path<'_>, params: MailParams, env: &mut dyn Environment) {
        if self.helo.is_none() {
            return self.error(replies::NEED_HELO);
        }
        if self.tx.is_some() {
            return self.error(replies::NESTED_MAIL);
        }
        if self.policy.submission && self.authenticated.is_none() {
            return self.error(if self.may_authenticate() {
                replies::NEED_AUTH
            } else {
                replies::NEED_STARTTLS
            });
        }
        let reverse_path = match from {
            Path::Null => String::new(),
            Path::Address(a) => {
                if !a.is_ascii() && !params.smtputf8 {
                    return self.error(replies::NEED_SMTPUTF8);
                }
                a.to_owned()
            }
        };
        if params
            .size
            .is_some_and(|s| s > self.config.max_message_size as u64)
        {
            return self.error(replies::TOO_BIG_DECLARED);
        }
        if let Some(account) = self.authenticated {
            let owned = matches!(
                env.route(&reverse_path.to_lowercase()),
                RcptRoute::Local { account: a } | RcptRoute::Report { account: a } if a == account
            );
            if self.config.restrict_sender && !owned {
                return self.error(replies::SENDER_NOT_OWNED);
            }
            // Everything an authenticated user sends counts against their hourly limit.
            if !env.admit_message(RateKey::Account(account)) {
                return self.reply(replies::RATE_LIMITED);
            }
        }
        // SIZE= reserves nothing: a declaration costs no memory until the data arrives
        // (the buffer grows as it does), or idle sessions declaring 50 MB each would
        // exhaust memory.
        self.tx = Some(Transaction {
            id: env.next_message_id(),
            reverse_path,
            params,
            recipients: Vec::new(),
            received_at: env.now(),
            bdat: None,
            rate_counted: self.authenticated.is_some(),
        });
        self.reply(replies::SENDER_OK);
    }

    fn rcpt(&mut self, to: Path<'_>, env: &mut dyn Environment) {
        let Some(tx) = &self.tx else {
            return self.error(replies::NEED_MAIL);
        };
        let Path::Address(raw) = to else {
            return self.error(replies::BAD_ADDRESS);
        };
        if !raw.is_ascii() && !tx.params.smtputf8 {
            return self.error(replies::NEED_SMTPUTF8);
        }
        if tx.recipients.len() >= self.config.max_recipients {
            return self.refuse_recipient(env, raw, replies::TOO_MANY_RECIPIENTS, false);
        }
        let mut address = raw.to_lowercase();
        if !address.contains('@') {
            // The bare "postmaster" of RFC 5321 4.5.1.
            address = format!("postmaster@{}", self.config.hostname.to_lowercase());
        }
        let mut scan = false;
        let account = match env.route(&address) {
            RcptRoute::Report { .. } if self.authenticated.is_none() => {
                return self.refuse_recipient(env, raw, replies::REPORT_DENIED, true);
            }
            RcptRoute::Local { account } | RcptRoute::Report { account } => {
                let declared = tx.params.size.unwrap_or(0);
                if !env.quota_allows(account, declared) {
                    let reply = self.mailbox_full();
                    return self.refuse_recipient(env, raw, reply, false);
                }
                Some(account)
            }
            // Refused addresses count as errors (as Postfix's smtpd_hard_error_limit
            // does), so that probing for addresses or a relay is cut off.
            RcptRoute::UnknownUser => {
                return self.refuse_recipient(env, raw, replies::UNKNOWN_USER, true)
            }
            RcptRoute::Forward { scan: s } => {
                scan = s;
                None
            }
            RcptRoute::Remote if self.authenticated.is_some() => None,
            RcptRoute::Remote if self.policy.trusted => {
                // A trusted network relaying without AUTH counts per IP, once per message.
                let Some(tx) = self.tx.as_mut() else {
                    return self.error(replies::NEED_MAIL);
                };
                if !tx.rate_counted {
                    if !env.admit_message(RateKey::Ip(self.policy.client_ip)) {
                        return self.refuse_recipient(env, raw, replies::RATE_LIMITED, false);
                    }
                    tx.rate_counted = true;
                }
                None
            }
            RcptRoute::Remote => {
                return self.refuse_recipient(env, raw, replies::RELAY_DENIED, true)
            }
        };
        let Some(tx) = self.tx.as_mut() else {
            return self.error(replies::NEED_MAIL);
        };
        if !tx.recipients.iter().any(|r| r.address == address) {
            tx.recipients.push(Recipient {
                address,
                account,
                scan,
            });
        }
        self.reply(replies::RECIPIENT_OK);
    }

    /// Refuses one recipient (an error that counts towards the limit when `error`) and
    /// tells the environment, for the trace.
    fn refuse_recipient(
        &mut self,
        env: &mut dyn Environment,
        recipient: &str,
        reply: Reply,
        error: bool,
    ) {
        if let Some(tx) = self
            .tx
            .as_ref()
            .filter(|_| self.refusals_reported < MAX_REPORTED_REFUSALS)
        {
            self.refusals_reported += 1;
            env.recipient_refused(&RecipientRefusal {
                at: env.now(),
                client_ip: self.policy.client_ip,
                sender: &tx.reverse_path,
                recipient,
                reply,
            });
        }
        if error {
            self.error(reply)
        } else {
            self.reply(reply)
        }
    }

    /// Checks that a message body may start now; the reply if it may not.
    fn body_refusal(&self, bdat: bool) -> Option<Reply> {
        match &self.tx {
            None => Some(replies::NEED_MAIL),
            Some(tx) if tx.recipients.is_empty() => Some(replies::NEED_RCPT),
            Some(tx) if tx.bdat.is_some() && !bdat => Some(replies::MIXED_DATA_BDAT),
            _ => None,
        }
    }

    /// The Received header (and Return-Path) of the message starting now. Callers have
    /// checked the transaction, which MAIL only opens after HELO; without them, none.
    fn trace_prefix(&self, env: &dyn Environment) -> String {
        let (Some(tx), Some(helo)) = (self.tx.as_ref(), self.helo.as_ref()) else {
            return String::new();
        };
        // RFC 3848 / RFC 6531: S for TLS, A for authenticated.
        let protocol = match (
            helo.extended,
            tx.params.smtputf8,
            self.policy.tls,
            self.authenticated.is_some(),
        ) {
            (false, ..) => "SMTP",
            (true, false, false, false) => "ESMTP",
            (true, false, true, false) => "ESMTPS",
            (true, false, false, true) => "ESMTPA",
            (true, false, true, true) => "ESMTPSA",
            (true, true, false, false) => "UTF8SMTP",
            (true, true, true, false) => "UTF8SMTPS",
            (true, true, false, true) => "UTF8SMTPA",
            (true, true, true, true) => "UTF8SMTPSA",
        };
        let single = match tx.recipients.as_slice() {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        trace_headers(&TraceInfo {
            helo: &helo.name,
            client_ip: self.policy.client_ip,
            reverse_dns: &self.policy.reverse_dns,
            hostname: &self.config.hostname,
            protocol,
            id: tx.id,
            single_recipient: single,
            reverse_path: &tx.reverse_path,
            unix_time: env.now(),
        })
    }

    fn data(&mut self, env: &mut dyn Environment) -> Option<String> {
        if let Some(refusal) = self.body_refusal(false) {
            self.error(refusal);
            return None;
        }
        self.reply(replies::START_DATA);
        self.mode = Mode::Data(DotReader::new(0, 0, None));
        Some(self.trace_prefix(env))
    }

    fn bdat(&mut self, size: u64, last: bool, env: &mut dyn Environment) -> Option<String> {
        let refusal = self.body_refusal(true);
        self.mode = Mode::BdatChunk {
            remaining: size,
            last,
            refusal,
        };
        if refusal.is_some() {
            return None;
        }
        let tx = self.tx.as_mut()?;
        match &mut tx.bdat {
            Some(_) => None,
            None => {
                tx.bdat = Some(BdatProgress {
                    total: 0,
                    overflowed: false,
                });
                Some(self.trace_prefix(env))
            }
        }
    }

    /// Moves buffered chunk bytes into the message; true once the chunk is complete.
    fn read_chunk(&mut self) -> bool {
        let Mode::BdatChunk {
            remaining,
            last,
            refusal,
        } = &mut self.mode
        else {
            return true;
        };
        let n = (*remaining).min((self.io.input.len() - self.pos) as u64) as usize;
        let keep = match (
            refusal.is_none(),
            self.tx.as_mut().and_then(|t| t.bdat.as_mut()),
        ) {
            (true, Some(progress)) => {
                progress.total += n as u64;
                if progress.total > self.config.max_message_size as u64 {
                    progress.overflowed = true;
                }
                !progress.overflowed
            }
            _ => false,
        };
        if keep {
            if self.msg_len != self.pos {
                self.io
                    .input
                    .copy_within(self.pos..self.pos + n, self.msg_len);
            }
            self.msg_len += n;
        }
        self.pos += n;
        *remaining -= n as u64;
        if *remaining > 0 {
            return false;
        }
        let (last, refusal) = (*last, *refusal);
        self.mode = Mode::Command;
        if let Some(refusal) = refusal {
            self.error(refusal);
            return true;
        }
        if last {
            let overflowed = self
                .tx
                .as_ref()
                .and_then(|t| t.bdat.as_ref())
                .is_some_and(|p| p.overflowed);
            let bare = !overflowed && has_bare_cr_or_lf(&self.io.input[..self.msg_len]);
            self.finish_message(overflowed, bare);
        } else {
            let text = format!("{n_total} octets received", n_total = self.chunk_total());
            write_line(&mut self.io.output, 250, "2.0.0", &text, true);
        }
        true
    }

    fn chunk_total(&self) -> u64 {
        self.tx
            .as_ref()
            .and_then(|t| t.bdat.as_ref())
            .map_or(0, |p| p.total)
    }

    /// The whole message has arrived: refuse it, or hand it to the runtime.
    fn finish_message(&mut self, overflowed: bool, bare_line_ending: bool) {
        if overflowed || bare_line_ending {
            self.reset_transaction();
            self.reply(if overflowed {
                replies::TOO_BIG
            } else {
                replies::BARE_LINE_ENDING
            });
            return;
        }
        self.mode = Mode::MessageReady;
    }
}

/// `text` fit for a reply line: printable ASCII, at most 200 characters.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .take(200)
        .collect()
}

impl Protocol for Session {
    type Request = Request;
    type Answer = DeliveryOutcome;
    type Context<'a> = dyn Environment + 'a;

    fn step(&mut self, env: &mut (dyn Environment + '_)) -> Step {
        Session::step(self, env)
    }

    fn answer(&mut self, outcome: DeliveryOutcome) {
        self.delivered(outcome);
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
        self.compact();
        match self.mode {
            Mode::Data(_) | Mode::BdatChunk { .. } => DATA_READ,
            _ => COMMAND_READ,
        }
    }

    fn is_idle(&self) -> bool {
        Session::is_idle(self)
    }

    fn lifetime_mark(&self) -> Option<u64> {
        Session::lifetime_mark(self)
    }

    fn close_idle(&mut self) {
        self.close_with(replies::IDLE_TIMEOUT);
    }

    fn close_shutdown(&mut self) {
        self.close_with(replies::SHUTTING_DOWN);
    }
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
