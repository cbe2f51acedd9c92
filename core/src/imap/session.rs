//! The IMAP server session: a state machine fed bytes. Commands are framed (literals
//! included), parsed, and executed against a view of the selected mailbox that the runtime
//! loads on request ([`Step::Request`]); changes go out as store batches through the same
//! channel. A command that needs data returns to the runtime and is run again, from the
//! start, once the answer is in: handlers take what they asked for from `self.answer`.

use std::collections::HashMap;
use std::sync::Arc;

use super::command::{self, Cmd, FetchItem, Needs, SearchKey, SeqSet, StoreMode};
use super::parse::{frame, tag_of, Bad, Frame, Limits, Reader};
use super::response::{flag_list, internal_date, literal, string, system_flag};
use super::structure::{self, SectionText};
use super::wildcard::wildcard_match;
use crate::auth::sasl::{self, Credentials};
use crate::auth::service::AuthOutcome;
use crate::store::schema::{flags, BlobId, MailEntry, MailboxMeta};
use crate::store::{Applied, Changes, FlagChange, FlagMode, Folder, NewMail, StoreError};

#[derive(Debug, Clone)]
pub struct ImapConfig {
    pub hostname: String,
    /// Longest command line (literals excluded).
    pub max_line: usize,
    /// Largest literal (APPEND message). A command after login, its lines and literals
    /// together, may have this plus `max_line`.
    pub max_literal: u64,
    /// Largest command before login, lines and literals together; also the longest
    /// AUTHENTICATE response line and IDLE's DONE line.
    pub max_command_before_auth: usize,
    pub max_bad_commands: u32,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".into(),
            max_line: 64 * 1024,
            max_literal: 50_000_000,
            max_command_before_auth: 8 * 1024,
            max_bad_commands: 20,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct ImapPolicy {
    pub tls: bool,
    pub starttls: bool,
    pub auth_without_tls: bool,
}

/// A mailbox with its counts, as listed.
#[derive(Debug, Clone)]
pub struct MailboxSummary {
    pub name: String,
    pub meta: MailboxMeta,
    pub messages: u32,
    pub unseen: u32,
    pub deleted: u32,
    pub size: u64,
}

/// What the session asks of the store.
#[derive(Debug)]
pub enum Request {
    /// Every mailbox with its counts, and the account's storage use and quota.
    Mailboxes {
        account: u32,
    },
    Mailbox {
        account: u32,
        name: String,
    },
    Blobs(Vec<BlobId>),
    /// Apply changes through the mail store (which checks them against the store as it
    /// is when they commit).
    Write(Changes),
}

/// The runtime's answer to a [`Request`].
#[derive(Debug)]
pub enum Answer {
    Mailboxes {
        list: Vec<MailboxSummary>,
        used: u64,
        limit: u64,
    },
    Mailbox(Option<(MailboxMeta, Vec<(u32, MailEntry)>)>),
    Blobs(HashMap<BlobId, Arc<Vec<u8>>>),
    Committed(Result<Applied, StoreError>),
}

#[derive(Debug)]
pub enum Step {
    NeedInput,
    Close,
    StartTls,
    Authenticate,
    Request(Request),
    /// IDLE: wait for input ("DONE"); call [`Session::idle_poll`] now and then.
    Idle,
}

/// How many messages, and how many bytes of them, a FETCH or SEARCH reads at a time: a
/// command over a whole mailbox holds one batch of bodies, never the mailbox.
const BATCH_MESSAGES: usize = 64;
const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// Message bodies by blob, as the runtime reads them.
type Bodies = HashMap<BlobId, Arc<Vec<u8>>>;

/// A FETCH or SEARCH going through its messages a batch at a time. Between batches the
/// runtime reads the next batch's bodies (and writes out what the last one produced).
struct Progress {
    /// The messages (indexes into the selected mailbox) the command works on.
    indexes: Vec<usize>,
    /// How many of them are done.
    done: usize,
    /// SEARCH: the numbers found so far.
    hits: Vec<u32>,
    /// FETCH: the UIDs whose \Seen flag it sets, committed once after the last batch.
    seen: Vec<u32>,
}

impl Progress {
    fn new(indexes: Vec<usize>) -> Progress {
        Progress {
            indexes,
            done: 0,
            hits: Vec::new(),
            seen: Vec::new(),
        }
    }
}

/// What a STORE's answer shows: UIDs (UID STORE), nothing (.SILENT).
#[derive(Debug, Clone, Copy)]
struct StoreReply {
    uid: bool,
    silent: bool,
}

struct Selected {
    name: String,
    meta: MailboxMeta,
    read_only: bool,
    /// In UID order: the message sequence number is the index + 1.
    messages: Vec<(u32, MailEntry)>,
}

enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Selected),
    Logout,
}

enum Flow {
    Done,
    Need(Request),
    Idle,
}

pub struct Session {
    config: Arc<ImapConfig>,
    policy: ImapPolicy,
    input: Vec<u8>,
    output: Vec<u8>,
    state: State,
    account: Option<u32>,
    /// The command being run, with its tag.
    current: Option<(String, Cmd)>,
    answer: Option<Answer>,
    credentials: Option<Credentials>,
    awaiting: bool,
    /// Input bytes up to which a literal continuation was sent.
    acked: usize,
    /// AUTHENTICATE PLAIN waiting for its response line.
    sasl_tag: Option<String>,
    /// The rest of an over-long line is being thrown away, up to its LF.
    skip_line: bool,
    /// A FETCH or SEARCH part way through its messages.
    progress: Option<Progress>,
    idling: bool,
    idle_refresh: bool,
    rev2: bool,
    bad_commands: u32,
    tls_pending: bool,
    /// How a STORE in progress answers.
    pending_store: Option<StoreReply>,
    /// The entry an APPEND in progress writes.
    pending_entry: Option<MailEntry>,
    /// Unix time, given by the runtime at each step.
    now: i64,
}

impl Session {
    pub fn new(config: Arc<ImapConfig>, policy: ImapPolicy, buffer: Vec<u8>) -> Session {
        let mut s = Session {
            config,
            policy,
            input: buffer,
            output: Vec::with_capacity(1024),
            state: State::NotAuthenticated,
            account: None,
            current: None,
            answer: None,
            credentials: None,
            awaiting: false,
            acked: 0,
            sasl_tag: None,
            skip_line: false,
            progress: None,
            idling: false,
            idle_refresh: false,
            rev2: false,
            bad_commands: 0,
            tls_pending: false,
            pending_entry: None,
            pending_store: None,
            now: 0,
        };
        s.input.clear();
        let caps = s.capabilities();
        s.line(&format!("* OK [CAPABILITY {caps}] Gannet IMAP ready"));
        s
    }

    // ---- buffers ----

