//! The mail-store API: every write of mail, described as operations that the commit thread
//! applies to the store as it is when they commit.
//!
//! A caller (IMAP, POP3, delivery, the queue runner, the CLI) builds [`Changes`] from
//! typed operations: append a message to a folder, copy or move messages, expunge them,
//! change their flags, create, delete, rename or subscribe a mailbox, queue a message.
//! None of them names a column family, a key or a counter: the commit thread
//! ([`super::sequencer`]) turns them into writes. It alone hands out UIDs and mailbox ids,
//! counts blob references (deleting a blob whose count reaches zero in the same write) and
//! account usage, and it reads each entry it changes at commit time: a message another
//! session expunged first is skipped, never brought back, never subtracted twice.
//!
//! Everything in one [`Changes`] is written atomically: all of it or nothing.

use super::kv::{Cf, WriteOp};
use super::quarantine::{HeldMessage, HeldStatus};
use super::queue::{self, QueuedMessage};
use super::schema::{encode, keys, BlobId, MailEntry};
use super::summary::Summary;

/// A mailbox named by the caller, or found by its RFC 6154 special-use attribute (so that
/// renaming Junk keeps spam delivery working).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Folder {
    Named(String),
    /// The account's mailbox with this attribute (`\Junk`, `\Sent`, ...); INBOX if it has
    /// none.
    SpecialUse(&'static str),
}

impl Folder {
    pub fn inbox() -> Folder {
        Folder::Named("INBOX".into())
    }

    pub fn junk() -> Folder {
        Folder::SpecialUse("\\Junk")
    }
}

/// A message to append: its blob must be stored by the same [`Changes`]
/// ([`Changes::store_blob`]) or already referenced by another entry.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: i64,
    pub flags: u32,
    pub keywords: Vec<String>,
    pub spam_score: Option<f32>,
}

impl NewMail {
    /// A message as it arrives: no flags, keywords or score yet.
    pub fn arrived(blob: BlobId, size: u64, internal_date: i64) -> NewMail {
        NewMail {
            blob,
            size,
            internal_date,
            flags: 0,
            keywords: Vec::new(),
            spam_score: None,
        }
    }
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagMode {
    Replace,
    Add,
    Remove,
}

/// A change of system flags (bits of [`super::schema::flags`]) and keywords.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    pub mode: FlagMode,
    pub flags: u32,
    pub keywords: Vec<String>,
}

impl FlagChange {
    /// `entry` with the change applied.
    pub fn apply(&self, entry: &MailEntry) -> MailEntry {
        let mut out = entry.clone();
        match self.mode {
            FlagMode::Replace => {
                out.flags = self.flags;
                out.keywords = self.keywords.clone();
            }
            FlagMode::Add => {
                out.flags |= self.flags;
                for k in &self.keywords {
                    if !out.keywords.contains(k) {
                        out.keywords.push(k.clone());
                    }
                }
            }
            FlagMode::Remove => {
                out.flags &= !self.flags;
                out.keywords.retain(|k| !self.keywords.contains(k));
            }
        }
        out
    }
}

/// What a commit did, for the caller's reply.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// UIDs given to appended and copied messages, in order.
    pub uids: Vec<u32>,
    /// The UIDVALIDITY of the mailbox the last append or copy went to.
    pub uidvalidity: Option<u32>,
    /// For copies and moves: the source UID of each of `uids` (messages that were gone
    /// at commit time are not copied and not listed).
    pub sources: Vec<u32>,
    /// UIDs expunged or moved away (those that still existed).
    pub removed: Vec<u32>,
    /// Flag changes: each message still there, as it is now stored.
    pub entries: Vec<(u32, MailEntry)>,
    /// Flag changes not made because the message had changed since the modification
    /// sequence the caller gave (CONDSTORE's UNCHANGEDSINCE).
    pub modified: Vec<u32>,
    /// How each account's storage use changed.
    pub usage: Vec<(u32, i64)>,
    /// The mailboxes whose messages changed (added, removed, flags), by (account, id).
    pub mailboxes: Vec<(u32, u32)>,
    /// What each [`Changes::learn`] did, in order.
    pub learned: Vec<super::bayes::Learned>,
}

