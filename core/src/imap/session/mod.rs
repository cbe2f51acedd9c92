//! The IMAP server session: a state machine fed bytes. Commands are framed (literals
//! included), parsed, and executed against a view of the selected mailbox that the runtime
//! loads on request ([`Step::Request`]); changes go out as store batches through the same
//! channel. A command that needs data returns to the runtime and is run again, from the
//! start, once the answer is in: handlers take what they asked for from `self.answer`, and
//! what they keep between two runs from `self.in_progress`.
//!
//! This file holds the session itself, its interface to the runtime and the dispatch of
//! commands; each family of commands has a file of its own beside it.

mod append;
mod auth;
mod batch;
mod claims;
mod condstore;
mod copy;
mod expunge;
mod fetch;
mod framing;
mod idle;
mod mailboxes;
mod response_code;
mod search;
mod sequence;
mod sort;
mod store;

#[cfg(test)]
mod compliance_tests;
#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use super::command::Cmd;
use super::recent::{RecentBook, RecentUids};
use super::rendered::RenderedMemo;
use crate::auth::sasl::Credentials;
use crate::auth::service::AuthOutcome;
use crate::protocol::{Buffers, Clock, Protocol};
use crate::store::listings::Listing;
use crate::store::schema::{BlobId, MailboxMeta};
use crate::store::{Applied, Changes, StoreError};

use append::AppendState;
use batch::Progress;
use response_code::{ResponseCode, Status};
use sort::Order;
use store::StoreReply;

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
    /// Which messages are \Recent in which session: one book for all the server's
    /// sessions.
    pub recent: Arc<RecentBook>,
    /// ENVELOPE and HEADER.FIELDS answers rendered before: one memo for all sessions.
    pub rendered: Arc<RenderedMemo>,
}

impl Default for ImapConfig {
    fn default() -> Self {
        ImapConfig {
            hostname: "localhost".into(),
            max_line: 64 * 1024,
            max_literal: 50_000_000,
            max_command_before_auth: 8 * 1024,
            max_bad_commands: 20,
            recent: Arc::default(),
            rendered: Arc::default(),
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
    /// Messages no session has claimed as \Recent yet (STATUS RECENT).
    pub recent: u32,
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
    /// Each message's header block (its stored summary), or its whole bytes where it has
    /// none; answered by [`Answer::Blobs`].
    Headers(Vec<BlobId>),
    /// Apply changes through the mail store (which checks them against the store as it
    /// is when they commit).
    Write(Changes),
    /// [`Request::Write`], then (once committed, without the client waiting for it) teach
    /// the Bayes classifier the messages of `learn`: a move into or out of Junk.
    WriteAndLearn(Changes, Learn),
}

/// Messages the user classified by moving them: their bodies, and spam or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Learn {
    /// The account that moved them (its own database, when accounts have their own).
    pub account: u32,
    pub blobs: Vec<BlobId>,
    pub spam: bool,
}

/// The runtime's answer to a [`Request`].
#[derive(Debug)]
pub enum Answer {
    Mailboxes {
        list: Vec<MailboxSummary>,
        used: u64,
        limit: u64,
        /// Subscriptions whose mailbox was deleted (they stay: RFC 9051 6.3.7).
        lost: Vec<String>,
    },
    /// The mailbox and its messages in UID order (shared with the store's listing cache).
    Mailbox(Option<(MailboxMeta, Listing)>),
    Blobs(HashMap<BlobId, Arc<Vec<u8>>>),
    Committed(Result<Applied, StoreError>),
}

/// What the runtime must do next (the shape every protocol shares); [`Step::Idle`]: wait
/// for input ("DONE"), calling [`Session::idle_poll`] now and then.
pub type Step = crate::protocol::Step<Request>;

/// Bytes read ahead at a time (a command with its literals may be longer: it is read in
/// several).
const READ_ROOM: usize = 16 * 1024;

/// The selected mailbox as the client was last told of it.
struct Selected {
    name: String,
    meta: MailboxMeta,
    read_only: bool,
    /// In UID order: the message sequence number is the index + 1. Shares its chunks
    /// with the store's cached listing and other sessions until this view diverges.
    messages: Listing,
    /// The keywords the client was told of (FLAGS), sorted.
    keywords: Vec<String>,
    /// The messages that are \Recent in this session (IMAP4rev1 only).
    recent: RecentUids,
}

enum State {
    NotAuthenticated,
    Authenticated,
    Selected(Selected),
    Logout,
}

/// What running a command came to.
enum Flow {
    Done,
    Need(Request),
    Idle,
}

/// What a command keeps between one run and the next (after the runtime has answered its
/// request). One command runs at a time, so there is at most one.
enum InProgress {
    /// APPEND, waiting for its commit.
    Append(AppendState),
    /// STORE, waiting for its commit.
    Store(StoreReply),
    /// FETCH or SEARCH, waiting for the bodies of its next batch of messages.
    Batches(Progress),
}

pub struct Session {
    config: Arc<ImapConfig>,
    policy: ImapPolicy,
    io: Buffers,
    state: State,
    account: Option<u32>,
    /// The command being run, with its tag.
    current: Option<(String, Cmd)>,
    answer: Option<Answer>,
    /// What the command being run keeps between its runs.
    in_progress: Option<InProgress>,
    credentials: Option<Credentials>,
    awaiting: bool,
    /// Input bytes up to which a literal continuation was sent.
    acked: usize,
    /// AUTHENTICATE PLAIN waiting for its response line.
    sasl_tag: Option<String>,
    /// The rest of an over-long line is being thrown away, up to its LF.
    skip_line: bool,
    idling: bool,
    idle_refresh: bool,
    rev2: bool,
    /// Modification sequences are shown (RFC 7162 CONDSTORE: enabled, or used).
    condstore: bool,
    /// QRESYNC is enabled: expunges are told as VANISHED.
    qresync: bool,
    /// UTF8=ACCEPT is enabled: mailbox names are UTF-8 (as with IMAP4rev2).
    utf8_accept: bool,
    bad_commands: u32,
    tls_pending: bool,
    /// Unix time, given by the runtime at each step.
    now: i64,
}

impl Session {
    pub fn new(config: Arc<ImapConfig>, policy: ImapPolicy, buffer: Vec<u8>) -> Session {
        let mut s = Session {
            config,
            policy,
            io: Buffers::new(buffer),
            state: State::NotAuthenticated,
            account: None,
            current: None,
            answer: None,
            in_progress: None,
            credentials: None,
            awaiting: false,
            acked: 0,
            sasl_tag: None,
            skip_line: false,
            idling: false,
            idle_refresh: false,
            rev2: false,
            condstore: false,
            qresync: false,
            utf8_accept: false,
            bad_commands: 0,
            tls_pending: false,
            now: 0,
        };
        let caps = s.capabilities();
        s.untagged(
            Status::Ok,
            ResponseCode::Capability(caps),
            "Gannet IMAP ready",
        );
        s
    }