    pub fn take_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.output)
    }

    pub fn output_written(&mut self, mut buf: Vec<u8>) {
        buf.clear();
        if self.output.is_empty() {
            self.output = buf;
        }
    }

    pub fn has_output(&self) -> bool {
        !self.output.is_empty()
    }

    /// The number of bytes of output waiting to be written.
    pub fn output_len(&self) -> usize {
        self.output.len()
    }

    pub fn take_input(&mut self) -> Vec<u8> {
        if self.input.capacity() - self.input.len() < 2048 {
            self.input.reserve(16 * 1024);
        }
        std::mem::take(&mut self.input)
    }

    pub fn input_filled(&mut self, buf: Vec<u8>) {
        self.input = buf;
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.extend_from_slice(bytes);
    }

    pub fn into_input_buffer(self) -> Vec<u8> {
        self.input
    }

    /// For the unauthenticated-lifetime clock: None once logged in.
    pub fn lifetime_mark(&self) -> Option<u64> {
        matches!(self.state, State::NotAuthenticated).then_some(0)
    }

    pub fn is_idle(&self) -> bool {
        self.current.is_none() && !self.awaiting
    }

    pub fn close_with(&mut self, text: &str) {
        self.line(&format!("* BYE {text}"));
        self.state = State::Logout;
        self.current = None;
    }

    fn line(&mut self, text: &str) {
        self.output.extend_from_slice(text.as_bytes());
        self.output.extend_from_slice(b"\r\n");
    }

    fn tagged(&mut self, tag: &str, status: &str, text: &str) {
        self.line(&format!("{tag} {status} {text}"));
    }

    fn bad(&mut self, tag: &str, text: &str) {
        self.tagged(tag, "BAD", text);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            self.close_with("Too many errors");
        }
    }

    fn may_authenticate(&self) -> bool {
        self.policy.tls || self.policy.auth_without_tls
    }

    fn capabilities(&self) -> String {
        let mut caps = vec![
            "IMAP4rev2",
            "IMAP4rev1",
            "LITERAL+",
            "ENABLE",
            "IDLE",
            "NAMESPACE",
            "UIDPLUS",
            "MOVE",
            "UNSELECT",
            "SPECIAL-USE",
            "LIST-EXTENDED",
            "LIST-STATUS",
            "ESEARCH",
            "ID",
            "CHILDREN",
            "QUOTA",
            "QUOTA=RES-STORAGE",
        ];
        if !self.policy.tls && self.policy.starttls && matches!(self.state, State::NotAuthenticated)
        {
            caps.push("STARTTLS");
        }
        if matches!(self.state, State::NotAuthenticated) {
            if self.may_authenticate() {
                caps.push("AUTH=PLAIN");
            } else {
                caps.push("LOGINDISABLED");
            }
        }
        caps.join(" ")
    }

    // ---- the runtime's side ----

    pub fn take_credentials(&mut self) -> Option<Credentials> {
        self.credentials.take()
    }

    pub fn auth_result(&mut self, outcome: AuthOutcome) {
        self.awaiting = false;
        let Some((tag, _)) = self.current.take() else {
            return;
        };
        match outcome {
            AuthOutcome::Success { account } => {
                self.account = Some(account);
                self.state = State::Authenticated;
                let caps = self.capabilities();
                self.tagged(&tag, "OK", &format!("[CAPABILITY {caps}] Logged in"));
            }
            AuthOutcome::Failure => {
                self.tagged(&tag, "NO", "[AUTHENTICATIONFAILED] Authentication failed");
                self.bad_commands += 1;
            }
            AuthOutcome::LockedOut => self.close_with("Too many failed logins, try again later"),
            AuthOutcome::Unavailable => {
                self.tagged(&tag, "NO", "[UNAVAILABLE] Authentication unavailable")
            }
        }
    }

    pub fn answer(&mut self, answer: Answer) {
        self.awaiting = false;
        self.answer = Some(answer);
    }

    pub fn tls_started(&mut self) {
        self.policy.tls = true;
        self.tls_pending = false;
        self.input.clear();
        self.acked = 0;
    }

    /// During IDLE: look for changes to report.
    pub fn idle_poll(&mut self) {
        if self.idling && !self.awaiting {
            self.idle_refresh = true;
        }
    }

    // ---- the state machine ----

    pub fn step(&mut self, now: i64) -> Step {
        self.now = now;
        loop {
            if matches!(self.state, State::Logout) {
                return Step::Close;
            }
            if self.tls_pending {
                return Step::StartTls;
            }
            if self.awaiting {
                return if self.credentials.is_some() {
                    Step::Authenticate
                } else {
                    Step::NeedInput
                };
            }
            if self.idling {
                if let Some(flow) = self.idle_step() {
                    match flow {
                        Flow::Need(r) => {
                            self.awaiting = true;
                            return Step::Request(r);
                        }
                        Flow::Idle => return Step::Idle,
                        Flow::Done => continue,
                    }
                }
                continue;
            }
            if let Some((tag, cmd)) = self.current.take() {
                match self.execute(&tag, &cmd) {
                    Flow::Done => {
                        self.answer = None;
                    }
                    Flow::Need(request) => {
                        self.current = Some((tag, cmd));
                        self.awaiting = true;
                        return Step::Request(request);
                    }
                    Flow::Idle => {
                        self.current = Some((tag, cmd));
                        self.idling = true;
                        return Step::Idle;
                    }
                }
                continue;
            }
            if !self.next_command() {
                return Step::NeedInput;
            }
        }
    }

    /// Frames and parses the next command; false when more input is needed.
    fn next_command(&mut self) -> bool {
        if self.skip_line {
            match memchr::memchr(b'\n', &self.input) {
                Some(lf) => {
                    self.input.drain(..=lf);
                    self.skip_line = false;
                }
                None => {
                    self.input.clear();
                    return false;
                }
            }
        }
        if let Some(tag) = self.sasl_tag.take() {
            return self.sasl_response(tag);
        }
        match frame(&self.input, &self.limits(), self.acked) {
            Frame::Incomplete { continuation } => {
                if continuation {
                    self.line("+ Ready for literal data");
                    self.acked = self.input.len();
                }
                false
            }
            Frame::LineTooLong => {
                self.input.clear();
                self.close_with("Command line too long");
                true
            }
            Frame::TooBig { sync, tag } => {
                self.input.clear();
                self.acked = 0;
                let authenticated = !matches!(self.state, State::NotAuthenticated);
                if sync && authenticated {
                    // The client sends nothing more for this command.
                    self.tagged(&tag, "NO", "[TOOBIG] Literal too large");
                } else if sync {
                    self.bad(&tag, "Command too large before authentication");
                } else {
                    // The literal's bytes are on their way (RFC 7888): nothing to do but
                    // refuse the command and close.
                    self.tagged(&tag, "BAD", "[TOOBIG] Literal too large");
                    self.close_with("Literal too large");
                }
                true
            }
            Frame::Complete { len } => {
                let bytes: Vec<u8> = self.input.drain(..len).collect();
                self.acked = 0;
                self.parse_command(&bytes);
                true
            }
        }
    }

    /// How large the next command may be: 8 KiB before login, after it a message (the
    /// largest literal) and a line.
    fn limits(&self) -> Limits {
        let config = &self.config;
        let max_command = if matches!(self.state, State::NotAuthenticated) {
            config.max_command_before_auth as u64
        } else {
            config.max_literal.saturating_add(config.max_line as u64)
        };
        Limits {
            max_line: config.max_line,
            max_literal: config.max_literal,
            max_command,
        }
    }

    /// Parses one framed command into `self.current`, or answers BAD. A command the
    /// current state does not allow is refused from its name, its arguments unparsed.
    fn parse_command(&mut self, bytes: &[u8]) {
        let tag = tag_of(bytes);
        let mut reader = Reader::new(bytes);
        let tagged = tag != "*" && reader.atom().is_ok_and(|t| t == tag) && reader.space().is_ok();
        if !tagged {
            self.line("* BAD Invalid tag or command");
            self.bad_commands += 1;
            return;
        }
        let parsed = command::command_name(&mut reader).and_then(|(name, uid)| {
            match (command::needs(&name, uid), &self.state) {
                (Needs::Authenticated | Needs::Selected, State::NotAuthenticated) => {
                    Err(Bad("Command not valid before authentication".into()))
                }
                (Needs::Selected, State::Authenticated) => Err(Bad("No mailbox selected".into())),
                _ => command::parse_args(&mut reader, &name, uid),
            }
        });
        match parsed {
            Ok(cmd) => self.current = Some((tag, cmd)),
            Err(e) => self.bad(&tag, &e.0),
        }
    }

    /// The client's line after `AUTHENTICATE PLAIN`: at most 8 KiB (a PLAIN response is
    /// far shorter), else BAD, the exchange ends and the rest of the line is skipped.
    fn sasl_response(&mut self, tag: String) -> bool {
        let limit = self.config.max_command_before_auth;
        let Some(lf) = memchr::memchr(b'\n', &self.input) else {
            if self.input.len() > limit {
                self.input.clear();
                self.skip_line = true;
                self.bad(&tag, "Authentication response too long");
                return true;
            }
            self.sasl_tag = Some(tag);
            return false;
        };
        let line: Vec<u8> = self.input.drain(..=lf).collect();
        if line.len() > limit {
            self.bad(&tag, "Authentication response too long");
            return true;
        }
        match sasl::decode_response(&line).and_then(|d| sasl::parse_plain(&d)) {
            Ok(c) => self.begin_login(tag, c),
            Err(sasl::SaslError::Cancelled) => self.bad(&tag, "Authentication cancelled"),
            Err(_) => self.bad(&tag, "Cannot decode the response"),
        }
        true
    }

    fn begin_login(&mut self, tag: String, credentials: Credentials) {
        self.credentials = Some(credentials);
        self.awaiting = true;
        self.current = Some((tag, Cmd::Noop));
    }

    fn need(&mut self, request: Request) -> Flow {
        Flow::Need(request)
    }

    fn execute(&mut self, tag: &str, cmd: &Cmd) -> Flow {
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        let selected = matches!(self.state, State::Selected(_));
        match cmd {
            Cmd::Capability => {
                let caps = self.capabilities();
                self.line(&format!("* CAPABILITY {caps}"));
                self.tagged(tag, "OK", "CAPABILITY completed");
            }
            Cmd::Logout => {
                self.line("* BYE Gannet IMAP signing off");
                self.tagged(tag, "OK", "LOGOUT completed");
                self.state = State::Logout;
            }
            Cmd::Noop | Cmd::Check => {
                if selected {
                    return self.refresh(tag, "NOOP completed");
                }
                self.tagged(tag, "OK", "NOOP completed");
            }
            Cmd::StartTls => {
                if self.policy.tls || !self.policy.starttls || authenticated {
                    self.bad(tag, "STARTTLS not available");
                } else {
                    self.tagged(tag, "OK", "Begin TLS negotiation now");
                    self.input.clear();
                    self.tls_pending = true;
                }
            }
            Cmd::Login { user, pass } => {
                if authenticated {
                    self.bad(tag, "Already authenticated");
                } else if !self.may_authenticate() {
                    self.tagged(
                        tag,
                        "NO",
                        "[PRIVACYREQUIRED] LOGIN requires TLS (use STARTTLS)",
                    );
                } else {
                    self.begin_login(
                        tag.to_string(),
                        Credentials {
                            username: user.clone(),
                            password: pass.clone(),
                        },
                    );
                }
            }
            Cmd::Authenticate { mechanism, initial } => {
                if authenticated {
                    self.bad(tag, "Already authenticated");
                } else if !self.may_authenticate() {
                    self.tagged(
                        tag,
                        "NO",
                        "[PRIVACYREQUIRED] Authentication requires TLS (use STARTTLS)",
                    );
                } else if mechanism != "PLAIN" {
                    self.tagged(tag, "NO", "Unsupported mechanism");
                } else if let Some(initial) = initial {
                    match sasl::decode_response(initial).and_then(|d| sasl::parse_plain(&d)) {
                        Ok(c) => self.begin_login(tag.to_string(), c),
                        Err(_) => self.bad(tag, "Cannot decode the response"),
                    }
                } else {
                    self.line("+ ");
                    self.sasl_tag = Some(tag.to_string());
                }
            }
            Cmd::Enable(caps) => {
                if !authenticated {
                    self.bad(tag, "Not authenticated");
                } else {
                    let on: Vec<&String> = caps
                        .iter()
                        .filter(|c| c.eq_ignore_ascii_case("IMAP4rev2"))
                        .collect();
                    if !on.is_empty() {
                        self.rev2 = true;
                    }
                    let list: Vec<&str> = on.iter().map(|s| s.as_str()).collect();
                    self.line(format!("* ENABLED {}", list.join(" ")).trim_end());
                    self.tagged(tag, "OK", "ENABLE completed");
                }
            }
            Cmd::Id => {
                self.line("* ID (\"name\" \"Gannet\")");
                self.tagged(tag, "OK", "ID completed");
            }
            _ if !authenticated => self.bad(tag, "Command not valid before authentication"),
            Cmd::Namespace => {
                self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
                self.tagged(tag, "OK", "NAMESPACE completed");
            }
            Cmd::Select { mailbox, read_only } => return self.select(tag, mailbox, *read_only),
            Cmd::Create(name) => return self.create(tag, name),
            Cmd::Delete(name) => return self.delete(tag, name),
            Cmd::Rename(from, to) => return self.rename(tag, from, to),
            Cmd::Subscribe(name, on) => return self.subscribe(tag, name, *on),
            Cmd::List {
                reference,
                patterns,
                subscribed_only,
                lsub,
                status,
            } => return self.list(tag, reference, patterns, *subscribed_only, *lsub, status),
            Cmd::Status { mailbox, items } => return self.status(tag, mailbox, items),
            Cmd::Append {
                mailbox,
                flags,
                date,
                message,
            } => return self.append(tag, mailbox, flags, *date, message),
            Cmd::GetQuota(_) | Cmd::GetQuotaRoot(_) => return self.quota(tag, cmd),
            Cmd::Idle => {
                self.line("+ idling");
                return Flow::Idle;
            }
            _ if !selected => self.bad(tag, "No mailbox selected"),
            Cmd::Close | Cmd::Unselect => {
                let close = matches!(cmd, Cmd::Close);
                if close && !self.selected_ref().read_only {
                    if let Some(flow) = self.expunge(tag, None, true) {
                        return flow;
                    }
                }
                self.state = State::Authenticated;
                self.tagged(
                    tag,
                    "OK",
                    if close {
                        "CLOSE completed"
                    } else {
                        "UNSELECT completed"
                    },
                );
            }
            Cmd::Expunge { uids } => {
                if self.selected_ref().read_only {
                    self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
                } else if let Some(flow) = self.expunge(tag, uids.as_ref(), false) {
                    return flow;
                }
            }
            Cmd::Search { uid, key, esearch } => return self.search(tag, *uid, key, *esearch),
            Cmd::Fetch { uid, set, items } => return self.fetch(tag, *uid, set, items),
            Cmd::Store {
                uid,
                set,
                mode,
                silent,
                flags,
            } => return self.store(tag, *uid, set, *mode, *silent, flags),
            Cmd::Copy {
                uid,
                set,
                mailbox,
                remove,
            } => return self.copy(tag, *uid, set, mailbox, *remove),
        }
        Flow::Done
    }

    fn selected_ref(&self) -> &Selected {
        match &self.state {
            State::Selected(s) => s,
            _ => unreachable!("checked by the caller"),
        }
    }

    fn selected_mut(&mut self) -> &mut Selected {
        match &mut self.state {
            State::Selected(s) => s,
            _ => unreachable!("checked by the caller"),
        }
    }

    fn account(&self) -> u32 {
        self.account.unwrap_or_default()
    }

    // ---- mailboxes ----

    fn select(&mut self, tag: &str, name: &str, read_only: bool) -> Flow {
        let Some(Answer::Mailbox(found)) = self.answer.take() else {
            return self.need(Request::Mailbox {
                account: self.account(),
                name: name.to_string(),
            });
        };
        let Some((meta, messages)) = found else {
            self.state = State::Authenticated;
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return Flow::Done;
        };
        self.line("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft)");
        self.line("* OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)] Flags permitted");
        self.line(&format!("* {} EXISTS", messages.len()));
        if !self.rev2 {
            self.line("* 0 RECENT");
        }
        self.line(&format!(
            "* OK [UIDVALIDITY {}] UIDs valid",
            meta.uidvalidity
        ));
        self.line(&format!(
            "* OK [UIDNEXT {}] Predicted next UID",
            meta.uidnext
        ));
        if self.rev2 {
            let mut l = b"* LIST () \"/\" ".to_vec();
            string(&mut l, name.as_bytes());
            self.output.extend_from_slice(&l);
            self.output.extend_from_slice(b"\r\n");
        }
        self.state = State::Selected(Selected {
            name: name.to_string(),
            meta,
            read_only,
            messages,
        });
        let mode = if read_only {
            "[READ-ONLY] EXAMINE completed"
        } else {
            "[READ-WRITE] SELECT completed"
        };
        self.tagged(tag, "OK", mode);
        Flow::Done
    }

    /// Reloads the selected mailbox and reports what changed (EXPUNGE, FETCH FLAGS, EXISTS).
    fn refresh(&mut self, tag: &str, done: &str) -> Flow {
        let Some(Answer::Mailbox(found)) = self.answer.take() else {
            let name = self.selected_ref().name.clone();
            return self.need(Request::Mailbox {
                account: self.account(),
                name,
            });
        };
        self.apply_changes(found);
        if !tag.is_empty() {
            self.tagged(tag, "OK", done);
        }
        Flow::Done
    }

    fn apply_changes(&mut self, found: Option<(MailboxMeta, Vec<(u32, MailEntry)>)>) {
        let Some((meta, fresh)) = found else { return };
        let mut lines = Vec::new();
        let sel = self.selected_mut();
        // Expunged: report from the highest sequence number down, so numbers stay right.
        let fresh_uids: std::collections::HashSet<u32> = fresh.iter().map(|(u, _)| *u).collect();
        for seq in (1..=sel.messages.len()).rev() {
            if !fresh_uids.contains(&sel.messages[seq - 1].0) {
                sel.messages.remove(seq - 1);
                lines.push(format!("* {seq} EXPUNGE"));
            }
        }
        let known: HashMap<u32, usize> = sel
            .messages
            .iter()
            .enumerate()
            .map(|(i, (u, _))| (*u, i))
            .collect();
        let mut added = false;
        for (uid, entry) in fresh {
            match known.get(&uid) {
                Some(&i) => {
                    let old = &sel.messages[i].1;
                    if old.flags != entry.flags || old.keywords != entry.keywords {
                        let mut l = format!("* {} FETCH (UID {uid} FLAGS ", i + 1).into_bytes();
                        flag_list(&mut l, entry.flags, &entry.keywords);
                        l.push(b')');
                        lines.push(String::from_utf8_lossy(&l).into_owned());
                        sel.messages[i].1 = entry;
                    }
                }
                None => {
                    sel.messages.push((uid, entry));
                    added = true;
                }
            }
        }
        sel.meta = meta;
        if added {
            lines.push(format!("* {} EXISTS", sel.messages.len()));
        }
        for l in lines {
            self.line(&l);
        }
    }

    fn idle_step(&mut self) -> Option<Flow> {
        // DONE ends the IDLE.
        if let Some(lf) = memchr::memchr(b'\n', &self.input) {
            let line: Vec<u8> = self.input.drain(..=lf).collect();
            self.idling = false;
            let (tag, _) = self.current.take()?;
            if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                self.tagged(&tag, "OK", "IDLE terminated");
            } else {
                self.bad(&tag, "Expected DONE");
            }
            return Some(Flow::Done);
        }
        if self.input.len() > self.config.max_command_before_auth {
            // No DONE in sight: end the IDLE rather than keep the bytes.
            self.input.clear();
            self.skip_line = true;
            self.idling = false;
            let (tag, _) = self.current.take()?;
            self.bad(&tag, "Expected DONE");
            return Some(Flow::Done);
        }
        if let Some(Answer::Mailbox(found)) = self.answer.take() {
            self.apply_changes(found);
            return Some(Flow::Idle);
        }
        if self.idle_refresh && matches!(self.state, State::Selected(_)) {
            self.idle_refresh = false;
            let name = self.selected_ref().name.clone();
            return Some(Flow::Need(Request::Mailbox {
                account: self.account(),
                name,
            }));
        }
        Some(Flow::Idle)
    }

    fn summaries(&mut self) -> Result<Vec<MailboxSummary>, Flow> {
        self.summaries_and_quota().map(|(list, _, _)| list)
    }

    /// Mailboxes with the account's (used, limit) storage.
    fn summaries_and_quota(&mut self) -> Result<(Vec<MailboxSummary>, u64, u64), Flow> {
        match self.answer.take() {
            Some(Answer::Mailboxes { list, used, limit }) => Ok((list, used, limit)),
            other => {
                self.answer = other;
                Err(Flow::Need(Request::Mailboxes {
                    account: self.account(),
                }))
            }
        }
    }

    /// For APPEND and COPY/MOVE: the target mailbox's UIDVALIDITY and the
    /// account's quota use and limit; `NO [TRYCREATE]` when the target is missing.
    fn target_and_quota(&mut self, tag: &str, target: &str) -> Result<(u32, u64, u64), Flow> {
        let (list, used, limit) = self.summaries_and_quota()?;
        match list.iter().find(|m| m.name == target) {
            Some(found) => Ok((found.meta.uidvalidity, used, limit)),
            None => {
                self.tagged(tag, "NO", "[TRYCREATE] No such mailbox");
                Err(Flow::Done)
            }
        }
    }

    /// When the commit asked for earlier has answered: its tagged reply, and done.
    fn commit_done(&mut self, tag: &str, done: &str) -> Option<Flow> {
        match self.committed()? {
            Ok(_) => self.tagged(tag, "OK", done),
            Err(e) => self.commit_failed(tag, &e),
        }
        Some(Flow::Done)
    }

    /// The tagged reply to a failed commit.
    fn commit_failed(&mut self, tag: &str, e: &StoreError) {
        match e {
            StoreError::NoSuchMailbox(_) => self.tagged(tag, "NO", "[TRYCREATE] No such mailbox"),
            StoreError::MailboxExists(_) => {
                self.tagged(tag, "NO", "[ALREADYEXISTS] Mailbox exists")
            }
            StoreError::Refused(why) => self.tagged(tag, "NO", &format!("[CANNOT] {why}")),
            StoreError::NoSpace(_) => {
                self.tagged(tag, "NO", "[UNAVAILABLE] The server is out of disk space")
            }
            e => self.tagged(tag, "NO", &format!("[SERVERBUG] {e}")),
        }
    }

    /// The result of a commit asked for earlier, if it has arrived.
    fn committed(&mut self) -> Option<Result<Applied, StoreError>> {
        match self.answer.take() {
            Some(Answer::Committed(r)) => Some(r),
            other => {
                self.answer = other;
                None
            }
        }
    }

    fn create(&mut self, tag: &str, name: &str) -> Flow {
        if let Some(flow) = self.commit_done(tag, "CREATE completed") {
            return flow;
        }
        let list = match self.summaries() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        if name.is_empty()
            || name.eq_ignore_ascii_case("INBOX")
            || list.iter().any(|m| m.name == name)
        {
            self.tagged(tag, "NO", "[ALREADYEXISTS] Mailbox exists");
            return Flow::Done;
        }
        let mut changes = Changes::new();
        changes.create_mailbox(self.account(), name, None, self.now);
        self.need(Request::Write(changes))
    }

    fn delete(&mut self, tag: &str, name: &str) -> Flow {
        if let Some(flow) = self.commit_done(tag, "DELETE completed") {
            return flow;
        }
        if name == "INBOX" {
            self.tagged(tag, "NO", "[CANNOT] INBOX cannot be deleted");
            return Flow::Done;
        }
        let list = match self.summaries() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        let Some(found) = list.iter().find(|m| m.name == name) else {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return Flow::Done;
        };
        if found.meta.special_use.is_some() {
            self.tagged(
                tag,
                "NO",
                "[CANNOT] Special-use mailboxes (Drafts, Sent, Trash, Junk) cannot be deleted",
            );
            return Flow::Done;
        }
        if matches!(&self.state, State::Selected(s) if s.name == name) {
            self.state = State::Authenticated;
        }
        let mut changes = Changes::new();
        changes.delete_mailbox(self.account(), name);
        self.need(Request::Write(changes))
    }

    fn rename(&mut self, tag: &str, from: &str, to: &str) -> Flow {
        if let Some(flow) = self.commit_done(tag, "RENAME completed") {
            return flow;
        }
        let list = match self.summaries() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        if !list.iter().any(|m| m.name == from) {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return Flow::Done;
        }
        if from == "INBOX" {
            self.tagged(tag, "NO", "[CANNOT] Renaming INBOX is not supported");
            return Flow::Done;
        }
        if list.iter().any(|m| m.name == to) || to.eq_ignore_ascii_case("INBOX") {
            self.tagged(tag, "NO", "[ALREADYEXISTS] Target mailbox exists");
            return Flow::Done;
        }
        let mut changes = Changes::new();
        changes.rename_mailbox(self.account(), from, to);
        self.need(Request::Write(changes))
    }

    fn subscribe(&mut self, tag: &str, name: &str, on: bool) -> Flow {
        if let Some(flow) = self.commit_done(tag, "Subscription changed") {
            return flow;
        }
        let list = match self.summaries() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        if !list.iter().any(|m| m.name == name) {
            self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox");
            return Flow::Done;
        }
        let mut changes = Changes::new();
        changes.subscribe(self.account(), name, on);
        self.need(Request::Write(changes))
    }

    fn list(
        &mut self,
        tag: &str,
        reference: &str,
        patterns: &[String],
        subscribed_only: bool,
        lsub: bool,
        status: &[String],
    ) -> Flow {
        let list = match self.summaries() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        let verb = if lsub { "LSUB" } else { "LIST" };
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.line(&format!("* {verb} (\\Noselect) \"/\" \"\""));
            self.tagged(tag, "OK", &format!("{verb} completed"));
            return Flow::Done;
        }
        for m in &list {
            let matched = patterns
                .iter()
                .any(|p| wildcard_match(&format!("{reference}{p}"), &m.name));
            if !matched || (subscribed_only && !m.meta.subscribed) {
                continue;
            }
            let has_children = list
                .iter()
                .any(|o| o.name.starts_with(&format!("{}/", m.name)));
            let mut attrs = vec![if has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(su) = &m.meta.special_use {
                attrs.push(su);
            }
            if subscribed_only && !lsub {
                attrs.push("\\Subscribed");
            }
            let mut l = format!("* {verb} ({}) \"/\" ", attrs.join(" ")).into_bytes();
            string(&mut l, m.name.as_bytes());
            l.extend_from_slice(b"\r\n");
            self.output.extend_from_slice(&l);
            if !status.is_empty() {
                self.status_line(m, status);
            }
        }
        self.tagged(tag, "OK", &format!("{verb} completed"));
        Flow::Done
    }

    fn status_line(&mut self, m: &MailboxSummary, items: &[String]) {
        let mut parts = Vec::new();
        for item in items {
            let value = match item.to_ascii_uppercase().as_str() {
                "MESSAGES" => m.messages as u64,
                "UIDNEXT" => m.meta.uidnext as u64,
                "UIDVALIDITY" => m.meta.uidvalidity as u64,
                "UNSEEN" => m.unseen as u64,
                "DELETED" => m.deleted as u64,
                "SIZE" => m.size,
                "RECENT" => 0,
                "HIGHESTMODSEQ" => m.meta.highest_modseq,
                _ => continue,
            };
            parts.push(format!("{} {value}", item.to_ascii_uppercase()));
        }
        let mut l = b"* STATUS ".to_vec();
        string(&mut l, m.name.as_bytes());
        l.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.output.extend_from_slice(&l);
    }

    fn status(&mut self, tag: &str, name: &str, items: &[String]) -> Flow {
        let list = match self.summaries() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        match list.iter().find(|m| m.name == name) {
            Some(m) => {
                let m = m.clone();
                self.status_line(&m, items);
                self.tagged(tag, "OK", "STATUS completed");
            }
            None => self.tagged(tag, "NO", "[NONEXISTENT] No such mailbox"),
        }
        Flow::Done
    }

    fn quota(&mut self, tag: &str, cmd: &Cmd) -> Flow {
        let (_, used, limit) = match self.summaries_and_quota() {
            Ok(q) => q,
            Err(flow) => return flow,
        };
        if let Cmd::GetQuotaRoot(mailbox) = cmd {
            let mut l = b"* QUOTAROOT ".to_vec();
            string(&mut l, mailbox.as_bytes());
            l.extend_from_slice(b" \"\"\r\n");
            self.output.extend_from_slice(&l);
        } else if let Cmd::GetQuota(root) = cmd {
            if !root.is_empty() {
                self.tagged(tag, "NO", "[NONEXISTENT] No such quota root");
                return Flow::Done;
            }
        }
        self.line(&format!(
            "* QUOTA \"\" (STORAGE {} {})",
            used.div_ceil(1024),
            limit / 1024
        ));
        self.tagged(tag, "OK", "GETQUOTA completed");
        Flow::Done
    }

    fn append(
        &mut self,
        tag: &str,
        mailbox: &str,
        flag_names: &[String],
        date: Option<i64>,
        message: &[u8],
    ) -> Flow {
        if let Some(result) = self.committed() {
            match result {
                Ok(applied) => {
                    let uid = applied.uids.first().copied().unwrap_or_default();
                    let validity = applied.uidvalidity.unwrap_or_default();
                    // Appended to the selected mailbox: the client learns of it now.
                    let entry = self.pending_entry.take();
                    if let (State::Selected(sel), Some(entry)) = (&mut self.state, entry) {
                        if sel.name == mailbox && sel.messages.last().is_none_or(|(u, _)| *u < uid)
                        {
                            sel.messages.push((uid, entry));
                            let exists = sel.messages.len();
                            self.line(&format!("* {exists} EXISTS"));
                        }
                    }
                    self.tagged(
                        tag,
                        "OK",
                        &format!("[APPENDUID {validity} {uid}] APPEND completed"),
                    );
                }
                Err(e) => self.commit_failed(tag, &e),
            }
            return Flow::Done;
        }
        let (_, used, limit) = match self.target_and_quota(tag, mailbox) {
            Ok(q) => q,
            Err(flow) => return flow,
        };
        if used + message.len() as u64 > limit {
            self.tagged(tag, "NO", "[OVERQUOTA] Mailbox is full");
            return Flow::Done;
        }
        let (bits, keywords) = parse_flags(flag_names);
        let mut changes = Changes::new();
        let blob = changes.store_blob(message.to_vec());
        let mail = NewMail {
            blob,
            size: message.len() as u64,
            internal_date: date.unwrap_or(self.now),
            flags: bits,
            keywords,
            spam_score: None,
        };
        self.pending_entry = Some(MailEntry {
            blob,
            size: mail.size,
            internal_date: mail.internal_date,
            flags: mail.flags,
            keywords: mail.keywords.clone(),
            modseq: 0,
            spam_score: None,
        });
        changes.append(self.account(), Folder::Named(mailbox.to_owned()), mail);
        self.need(Request::Write(changes))
    }

    // ---- messages ----

    /// Indexes (0-based) of the selected messages a set names, by UID or sequence number.
    fn resolve(&self, uid: bool, set: &SeqSet) -> Vec<usize> {
        let msgs = &self.selected_ref().messages;
        let mut out = Vec::new();
        if msgs.is_empty() {
            return out;
        }
        let last_uid = msgs.last().map_or(0, |(u, _)| *u);
        for (i, (u, _)) in msgs.iter().enumerate() {
            let n = if uid { *u } else { i as u32 + 1 };
            let max = if uid { last_uid } else { msgs.len() as u32 };
            let hit = set.iter().any(|&(a, b)| {
                let a = if a == u32::MAX { max } else { a };
                let b = if b == u32::MAX { max } else { b };
                n >= a.min(b) && n <= a.max(b)
            });
            if hit {
                out.push(i);
            }
        }
        out
    }

    /// The end (an index into `p.indexes`) of the batch that starts at `p.done`: at most
    /// [`BATCH_MESSAGES`] messages and [`BATCH_BYTES`] bytes, and at least one message.
    fn batch_end(&self, p: &Progress) -> usize {
        let msgs = &self.selected_ref().messages;
        let mut bytes = 0u64;
        let mut end = p.done;
        let rest = p.indexes.get(p.done..).unwrap_or_default();
        for &i in rest.iter().take(BATCH_MESSAGES) {
            let size = msgs.get(i).map_or(0, |(_, e)| e.size);
            if end > p.done && bytes.saturating_add(size) > BATCH_BYTES {
                break;
            }
            bytes = bytes.saturating_add(size);
            end += 1;
        }
        end
    }

    /// The bodies of the batch `p.done..end`, or a request for them (keeping `p` until
    /// they come: the command is run again then).
    fn batch_bodies(&mut self, p: Progress, end: usize) -> Result<(Progress, Bodies), Flow> {
        match self.answer.take() {
            Some(Answer::Blobs(map)) => Ok((p, map)),
            other => {
                self.answer = other;
                let msgs = &self.selected_ref().messages;
                let batch = p.indexes.get(p.done..end).unwrap_or_default();
                let mut blobs: Vec<BlobId> = batch
                    .iter()
                    .filter_map(|&i| msgs.get(i).map(|(_, e)| e.blob))
                    .collect();
                blobs.sort_unstable();
                blobs.dedup();
                self.progress = Some(p);
                Err(Flow::Need(Request::Blobs(blobs)))
            }
        }
    }

    fn expunge(&mut self, tag: &str, uids: Option<&SeqSet>, silent: bool) -> Option<Flow> {
        if let Some(result) = self.committed() {
            if let Err(e) = result {
                self.commit_failed(tag, &e);
                return Some(Flow::Done);
            }
            let removed = result.map(|applied| applied.removed).unwrap_or_default();
            let lines = self.forget(&removed);
            if !silent {
                for l in lines {
                    self.line(&l);
                }
                self.tagged(tag, "OK", "EXPUNGE completed");
                return Some(Flow::Done);
            }
            return None;
        }
        let sel = self.selected_ref();
        let in_set: Vec<usize> = match uids {
            Some(set) => self.resolve(true, set),
            None => (0..sel.messages.len()).collect(),
        };
        let doomed: Vec<(u32, MailEntry)> = in_set
            .into_iter()
            .map(|i| sel.messages[i].clone())
            .filter(|(_, e)| e.flags & flags::DELETED != 0)
            .collect();
        if doomed.is_empty() {
            if silent {
                return None;
            }
            self.tagged(tag, "OK", "EXPUNGE completed");
            return Some(Flow::Done);
        }
        // The store removes those still marked \Deleted when it commits.
        let mut changes = Changes::new();
        changes.expunge(
            self.account(),
            sel.meta.id,
            doomed.iter().map(|(u, _)| *u).collect(),
            true,
        );
        Some(self.need(Request::Write(changes)))
    }

    /// Drops the messages `uids` from the selected mailbox's view; the untagged EXPUNGE
    /// lines that tell the client, highest sequence number first.
    fn forget(&mut self, uids: &[u32]) -> Vec<String> {
        let gone: std::collections::HashSet<u32> = uids.iter().copied().collect();
        let sel = self.selected_mut();
        let mut lines = Vec::new();
        for seq in (1..=sel.messages.len()).rev() {
            if gone.contains(&sel.messages[seq - 1].0) {
                sel.messages.remove(seq - 1);
                lines.push(format!("* {seq} EXPUNGE"));
            }
        }
        lines
    }

    fn search(&mut self, tag: &str, uid: bool, key: &SearchKey, esearch: bool) -> Flow {
        let mut p = match self.progress.take() {
            Some(p) => p,
            None => Progress::new((0..self.selected_ref().messages.len()).collect()),
        };
        if key.needs_body() {
            while p.done < p.indexes.len() {
                let end = self.batch_end(&p);
                let (q, bodies) = match self.batch_bodies(p, end) {
                    Ok(b) => b,
                    Err(flow) => return flow,
                };
                p = q;
                self.search_batch(&mut p, end, key, uid, &bodies);
            }
        } else {
            let end = p.indexes.len();
            self.search_batch(&mut p, end, key, uid, &Bodies::new());
        }
        let hits = p.hits;
        if esearch || self.rev2 {
            let mut l = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                l.push_str(" UID");
            }
            if !hits.is_empty() {
                l.push_str(" ALL ");
                l.push_str(&compress_set(&hits));
            }
            self.line(&l);
        } else {
            let list: Vec<String> = hits.iter().map(u32::to_string).collect();
            self.line(format!("* SEARCH {}", list.join(" ")).trim_end());
        }
        self.tagged(tag, "OK", "SEARCH completed");
        Flow::Done
    }

    /// Tests the messages `p.done..end` of a SEARCH.
    fn search_batch(
        &self,
        p: &mut Progress,
        end: usize,
        key: &SearchKey,
        uid: bool,
        bodies: &Bodies,
    ) {
        let sel = self.selected_ref();
        let last_uid = sel.messages.last().map_or(0, |(u, _)| *u);
        let count = sel.messages.len() as u32;
        for &i in p.indexes.get(p.done..end).unwrap_or_default() {
            let Some((u, e)) = sel.messages.get(i) else {
                continue;
            };
            let ctx = MatchCtx {
                seq: i as u32 + 1,
                uid: *u,
                entry: e,
                body: bodies.get(&e.blob).map(|b| b.as_slice()),
                last_uid,
                count,
            };
            if matches(key, &ctx) {
                p.hits.push(if uid { *u } else { i as u32 + 1 });
            }
        }
        p.done = end;
    }

    fn fetch(&mut self, tag: &str, uid: bool, set: &SeqSet, items: &[FetchItem]) -> Flow {
        if let Some(flow) = self.commit_done(tag, "FETCH completed") {
            return flow;
        }
        let mut p = match self.progress.take() {
            Some(p) => p,
            None => Progress::new(self.resolve(uid, set)),
        };
        if items.iter().any(FetchItem::needs_body) {
            while p.done < p.indexes.len() {
                let end = self.batch_end(&p);
                let (q, bodies) = match self.batch_bodies(p, end) {
                    Ok(b) => b,
                    Err(flow) => return flow,
                };
                p = q;
                self.fetch_batch(&mut p, end, uid, items, &bodies);
            }
        } else {
            let end = p.indexes.len();
            self.fetch_batch(&mut p, end, uid, items, &Bodies::new());
        }
        if !p.seen.is_empty() {
            let mut changes = Changes::new();
            changes.set_flags(
                self.account(),
                self.selected_ref().meta.id,
                p.seen,
                FlagChange {
                    mode: FlagMode::Add,
                    flags: flags::SEEN,
                    keywords: Vec::new(),
                },
            );
            return self.need(Request::Write(changes));
        }
        self.tagged(tag, "OK", "FETCH completed");
        Flow::Done
    }

    /// Writes the FETCH responses of the messages `p.done..end`, setting \Seen where the
    /// items do (committed once the last batch is written).
    fn fetch_batch(
        &mut self,
        p: &mut Progress,
        end: usize,
        uid: bool,
        items: &[FetchItem],
        bodies: &Bodies,
    ) {
        let read_only = self.selected_ref().read_only;
        let sets_seen = !read_only
            && items
                .iter()
                .any(|i| matches!(i, FetchItem::Section { peek: false, .. }));
        let mut out = std::mem::take(&mut self.output);
        for &i in p.indexes.get(p.done..end).unwrap_or_default() {
            let Some((msg_uid, mut entry)) = self.selected_ref().messages.get(i).cloned() else {
                continue;
            };
            if sets_seen && entry.flags & flags::SEEN == 0 {
                entry.flags |= flags::SEEN;
                p.seen.push(msg_uid);
                self.selected_mut().messages[i].1.flags = entry.flags;
            }
            let body = bodies.get(&entry.blob).map(|b| b.as_slice());
            write_fetch(
                &mut out,
                i as u32 + 1,
                msg_uid,
                &entry,
                body,
                items,
                uid,
                sets_seen,
            );
        }
        self.output = out;
        p.done = end;
    }

    fn store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mode: StoreMode,
        silent: bool,
        names: &[String],
    ) -> Flow {
        if let Some(flow) = self.store_done(tag) {
            return flow;
        }
        if self.selected_ref().read_only {
            self.tagged(tag, "NO", "[READ-ONLY] Mailbox is read-only");
            return Flow::Done;
        }
        let (bits, keywords) = parse_flags(names);
        let change = FlagChange {
            mode: match mode {
                StoreMode::Replace => FlagMode::Replace,
                StoreMode::Add => FlagMode::Add,
                StoreMode::Remove => FlagMode::Remove,
            },
            flags: bits,
            keywords,
        };
        let uids: Vec<u32> = {
            let sel = self.selected_ref();
            self.resolve(uid, set)
                .into_iter()
                .map(|i| sel.messages[i].0)
                .collect()
        };
        if uids.is_empty() {
            self.tagged(tag, "OK", "STORE completed");
            return Flow::Done;
        }
        self.pending_store = Some(StoreReply { uid, silent });
        let mut changes = Changes::new();
        changes.set_flags(self.account(), self.selected_ref().meta.id, uids, change);
        self.need(Request::Write(changes))
    }

    /// STORE's answer: the flags of each message as the store now has them (a message
    /// expunged meanwhile is left out: the next poll reports its EXPUNGE).
    fn store_done(&mut self, tag: &str) -> Option<Flow> {
        let result = self.committed()?;
        let reply = self.pending_store.take().unwrap_or(StoreReply {
            uid: false,
            silent: true,
        });
        match result {
            Ok(applied) => {
                for (msg_uid, entry) in applied.entries {
                    let sel = self.selected_mut();
                    let Ok(i) = sel.messages.binary_search_by_key(&msg_uid, |(u, _)| *u) else {
                        continue;
                    };
                    sel.messages[i].1 = entry.clone();
                    if reply.silent {
                        continue;
                    }
                    let mut l = format!("* {} FETCH (", i + 1).into_bytes();
                    if reply.uid {
                        l.extend_from_slice(format!("UID {msg_uid} ").as_bytes());
                    }
                    l.extend_from_slice(b"FLAGS ");
                    flag_list(&mut l, entry.flags, &entry.keywords);
                    l.extend_from_slice(b")\r\n");
                    self.output.extend_from_slice(&l);
                }
                self.tagged(tag, "OK", "STORE completed");
            }
            Err(e) => self.commit_failed(tag, &e),
        }
        Some(Flow::Done)
    }

    fn copy(&mut self, tag: &str, uid: bool, set: &SeqSet, target: &str, remove: bool) -> Flow {
        let verb = if remove { "MOVE" } else { "COPY" };
        if let Some(result) = self.committed() {
            match result {
                Ok(applied) => {
                    let validity = applied.uidvalidity.unwrap_or_default();
                    let code = if applied.uids.is_empty() {
                        String::new()
                    } else {
                        format!(
                            "[COPYUID {validity} {} {}] ",
                            compress_set(&applied.sources),
                            compress_set(&applied.uids)
                        )
                    };
                    if remove {
                        self.line(&format!("* OK {code}Moved"));
                        for l in self.forget(&applied.removed) {
                            self.line(&l);
                        }
                        self.tagged(tag, "OK", "MOVE completed");
                    } else {
                        self.tagged(tag, "OK", &format!("{code}COPY completed"));
                    }
                }
                Err(e) => self.commit_failed(tag, &e),
            }
            return Flow::Done;
        }
        let (_, used, limit) = match self.target_and_quota(tag, target) {
            Ok(q) => q,
            Err(flow) => return flow,
        };
        let indexes = self.resolve(uid, set);
        let sel = self.selected_ref();
        let chosen: Vec<&(u32, MailEntry)> = indexes.iter().map(|&i| &sel.messages[i]).collect();
        let added: u64 = chosen.iter().map(|(_, e)| e.size).sum();
        if !remove && used + added > limit {
            self.tagged(tag, "NO", "[OVERQUOTA] Mailbox is full");
            return Flow::Done;
        }
        if chosen.is_empty() {
            self.tagged(tag, "OK", &format!("{verb} completed"));
            return Flow::Done;
        }
        let uids: Vec<u32> = chosen.iter().map(|(u, _)| *u).collect();
        let (account, from) = (self.account(), sel.meta.id);
        let to = Folder::Named(target.to_owned());
        let mut changes = Changes::new();
        if remove {
            changes.move_to(account, from, uids, to);
        } else {
            changes.copy(account, from, uids, to);
        }
        self.need(Request::Write(changes))
    }
}