/// One operation, as the commit thread receives it.
#[derive(Debug)]
pub(super) enum Change {
    /// A raw write (records of `store/` itself: directory, queue, blobs, statistics).
    Write(WriteOp),
    /// The whole commit applies only if this record exists when it commits.
    Require {
        cf: Cf,
        key: Vec<u8>,
    },
    /// Adds `delta` references to a blob; the blob goes when none are left.
    BlobRef {
        blob: BlobId,
        delta: i64,
    },
    Append {
        account: u32,
        folder: Folder,
        mail: NewMail,
    },
    Copy {
        account: u32,
        from: u32,
        uids: Vec<u32>,
        to: Folder,
        remove: bool,
    },
    Expunge {
        account: u32,
        mailbox: u32,
        uids: Vec<u32>,
        only_deleted: bool,
    },
    SetFlags {
        account: u32,
        mailbox: u32,
        uids: Vec<u32>,
        change: FlagChange,
        /// Only messages whose modification sequence is at most this change.
        unchanged_since: Option<u64>,
    },
    CreateMailbox {
        account: u32,
        name: String,
        special_use: Option<String>,
        now: i64,
    },
    DeleteMailbox {
        account: u32,
        name: String,
    },
    /// Deletes every mailbox of an account, INBOX and special-use ones included, with
    /// every message in them (the account is being deleted).
    DeleteAllMailboxes {
        account: u32,
    },
    /// Learns a message's tokens as spam or ham (None: forgets them).
    Learn {
        scope: u32,
        message: [u8; 32],
        tokens: Vec<u64>,
        spam: Option<bool>,
        /// Auto-learning: a message already learned is left alone.
        auto: bool,
    },
    /// Drops tokens of a Bayes scope (expiry), with their last-learned days.
    ExpireTokens {
        scope: u32,
        tokens: Vec<u64>,
    },
    /// Moves every message of mailbox `from` (as it is at commit time) to `to`.
    MoveAll {
        account: u32,
        from: u32,
        to: Folder,
    },
    RenameMailbox {
        account: u32,
        from: String,
        to: String,
    },
    Subscribe {
        account: u32,
        name: String,
        on: bool,
    },
    /// Holds a message (its blob stored by the same commit).
    Hold(Box<HeldMessage>),
    /// Settles a held message for one recipient (released, or deleted for them); the
    /// commit fails with `Changed` if it is no longer held for them (settled already, or
    /// the entry is gone).
    Settle {
        id: u64,
        recipient: usize,
        status: HeldStatus,
    },
    /// Removes a held message (and its hold on the blob), if it is still there.
    DropHeld {
        id: u64,
    },
}

/// Changes that reach the disk together.
#[derive(Debug, Default)]
pub struct Changes {
    pub(super) changes: Vec<Change>,
    /// Blobs stored by this commit (each stored once however often it is used).
    blobs: Vec<BlobId>,
}

