//! The runtime, played for the session's unit tests: a session fed bytes as a client sends
//! them, its requests answered from a real mail store in memory (account 1), and a record
//! of what it asked for. Helpers change the store behind the session's back, as another
//! session or a delivery would.

use crate::protocol::Protocol;
use std::rc::Rc;
use std::sync::Arc;

use super::{Answer, ImapConfig, ImapPolicy, MailboxSummary, Request, Session, Step};
use crate::auth::service::AuthOutcome;
use crate::store::schema::{flags, MailEntry};
use crate::store::{mail, Changes, FlagChange, FlagMode, Folder, NewMail, Store, StoreOwner};

/// The message the standard INBOX holds twice: 47 bytes.
pub(super) const MESSAGE: &[u8] = b"Subject: hi\r\nFrom: a@b.example\r\n\r\nhello there\r\n";

/// The password that logs in (any user, account 1); any other fails.
pub(super) const PASSWORD: &str = "Secret123";

type Hook = Box<dyn FnOnce(&Store)>;

pub(super) struct Harness {
    pub(super) s: Session,
    pub(super) store: Rc<StoreOwner>,
    /// What the session wrote before it was first fed: the greeting.
    pub(super) greeting: String,
    /// The number of bodies each `Request::Blobs` asked for.
    pub(super) blob_requests: Vec<usize>,
    /// The number of header blocks each `Request::Headers` asked for.
    pub(super) header_requests: Vec<usize>,
    /// How many `Request::Write`s it sent.
    pub(super) commits: usize,
    /// It asked to close the connection.
    pub(super) closed: bool,
    /// The account's storage use and limit, as the runtime reports them with the mailboxes.
    pub(super) used: u64,
    pub(super) limit: u64,
    /// Run on the store just before the next commit (a change racing the command's).
    before_commit: Option<Hook>,
}

impl Harness {
    /// A session with `config`, over TLS or not (STARTTLS offered), and an empty store.
    pub(super) fn empty(config: ImapConfig, tls: bool) -> Harness {
        let mut s = Session::new(
            Arc::new(config),
            ImapPolicy {
                tls,
                starttls: true,
                auth_without_tls: false,
            },
            Vec::new(),
        );
        let greeting = String::from_utf8_lossy(&s.take_output()).into_owned();
        Harness {
            s,
            store: Rc::new(Store::open_in_memory().unwrap()),
            greeting,
            blob_requests: Vec::new(),
            header_requests: Vec::new(),
            commits: 0,
            closed: false,
            used: 0,
            limit: u64::MAX,
            before_commit: None,
        }
    }

    /// Over TLS or not: account 1 with an INBOX (UIDVALIDITY 7) holding [`MESSAGE`] twice
    /// (UIDs 1 and 2, the second \Seen, both of internal date 0).
    pub(super) fn with_tls(tls: bool) -> Harness {
        let h = Harness::empty(ImapConfig::default(), tls);
        h.create_mailbox("INBOX");
        for seen in [0, flags::SEEN] {
            h.deliver("INBOX", MESSAGE, seen);
        }
        h.forget_recent("INBOX");
        h
    }

    /// [`Harness::with_tls`] over TLS.
    pub(super) fn standard() -> Harness {
        Harness::with_tls(true)
    }

    /// Another session of the same server (over TLS): the same store, configuration and
    /// book of \Recent claims.
    pub(super) fn another(&self) -> Harness {
        let mut s = Session::new(
            self.s.config.clone(),
            ImapPolicy {
                tls: true,
                starttls: true,
                auth_without_tls: false,
            },
            Vec::new(),
        );
        let greeting = String::from_utf8_lossy(&s.take_output()).into_owned();
        Harness {
            s,
            store: self.store.clone(),
            greeting,
            blob_requests: Vec::new(),
            header_requests: Vec::new(),
            commits: 0,
            closed: false,
            used: self.used,
            limit: self.limit,
            before_commit: None,
        }
    }