/// What a search key is tested against.
struct MatchCtx<'a> {
    seq: u32,
    uid: u32,
    entry: &'a MailEntry,
    body: Option<&'a [u8]>,
    last_uid: u32,
    count: u32,
}

fn in_set(n: u32, set: &SeqSet, max: u32) -> bool {
    set.iter().any(|&(a, b)| {
        let a = if a == u32::MAX { max } else { a };
        let b = if b == u32::MAX { max } else { b };
        n >= a.min(b) && n <= a.max(b)
    })
}

fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    String::from_utf8_lossy(hay)
        .to_lowercase()
        .contains(&needle)
}

fn matches(key: &SearchKey, m: &MatchCtx<'_>) -> bool {
    let day = m.entry.internal_date.div_euclid(86400);
    let sent_day = || {
        m.body
            .and_then(structure::parse)
            .and_then(|msg| msg.date().map(|d| d.to_timestamp().div_euclid(86400)))
            .unwrap_or(day)
    };
    match key {
        SearchKey::All => true,
        SearchKey::None => false,
        SearchKey::And(keys) => keys.iter().all(|k| matches(k, m)),
        SearchKey::Or(a, b) => matches(a, m) || matches(b, m),
        SearchKey::Not(a) => !matches(a, m),
        SearchKey::Seq(set) => in_set(m.seq, set, m.count),
        SearchKey::Uid(set) => in_set(m.uid, set, m.last_uid),
        SearchKey::Flag(bit, on) => (m.entry.flags & bit != 0) == *on,
        SearchKey::Keyword(k, on) => {
            m.entry.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) == *on
        }
        SearchKey::Larger(n) => m.entry.size > *n,
        SearchKey::Smaller(n) => m.entry.size < *n,
        SearchKey::Before(d) => day < *d,
        SearchKey::On(d) => day == *d,
        SearchKey::Since(d) => day >= *d,
        SearchKey::SentBefore(d) => sent_day() < *d,
        SearchKey::SentOn(d) => sent_day() == *d,
        SearchKey::SentSince(d) => sent_day() >= *d,
        SearchKey::Header(field, value) => {
            let Some(body) = m.body else { return false };
            let header_end = memchr::memmem::find(body, b"\r\n\r\n").map_or(body.len(), |i| i + 2);
            let header = &body[..header_end];
            let mut found = false;
            let text = String::from_utf8_lossy(header);
            let mut current: Option<(String, String)> = None;
            let mut check = |name: &str, val: &str| {
                if name.eq_ignore_ascii_case(field) && contains_ci(val.as_bytes(), value) {
                    found = true;
                }
            };
            for line in text.split("\r\n") {
                if line.starts_with(' ') || line.starts_with('\t') {
                    if let Some((_, v)) = current.as_mut() {
                        v.push_str(line);
                    }
                    continue;
                }
                if let Some((n, v)) = current.take() {
                    check(&n, &v);
                }
                if let Some((n, v)) = line.split_once(':') {
                    current = Some((n.trim().to_string(), v.to_string()));
                }
            }
            if let Some((n, v)) = current.take() {
                check(&n, &v);
            }
            found
        }
        SearchKey::Body(s) => m.body.is_some_and(|b| {
            let start = memchr::memmem::find(b, b"\r\n\r\n").map_or(b.len(), |i| i + 4);
            contains_ci(&b[start..], s)
        }),
        SearchKey::Text(s) => m.body.is_some_and(|b| contains_ci(b, s)),
    }
}