impl Changes {
    pub fn new() -> Self {
        Changes::default()
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Takes in `other`'s changes: both reach the disk together.
    pub fn extend(&mut self, other: Changes) {
        for blob in other.blobs {
            if !self.blobs.contains(&blob) {
                self.blobs.push(blob);
            }
        }
        self.changes.extend(other.changes);
    }

    // ---- mail ----

    /// Stores message bytes (named by their hash, stored once) and returns their id; the
    /// blob lives as long as entries or queued messages refer to it. Its summary (the
    /// header block, [`super::summary`]) is stored with it and goes with it.
    pub fn store_blob(&mut self, bytes: Vec<u8>) -> BlobId {
        let id: BlobId = *blake3::hash(&bytes).as_bytes();
        if !self.blobs.contains(&id) {
            self.blobs.push(id);
            if let Some(summary) = Summary::of(&bytes) {
                self.put(Cf::Headers, keys::blob(&id), summary.encode());
            }
            self.put(Cf::Blobs, keys::blob(&id), bytes);
        }
        id
    }

    /// Appends a message to a folder of `account`: a new UID, one more reference to its
    /// blob, its size added to the account's use. Fails the commit with `NoSuchMailbox` if
    /// a named folder does not exist.
    pub fn append(&mut self, account: u32, folder: Folder, mail: NewMail) {
        self.changes.push(Change::Append {
            account,
            folder,
            mail,
        });
    }

    /// Copies the messages `uids` of mailbox `from` (those that still exist) to `to`.
    pub fn copy(&mut self, account: u32, from: u32, uids: Vec<u32>, to: Folder) {
        self.changes.push(Change::Copy {
            account,
            from,
            uids,
            to,
            remove: false,
        });
    }

    /// Moves the messages `uids` of mailbox `from` (those that still exist) to `to`.
    pub fn move_to(&mut self, account: u32, from: u32, uids: Vec<u32>, to: Folder) {
        self.changes.push(Change::Copy {
            account,
            from,
            uids,
            to,
            remove: true,
        });
    }

    /// Removes the messages `uids` of mailbox `mailbox`: with `only_deleted`, those that
    /// carry `\Deleted` when the commit runs (IMAP EXPUNGE), else all that still exist.
    pub fn expunge(&mut self, account: u32, mailbox: u32, uids: Vec<u32>, only_deleted: bool) {
        self.changes.push(Change::Expunge {
            account,
            mailbox,
            uids,
            only_deleted,
        });
    }

    /// Changes the flags of the messages `uids` (those that still exist). Each message
    /// whose flags change gets a new modification sequence of its own (the mailbox's
    /// highest, plus one).
    pub fn set_flags(&mut self, account: u32, mailbox: u32, uids: Vec<u32>, change: FlagChange) {
        self.set_flags_unchanged_since(account, mailbox, uids, change, None);
    }

    /// [`Changes::set_flags`], with `unchanged_since` (RFC 7162's UNCHANGEDSINCE): only on
    /// messages whose modification sequence is at most that, at commit time; the others
    /// are listed in [`Applied::modified`].
    pub fn set_flags_unchanged_since(
        &mut self,
        account: u32,
        mailbox: u32,
        uids: Vec<u32>,
        change: FlagChange,
        unchanged_since: Option<u64>,
    ) {
        self.changes.push(Change::SetFlags {
            account,
            mailbox,
            uids,
            change,
            unchanged_since,
        });
    }

    // ---- mailboxes ----

    /// Creates a mailbox (`MailboxExists` if the name is taken); its id and UIDVALIDITY
    /// are new, never those of a deleted mailbox.
    pub fn create_mailbox(
        &mut self,
        account: u32,
        name: &str,
        special_use: Option<&str>,
        now: i64,
    ) {
        self.changes.push(Change::CreateMailbox {
            account,
            name: name.to_owned(),
            special_use: special_use.map(str::to_owned),
            now,
        });
    }

    /// Deletes a mailbox with every message in it. INBOX and mailboxes with a
    /// special-use attribute are refused (`Refused`).
    pub fn delete_mailbox(&mut self, account: u32, name: &str) {
        self.changes.push(Change::DeleteMailbox {
            account,
            name: name.to_owned(),
        });
    }

    /// Deletes every mailbox of `account` with all their messages (INBOX included): the
    /// mail of an account being deleted.
    pub fn delete_all_mailboxes(&mut self, account: u32) {
        self.changes.push(Change::DeleteAllMailboxes { account });
    }

    /// Renames a mailbox; its messages, UIDs and special-use attribute stay with it.
    /// Learns the message `message` (an id: a hash of its Message-ID or bytes), whose
    /// Bayes tokens are `tokens`, as spam (`Some(true)`) or ham in the database `scope` (0:
    /// site-wide), or forgets it (`None`). Decided at commit time against what was
    /// learned of it before: learned twice it counts once; learned the other way it
    /// moves ([`Applied::learned`] says which).
    pub fn learn(&mut self, scope: u32, message: [u8; 32], tokens: Vec<u64>, spam: Option<bool>) {
        self.changes.push(Change::Learn {
            scope,
            message,
            tokens,
            spam,
            auto: false,
        });
    }

    /// Drops `tokens` of Bayes scope `scope` ([`super::bayes::expire`]).
    pub fn expire_tokens(&mut self, scope: u32, tokens: Vec<u64>) {
        self.changes.push(Change::ExpireTokens { scope, tokens });
    }

    /// Learns a message as auto-learning decided: like [`Changes::learn`], but a message
    /// already learned (by a person, either way) is left as it is.
    pub fn auto_learn(&mut self, scope: u32, message: [u8; 32], tokens: Vec<u64>, spam: bool) {
        self.changes.push(Change::Learn {
            scope,
            message,
            tokens,
            spam: Some(spam),
            auto: true,
        });
    }

    /// Moves every message of mailbox `from`, as it is when this commits, to `to` (as
    /// [`Changes::move_to`]): RENAME of INBOX.
    pub fn move_all(&mut self, account: u32, from: u32, to: Folder) {
        self.changes.push(Change::MoveAll { account, from, to });
    }

    pub fn rename_mailbox(&mut self, account: u32, from: &str, to: &str) {
        self.changes.push(Change::RenameMailbox {
            account,
            from: from.to_owned(),
            to: to.to_owned(),
        });
    }

    pub fn subscribe(&mut self, account: u32, name: &str, on: bool) {
        self.changes.push(Change::Subscribe {
            account,
            name: name.to_owned(),
            on,
        });
    }

    // ---- the outbound queue ----

    /// Queues `message` (whose blob this commit stores or another entry holds).
    pub fn enqueue(&mut self, message: &QueuedMessage) {
        self.put(
            Cf::Queue,
            queue::key(message.next_attempt, message.id),
            encode(message),
        );
        self.blob_ref(message.blob, 1);
        self.count("messages_queued", 1);
    }

    /// Replaces the queue entry `old` with `new` (the same message, changed), if `old`
    /// is still queued when this commits (else `Changed`: an admin or the runner was
    /// first, and their change stands).
    pub fn requeue(&mut self, old: &QueuedMessage, new: &QueuedMessage) {
        let old_key = queue::key(old.next_attempt, old.id);
        self.require(Cf::Queue, old_key.clone());
        self.delete(Cf::Queue, old_key);
        self.put(Cf::Queue, queue::key(new.next_attempt, new.id), encode(new));
    }

    /// Drops `message` from the queue and its hold on the blob, if it is still queued
    /// when this commits (else `Changed`).
    pub fn dequeue(&mut self, message: &QueuedMessage) {
        let key = queue::key(message.next_attempt, message.id);
        self.require(Cf::Queue, key.clone());
        self.delete(Cf::Queue, key);
        self.blob_ref(message.blob, -1);
    }

    // ---- the quarantine ----

    /// Holds `message` (whose blob this commit stores): it counts against no quota.
    pub fn hold(&mut self, message: &HeldMessage) {
        self.changes.push(Change::Hold(Box::new(message.clone())));
        self.blob_ref(message.blob, 1);
        self.count("messages_quarantined", 1);
    }

    /// Records that recipient `recipient` of held message `id` had it released, `by`
    /// whom: the whole commit (with the delivery of the released copy) applies only if
    /// it was still held for them.
    pub fn mark_released(&mut self, id: u64, recipient: usize, at: i64, by: &str) {
        self.changes.push(Change::Settle {
            id,
            recipient,
            status: HeldStatus::Released {
                at,
                by: by.to_owned(),
            },
        });
    }

    /// Deletes held message `id` for recipient `recipient` (the others keep their
    /// choice), if it is still held for them.
    pub fn mark_deleted(&mut self, id: u64, recipient: usize, at: i64, by: &str) {
        self.changes.push(Change::Settle {
            id,
            recipient,
            status: HeldStatus::Deleted {
                at,
                by: by.to_owned(),
            },
        });
    }

    /// Removes held message `id` (deleted, or expired), if it is still there.
    pub fn drop_held(&mut self, id: u64) {
        self.changes.push(Change::DropHeld { id });
    }

    /// Adds `n` to a statistic (`messages_accepted`, ...), in its total and in the
    /// current minute's bucket (the console's charts; kept two days).
    pub fn count(&mut self, stat: &str, n: i64) {
        self.add(Cf::Counters, keys::stat(stat), n);
        let minute = crate::clock::unix_now().div_euclid(60);
        self.add(Cf::Counters, keys::stat_minute(minute, stat), n);
    }

    // ---- raw writes, for store/ alone ----

    pub(super) fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.changes
            .push(Change::Write(WriteOp::Put { cf, key, value }));
    }