    /// As if another session had seen a mailbox of account 1: its messages are not
    /// \Recent any more.
    pub(super) fn forget_recent(&self, mailbox: &str) {
        let meta = mail::mailbox(self.store(), 1, mailbox).unwrap().unwrap();
        self.s.config.recent.claim(1, meta.id, meta.uidnext);
    }

    pub(super) fn store(&self) -> &Store {
        self.store.store()
    }

    /// Creates a mailbox of account 1 with a special-use attribute.
    pub(super) fn create_mailbox_with_use(&self, name: &str, special_use: &str) {
        let mut c = Changes::new();
        c.create_mailbox(1, name, Some(special_use), 6);
        self.store().commit_blocking(c).unwrap();
    }

    /// Creates a mailbox of account 1.
    pub(super) fn create_mailbox(&self, name: &str) {
        let mut c = Changes::new();
        c.create_mailbox(1, name, None, 6);
        self.store().commit_blocking(c).unwrap();
    }

    /// Delivers `body` to a mailbox of account 1 with `flags`; its UID.
    pub(super) fn deliver(&self, mailbox: &str, body: &[u8], flags: u32) -> u32 {
        self.deliver_sized(mailbox, body, body.len() as u64, flags)
    }

    /// [`Harness::deliver`] with the size the index gives (the body may be shorter).
    pub(super) fn deliver_sized(&self, mailbox: &str, body: &[u8], size: u64, flags: u32) -> u32 {
        let mut c = Changes::new();
        let blob = c.store_blob(body.to_vec());
        let mail = NewMail {
            blob,
            size,
            internal_date: 0,
            flags,
            keywords: Vec::new(),
            spam_score: None,
        };
        c.append(1, Folder::Named(mailbox.into()), mail);
        let applied = self.store().commit_blocking(c).unwrap();
        applied.uids[0]
    }

    /// Delivers `count` messages to a mailbox of account 1 in one commit.
    pub(super) fn deliver_many(&self, mailbox: &str, count: usize) {
        let mut c = Changes::new();
        for n in 0..count {
            let body = format!("Subject: {n}\r\n\r\nx\r\n").into_bytes();
            let mail = NewMail {
                size: body.len() as u64,
                blob: c.store_blob(body),
                internal_date: 0,
                flags: 0,
                keywords: Vec::new(),
                spam_score: None,
            };
            c.append(1, Folder::Named(mailbox.into()), mail);
        }
        self.store().commit_blocking(c).unwrap();
    }

    /// The messages of a mailbox of account 1 as the store has them.
    pub(super) fn messages(&self, mailbox: &str) -> Vec<(u32, MailEntry)> {
        let meta = mail::mailbox(self.store(), 1, mailbox).unwrap().unwrap();
        mail::list(self.store(), 1, meta.id).unwrap()
    }

    /// Has `change` run on the store just before the session's next commit.
    pub(super) fn before_commit(&mut self, change: impl FnOnce(&Store) + 'static) {
        self.before_commit = Some(Box::new(change));
    }

    /// Feeds `input`, runs the session until it waits, and returns what it wrote.
    pub(super) fn run<I: AsRef<[u8]> + ?Sized>(&mut self, input: &I) -> String {
        self.s.feed(input.as_ref());
        loop {
            match self.s.step(0) {
                Step::NeedInput | Step::Idle => break,
                Step::Close => {
                    self.closed = true;
                    break;
                }
                Step::StartTls => self.s.tls_started(),
                Step::Authenticate(c) => {
                    self.s.auth_result(if c.password == PASSWORD {
                        AuthOutcome::Success { account: 1 }
                    } else {
                        AuthOutcome::Failure
                    });
                }
                Step::Request(request) => {
                    let answer = self.fulfil(request);
                    self.s.answer(answer);
                }
            }
        }
        String::from_utf8_lossy(&self.s.take_output()).into_owned()
    }