/// "1:3,5" for [1, 2, 3, 5].
fn compress_set(numbers: &[u32]) -> String {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        parts.push(if start == end {
            start.to_string()
        } else {
            format!("{start}:{end}")
        });
        i += 1;
    }
    parts.join(",")
}

/// System flag bits and keywords from flag names (\Recent and unknown \ flags are ignored).
fn parse_flags(names: &[String]) -> (u32, Vec<String>) {
    let mut bits = 0;
    let mut keywords = Vec::new();
    for n in names {
        if let Some(bit) = system_flag(n) {
            bits |= bit;
        } else if !n.starts_with('\\') && !keywords.contains(n) {
            keywords.push(n.clone());
        }
    }
    (bits, keywords)
}

/// One `* n FETCH (...)` response.
#[allow(clippy::too_many_arguments)]
fn write_fetch(
    out: &mut Vec<u8>,
    seq: u32,
    uid: u32,
    entry: &MailEntry,
    body: Option<&[u8]>,
    items: &[FetchItem],
    by_uid: bool,
    seen_set: bool,
) {
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    let wants_uid = by_uid || items.contains(&FetchItem::Uid);
    if wants_uid {
        sep(out);
        out.extend_from_slice(format!("UID {uid}").as_bytes());
    }
    // Parse the MIME tree only when an item needs it (not for a whole BODY[]).
    let needs_tree = items.iter().any(|i| match i {
        FetchItem::Envelope | FetchItem::BodyStructure | FetchItem::Body => true,
        FetchItem::Section { path, text, .. } => !path.is_empty() || *text != SectionText::Full,
        _ => false,
    });
    // ENVELOPE alone needs only the header: parse no more than that.
    let header_only = items.iter().all(|i| {
        !matches!(
            i,
            FetchItem::BodyStructure | FetchItem::Body | FetchItem::Section { .. }
        )
    });
    let parsed = body.filter(|_| needs_tree).and_then(|b| {
        if header_only {
            let end = memchr::memmem::find(b, b"\r\n\r\n").map_or(b.len(), |i| i + 4);
            structure::parse(&b[..end])
        } else {
            structure::parse(b)
        }
    });
    let mut flags_written = false;
    for item in items {
        match item {
            FetchItem::Uid => {}
            FetchItem::Flags => {
                sep(out);
                out.extend_from_slice(b"FLAGS ");
                flag_list(out, entry.flags, &entry.keywords);
                flags_written = true;
            }
            FetchItem::InternalDate => {
                sep(out);
                out.extend_from_slice(b"INTERNALDATE ");
                out.extend_from_slice(internal_date(entry.internal_date).as_bytes());
            }
            FetchItem::Size => {
                sep(out);
                out.extend_from_slice(format!("RFC822.SIZE {}", entry.size).as_bytes());
            }
            FetchItem::Envelope => {
                sep(out);
                out.extend_from_slice(b"ENVELOPE ");
                match &parsed {
                    Some(m) => structure::envelope(out, m),
                    None => out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)"),
                }
            }
            FetchItem::BodyStructure | FetchItem::Body => {
                sep(out);
                let extended = matches!(item, FetchItem::BodyStructure);
                out.extend_from_slice(if extended {
                    b"BODYSTRUCTURE "
                } else {
                    b"BODY "
                });
                match &parsed {
                    Some(m) => structure::bodystructure(out, m, extended),
                    None => out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)"),
                }
            }
            FetchItem::Section {
                name,
                path,
                text,
                partial,
                binary,
                ..
            } => {
                sep(out);
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                if *binary {
                    let decoded = match (body, &parsed) {
                        (Some(raw), _) if path.is_empty() => Some(raw.to_vec()),
                        (Some(raw), Some(m)) => structure::binary_section(raw, m, path),
                        _ => None,
                    };
                    match decoded {
                        // literal8 (RFC 3516) when the content has a NUL.
                        Some(d) if d.contains(&0) => {
                            out.extend_from_slice(format!("~{{{}}}\r\n", d.len()).as_bytes());
                            out.extend_from_slice(&d);
                        }
                        Some(d) => literal(out, &d),
                        None => out.extend_from_slice(b"NIL"),
                    }
                    continue;
                }
                let data = match (body, &parsed) {
                    (Some(raw), Some(m)) => structure::section(raw, m, path, text),
                    (Some(raw), None) if path.is_empty() && *text == SectionText::Full => {
                        Some(std::borrow::Cow::Borrowed(raw))
                    }
                    _ => None,
                };
                match data {
                    Some(d) => {
                        let d: &[u8] = &d;
                        let d = match partial {
                            Some((start, len)) => {
                                let s = (*start as usize).min(d.len());
                                &d[s..(s + *len as usize).min(d.len())]
                            }
                            None => d,
                        };
                        literal(out, d);
                    }
                    None => out.extend_from_slice(b"NIL"),
                }
            }
        }
    }
    if seen_set && !flags_written {
        sep(out);
        out.extend_from_slice(b"FLAGS ");
        flag_list(out, entry.flags, &entry.keywords);
    }
    out.extend_from_slice(b")\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::{mail, Store, StoreOwner};

    const MESSAGE: &[u8] = b"Subject: hi\r\nFrom: a@b.example\r\n\r\nhello there\r\n";

    thread_local! {
        /// Each test's store (tests run on threads of their own): account 1 with an
        /// INBOX (UIDVALIDITY 7) holding two messages, the second \Seen.
        static STORE: StoreOwner = {
            let owner = Store::open_in_memory().unwrap();
            let store = owner.store();
            let mut c = Changes::new();
            c.create_mailbox(1, "INBOX", None, 6);
            store.commit_blocking(c).unwrap();
            for seen in [0, flags::SEEN] {
                let mut c = Changes::new();
                let blob = c.store_blob(MESSAGE.to_vec());
                let mail = NewMail {
                    blob,
                    size: MESSAGE.len() as u64,
                    internal_date: 0,
                    flags: seen,
                    keywords: Vec::new(),
                    spam_score: None,
                };
                c.append(1, Folder::inbox(), mail);
                store.commit_blocking(c).unwrap();
            }
            owner
        };
    }

    /// Answers a session's request from the test's store, as the runtime does.
    fn fulfil(store: &Store, request: Request) -> Answer {
        match request {
            Request::Mailbox { account, name } => {
                let meta = mail::mailbox(store, account, &name).unwrap();
                Answer::Mailbox(meta.map(|m| {
                    let list = mail::list(store, account, m.id).unwrap();
                    (m, list)
                }))
            }
            Request::Blobs(ids) => Answer::Blobs(
                ids.into_iter()
                    .filter_map(|id| Some((id, Arc::new(mail::blob(store, &id).unwrap()?))))
                    .collect(),
            ),
            Request::Write(changes) => Answer::Committed(store.commit_blocking(changes)),
            Request::Mailboxes { account } => Answer::Mailboxes {
                list: mail::mailboxes(store, account)
                    .unwrap()
                    .into_iter()
                    .map(|(name, meta)| MailboxSummary {
                        name,
                        meta,
                        messages: 0,
                        unseen: 0,
                        deleted: 0,
                        size: 0,
                    })
                    .collect(),
                used: 0,
                limit: 1,
            },
        }
    }

    /// Feeds `input` and plays the runtime with the test's store.
    fn run(s: &mut Session, input: &str, commits: &mut usize) -> String {
        s.feed(input.as_bytes());
        loop {
            match s.step(0) {
                Step::NeedInput | Step::Close | Step::Idle => break,
                Step::StartTls => s.tls_started(),
                Step::Authenticate => {
                    let c = s.take_credentials().unwrap();
                    let ok = c.password == "Secret123";
                    s.auth_result(if ok {
                        AuthOutcome::Success { account: 1 }
                    } else {
                        AuthOutcome::Failure
                    });
                }
                Step::Request(request) => {
                    if matches!(request, Request::Write(_)) {
                        *commits += 1;
                    }
                    let answer = STORE.with(|owner| fulfil(owner.store(), request));
                    s.answer(answer);
                }
            }
        }
        String::from_utf8(s.take_output()).unwrap()
    }

    fn session(tls: bool) -> Session {
        let mut s = Session::new(
            Arc::new(ImapConfig::default()),
            ImapPolicy {
                tls,
                starttls: true,
                auth_without_tls: false,
            },
            Vec::new(),
        );
        let greeting = String::from_utf8(s.take_output()).unwrap();
        assert!(greeting.starts_with("* OK [CAPABILITY IMAP4rev2"));
        s
    }

    #[test]
    fn login_select_fetch_store_search() {
        let mut s = session(true);
        let mut commits = 0;
        let out = run(
            &mut s,
            "a1 LOGIN alice Wrong1\r\na2 LOGIN alice Secret123\r\n",
            &mut commits,
        );
        assert!(
            out.contains("a1 NO [AUTHENTICATIONFAILED]") && out.contains("a2 OK [CAPABILITY"),
            "{out}"
        );
        let out = run(&mut s, "a3 SELECT inbox\r\n", &mut commits);
        assert!(
            out.contains("* 2 EXISTS\r\n")
                && out.contains("[UIDVALIDITY 7]")
                && out.ends_with("a3 OK [READ-WRITE] SELECT completed\r\n"),
            "{out}"
        );
        let out = run(
            &mut s,
            "a4 UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (Subject)])\r\n",
            &mut commits,
        );
        assert!(out.contains("* 1 FETCH (UID 1 FLAGS () BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n)"), "{out}");
        assert_eq!(commits, 0, "PEEK sets no flag");
        let out = run(&mut s, "a5 FETCH 1 BODY[TEXT]\r\n", &mut commits);
        assert!(
            out.contains("BODY[TEXT] {13}\r\nhello there\r\n FLAGS (\\Seen))"),
            "{out}"
        );
        assert_eq!(commits, 1);
        let out = run(
            &mut s,
            "a6 SEARCH UNSEEN\r\na7 UID SEARCH TEXT \"there\" SEEN\r\n",
            &mut commits,
        );
        assert!(
            out.contains("* SEARCH\r\n") && out.contains("* SEARCH 1 2\r\n"),
            "{out}"
        );
        let out = run(
            &mut s,
            "a8 STORE 2 +FLAGS (\\Deleted)\r\na9 EXPUNGE\r\n",
            &mut commits,
        );
        assert!(
            out.contains("* 2 FETCH (FLAGS (\\Seen \\Deleted))")
                && out.contains("* 2 EXPUNGE\r\na9 OK"),
            "{out}"
        );
        let out = run(&mut s, "b1 LOGOUT\r\n", &mut commits);
        assert!(out.starts_with("* BYE"));
    }

    #[test]
    fn errors_and_literals() {
        let mut s = session(false);
        let mut c = 0;
        let out = run(&mut s, "a1 LOGIN alice Secret123\r\n", &mut c);
        assert!(out.starts_with("a1 NO [PRIVACYREQUIRED]"), "{out}");
        let out = run(&mut s, "a2 SELECT INBOX\r\nBOGUS\r\na3 FROB\r\n", &mut c);
        assert!(
            out.contains("a2 BAD") && out.contains("* BAD") && out.contains("a3 BAD"),
            "{out}"
        );
        // A synchronizing literal gets a continuation; a too-large one is refused unread.
        let mut s = session(true);
        let out = run(&mut s, "a1 LOGIN {5}\r\n", &mut c);
        assert_eq!(out, "+ Ready for literal data\r\n");
        let out = run(&mut s, "alice {9}\r\nSecret123\r\n", &mut c);
        assert!(out.contains("a1 OK"), "{out}");
        let out = run(
            &mut s,
            "a2 APPEND INBOX {999999999999}\r\na3 NOOP\r\n",
            &mut c,
        );
        assert!(out.starts_with("a2 NO [TOOBIG]"), "{out}");
    }
}

#[cfg(test)]
#[path = "session_hostile_tests.rs"]
mod hostile_tests;