    /// The session's buffers, for reuse once it is over.
    pub fn into_buffers(self) -> Buffers {
        self.io
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

    // ---- the runtime's side ----

    pub fn answer(&mut self, answer: Answer) {
        self.awaiting = false;
        self.answer = Some(answer);
    }

    pub fn tls_started(&mut self) {
        self.policy.tls = true;
        self.tls_pending = false;
        self.io.input.clear();
        self.acked = 0;
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
                return match self.credentials.take() {
                    Some(credentials) => Step::Authenticate(credentials),
                    None => Step::NeedInput,
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

    /// Runs (or runs again, once its request is answered) the command `cmd`.
    fn execute(&mut self, tag: &str, cmd: &Cmd) -> Flow {
        let authenticated = !matches!(self.state, State::NotAuthenticated);
        let selected = matches!(self.state, State::Selected(_));
        match cmd {
            Cmd::Capability => self.capability(tag),
            Cmd::Logout => self.logout(tag),
            Cmd::Noop | Cmd::Check => return self.noop(tag),
            Cmd::StartTls => self.starttls(tag),
            Cmd::Login { user, pass } => self.login(tag, user, pass),
            Cmd::Authenticate { mechanism, initial } => {
                self.authenticate(tag, mechanism, initial.as_deref())
            }
            Cmd::Enable(caps) => self.enable(tag, caps),
            Cmd::Id => self.id(tag),
            _ if !authenticated => self.bad(tag, "Command not valid before authentication"),
            Cmd::Namespace => self.namespace(tag),
            Cmd::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => return self.select(tag, mailbox, *read_only, *condstore, qresync.as_ref()),
            Cmd::Create(name, special_use) => {
                return self.create(tag, name, special_use.as_deref())
            }
            Cmd::Delete(name) => return self.delete(tag, name),
            Cmd::Rename(from, to) => return self.rename(tag, from, to),
            Cmd::Subscribe(name, on) => return self.subscribe(tag, name, *on),
            Cmd::List {
                reference,
                patterns,
                lsub,
                options,
            } => return self.list(tag, reference, patterns, *lsub, options),
            Cmd::Status { mailbox, items } => return self.status(tag, mailbox, items),
            Cmd::Append {
                mailbox,
                flags,
                date,
                message,
            } => return self.append(tag, mailbox, flags, *date, message),
            Cmd::GetQuota(_) | Cmd::GetQuotaRoot(_) => return self.quota(tag, cmd),
            Cmd::Idle => return self.idle(),
            _ if !selected => self.bad(tag, "No mailbox selected"),
            // A message number beyond the mailbox the client was told of (RFC 9051 9,
            // `seq-number`): BAD rather than a silent nothing.
            Cmd::Fetch {
                uid: false, set, ..
            }
            | Cmd::Store {
                uid: false, set, ..
            }
            | Cmd::Copy {
                uid: false, set, ..
            } if self.beyond_mailbox(set) => {
                // Not counted toward closing the connection: a client racing another
                // session's expunge sends such a number in good faith.
                let text = "Message number beyond the mailbox";
                self.respond(tag, Status::Bad, None, text);
            }
            Cmd::Close => return self.close(tag),
            Cmd::Unselect => self.unselect(tag),
            Cmd::Expunge { uids } => return self.expunge_command(tag, uids.as_ref()),
            Cmd::Search { uid, key, returns } => return self.search(tag, *uid, key, *returns),
            Cmd::BadCharset => self.no(tag, ResponseCode::BadCharset, "Unsupported charset"),
            Cmd::Sort { uid, criteria, key } => {
                return self.sort(tag, *uid, Order::Sort(criteria), key)
            }
            Cmd::Thread {
                uid,
                references,
                key,
            } => return self.sort(tag, *uid, Order::Thread(*references), key),
            Cmd::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            } => return self.fetch(tag, *uid, set, items, *changed_since, *vanished),
            Cmd::Store { .. } => return self.store(tag, cmd),
            Cmd::Copy {
                uid,
                set,
                mailbox,
                remove,
            } => return self.copy(tag, *uid, set, mailbox, *remove),
        }
        Flow::Done
    }

    // ---- writing responses ----

    fn line(&mut self, text: &str) {
        self.io.line(text);
    }

    /// `tag STATUS [CODE] text` (with `*` for a tag: an untagged status response).
    fn respond(&mut self, tag: &str, status: Status, code: Option<ResponseCode>, text: &str) {
        match code {
            Some(code) => self.line(&format!("{tag} {status} {code} {text}")),
            None => self.line(&format!("{tag} {status} {text}")),
        }
    }

    /// An untagged status response with a response code: `* OK [CODE] text`.
    fn untagged(&mut self, status: Status, code: ResponseCode, text: &str) {
        self.respond("*", status, Some(code), text);
    }

    fn ok(&mut self, tag: &str, text: &str) {
        self.respond(tag, Status::Ok, None, text);
    }

    fn no(&mut self, tag: &str, code: impl Into<Option<ResponseCode>>, text: &str) {
        self.respond(tag, Status::No, code.into(), text);
    }

    /// A BAD answer, counted: too many of them close the connection.
    fn bad(&mut self, tag: &str, text: &str) {
        self.respond(tag, Status::Bad, None, text);
        self.bad_commands += 1;
        if self.bad_commands >= self.config.max_bad_commands {
            self.close_with("Too many errors");
        }
    }

    // ---- commits ----

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

    /// When the commit asked for earlier has answered: its tagged reply, and done.
    fn commit_done(&mut self, tag: &str, done: &str) -> Option<Flow> {
        match self.committed()? {
            Ok(_) => self.ok(tag, done),
            Err(e) => self.commit_failed(tag, &e),
        }
        Some(Flow::Done)
    }

    /// The tagged reply to a failed commit.
    fn commit_failed(&mut self, tag: &str, e: &StoreError) {
        match e {
            StoreError::NoSuchMailbox(_) => {
                self.no(tag, ResponseCode::TryCreate, "No such mailbox")
            }
            StoreError::MailboxExists(_) => {
                self.no(tag, ResponseCode::AlreadyExists, "Mailbox exists")
            }
            StoreError::Refused(why) => self.no(tag, ResponseCode::Cannot, why),
            StoreError::NoSpace(_) => self.no(
                tag,
                ResponseCode::Unavailable,
                "The server is out of disk space",
            ),
            e => self.no(tag, ResponseCode::ServerBug, &e.to_string()),
        }
    }

    // ---- the selected mailbox ----

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

    /// Whether the client writes and reads mailbox names in modified UTF-7 (an IMAP4rev1
    /// client that did not enable UTF8=ACCEPT).
    fn names_in_utf7(&self) -> bool {
        !self.rev2 && !self.utf8_accept
    }

    /// A mailbox name as this client reads it.
    fn shown_name<'n>(&self, name: &'n str) -> std::borrow::Cow<'n, str> {
        if self.names_in_utf7() && (!name.is_ascii() || name.contains('&')) {
            std::borrow::Cow::Owned(super::utf7::encode(name))
        } else {
            std::borrow::Cow::Borrowed(name)
        }
    }
}

impl Protocol for Session {
    type Request = Request;
    type Answer = Answer;
    type Context<'a> = dyn Clock + 'a;

    fn step(&mut self, clock: &mut (dyn Clock + '_)) -> Step {
        Session::step(self, clock.now())
    }

    fn answer(&mut self, answer: Answer) {
        Session::answer(self, answer);
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
        READ_ROOM
    }

    fn is_idle(&self) -> bool {
        Session::is_idle(self)
    }

    fn lifetime_mark(&self) -> Option<u64> {
        Session::lifetime_mark(self)
    }

    fn close_idle(&mut self) {
        self.close_with("Idle timeout");
    }

    fn close_shutdown(&mut self) {
        self.close_with("Server shutting down");
    }

    fn idle_poll(&mut self) {
        Session::idle_poll(self);
    }

    fn watched_mailbox(&self) -> Option<(u32, u32)> {
        match &self.state {
            State::Selected(sel) => Some((self.account(), sel.meta.id)),
            _ => None,
        }
    }
}