    /// Answers a request as the runtime does.
    fn fulfil(&mut self, request: Request) -> Answer {
        let store = self.store.store();
        match request {
            Request::Mailbox { account, name } => {
                let found = mail::mailbox(store, account, &name).unwrap().map(|m| {
                    let list = mail::listing(store, account, &m).unwrap();
                    (m, list)
                });
                Answer::Mailbox(found)
            }
            Request::Blobs(ids) => {
                self.blob_requests.push(ids.len());
                let found = ids
                    .into_iter()
                    .filter_map(|id| Some((id, Arc::new(mail::blob(store, &id).unwrap()?))));
                Answer::Blobs(found.collect())
            }
            Request::WriteAndLearn(changes, learn) => {
                self.commits += 1;
                let committed = store.commit_blocking(changes);
                if committed.is_ok() {
                    crate::store::bayes::learn_stored(store, 0, &learn.blobs, learn.spam).unwrap();
                }
                Answer::Committed(committed)
            }
            Request::Headers(ids) => {
                self.header_requests.push(ids.len());
                let found = ids.into_iter().filter_map(|id| {
                    Some((id, Arc::new(mail::header_or_message(store, &id).unwrap()?)))
                });
                Answer::Blobs(found.collect())
            }
            Request::Write(changes) => {
                self.commits += 1;
                if let Some(change) = self.before_commit.take() {
                    change(store);
                }
                Answer::Committed(store.commit_blocking(changes))
            }
            Request::Mailboxes { account } => {
                let mut list = Vec::new();
                for (name, meta) in mail::mailboxes(store, account).unwrap() {
                    let messages = mail::listing(store, account, &meta).unwrap();
                    let count = |bit: u32, on: bool| {
                        let has = |e: &MailEntry| (e.flags & bit != 0) == on;
                        messages.iter().filter(|(_, e)| has(e)).count() as u32
                    };
                    list.push(MailboxSummary {
                        messages: messages.len() as u32,
                        unseen: count(flags::SEEN, false),
                        deleted: count(flags::DELETED, true),
                        size: messages.iter().map(|(_, e)| e.size).sum(),
                        recent: crate::imap::recent::unclaimed(
                            &self.s.config.recent,
                            account,
                            meta.id,
                            &messages,
                        ),
                        name,
                        meta,
                    });
                }
                Answer::Mailboxes {
                    list,
                    used: self.used,
                    limit: self.limit,
                    lost: mail::lost_subscriptions(store, account).unwrap(),
                }
            }
        }
    }

    /// Logs in (as account 1).
    pub(super) fn login(&mut self) {
        let out = self.run(&format!("l1 LOGIN alice {PASSWORD}\r\n"));
        assert!(out.starts_with("l1 OK [CAPABILITY"), "{out}");
    }

    /// Logs in and selects INBOX.
    pub(super) fn login_select(&mut self) {
        self.login();
        let out = self.run("l2 SELECT INBOX\r\n");
        assert!(out.contains("l2 OK [READ-WRITE]"), "{out}");
    }
}

/// The id of a mailbox of account 1.
fn mailbox_id(store: &Store, name: &str) -> u32 {
    mail::mailbox(store, 1, name).unwrap().unwrap().id
}

/// Deletes a mailbox of account 1.
pub(super) fn delete_mailbox(store: &Store, name: &str) {
    let mut c = Changes::new();
    c.delete_mailbox(1, name);
    store.commit_blocking(c).unwrap();
}

/// Expunges messages of a mailbox of account 1, \Deleted or not.
pub(super) fn expunge(store: &Store, mailbox: &str, uids: &[u32]) {
    let mut c = Changes::new();
    c.expunge(1, mailbox_id(store, mailbox), uids.to_vec(), false);
    store.commit_blocking(c).unwrap();
}

/// Adds system flags to messages of a mailbox of account 1.
pub(super) fn set_flags(store: &Store, mailbox: &str, uids: &[u32], bits: u32) {
    let change = FlagChange {
        mode: FlagMode::Add,
        flags: bits,
        keywords: Vec::new(),
    };
    let mut c = Changes::new();
    c.set_flags(1, mailbox_id(store, mailbox), uids.to_vec(), change);
    store.commit_blocking(c).unwrap();
}