    pub(super) fn add(&mut self, cf: Cf, key: Vec<u8>, delta: i64) {
        self.changes
            .push(Change::Write(WriteOp::Add { cf, key, delta }));
    }

    pub(super) fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.changes
            .push(Change::Write(WriteOp::Delete { cf, key }));
    }

    /// Makes the whole commit depend on the record `key` existing when it commits: if
    /// another writer removed it first, nothing is written and the commit answers
    /// `Changed`.
    pub(super) fn require(&mut self, cf: Cf, key: Vec<u8>) {
        self.changes.push(Change::Require { cf, key });
    }

    pub(super) fn blob_ref(&mut self, blob: BlobId, delta: i64) {
        self.changes.push(Change::BlobRef { blob, delta });
    }

    /// Whether the commit adds content: a message, a queued copy. Commits that only
    /// change or remove (flags, expunges) are never refused for space.
    pub(super) fn grows(&self) -> bool {
        self.changes.iter().any(|c| match c {
            Change::Append { .. } | Change::Copy { remove: false, .. } | Change::Hold(_) => true,
            Change::Write(WriteOp::Put { cf, .. }) => {
                matches!(cf, Cf::Blobs | Cf::Queue | Cf::Quarantine)
            }
            _ => false,
        })
    }

    /// Roughly the bytes the commit writes (for the free-space check and group limits).
    pub(super) fn payload_bytes(&self) -> usize {
        self.changes
            .iter()
            .map(|c| match c {
                Change::Write(WriteOp::Put { value, .. }) => value.len(),
                Change::Copy { uids, .. } => 64 * uids.len(),
                _ => 64,
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(flags: u32, keywords: &[&str]) -> MailEntry {
        MailEntry {
            blob: [0; 32],
            size: 1,
            internal_date: 0,
            flags,
            keywords: keywords.iter().map(|k| k.to_string()).collect(),
            modseq: 0,
            spam_score: None,
        }
    }

    #[test]
    fn flag_changes_replace_add_and_remove() {
        let e = entry(1, &["$a"]);
        let change = |mode, flags, kw: &[&str]| FlagChange {
            mode,
            flags,
            keywords: kw.iter().map(|k| k.to_string()).collect(),
        };
        assert_eq!(
            change(FlagMode::Add, 4, &["$b", "$a"]).apply(&e),
            entry(5, &["$a", "$b"])
        );
        assert_eq!(
            change(FlagMode::Remove, 1, &["$a"]).apply(&e),
            entry(0, &[])
        );
        assert_eq!(
            change(FlagMode::Replace, 8, &["$c"]).apply(&e),
            entry(8, &["$c"])
        );
    }

    #[test]
    fn a_blob_is_stored_once_per_commit() {
        let mut c = Changes::new();
        let a = c.store_blob(b"same".to_vec());
        let b = c.store_blob(b"same".to_vec());
        assert_eq!(a, b);
        assert_eq!(c.changes.len(), 1);
        assert!(c.grows());
        let mut only_flags = Changes::new();
        only_flags.expunge(1, 1, vec![1], true);
        assert!(!only_flags.grows());
    }
}
