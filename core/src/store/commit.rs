//! The commit thread: group commit for every writer in the process.
//!
//! Workers send [`Batch`]es over a channel and await the answer. The thread takes every
//! batch that is waiting, writes them all in one atomic, synced write (one fsync for the
//! group), then answers each sender. It is also the only writer, which makes it the
//! natural place to hand out mailbox UIDs: an [`Batch::append_mail`] names a mailbox, and
//! the thread picks the UID, so UIDs are dense and never reused without any lock.

use std::collections::HashMap;
use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::kv::{Cf, KvStore, StoreError, WriteOp};
use super::schema::{decode, encode, keys, MailEntry, MailboxMeta};

/// Changes that must reach the disk together.
#[derive(Debug, Default)]
pub struct Batch {
    changes: Vec<Change>,
}

#[derive(Debug)]
enum Change {
    Write(WriteOp),
    AppendMail {
        account: u32,
        mailbox: String,
        entry: MailEntry,
    },
    /// The batch applies only if this record exists when it commits.
    Require {
        cf: Cf,
        key: Vec<u8>,
    },
}

impl Batch {
    pub fn new() -> Self {
        Batch::default()
    }

    pub fn put(&mut self, cf: Cf, key: Vec<u8>, value: Vec<u8>) {
        self.changes
            .push(Change::Write(WriteOp::Put { cf, key, value }));
    }

    pub fn add(&mut self, cf: Cf, key: Vec<u8>, delta: i64) {
        self.changes
            .push(Change::Write(WriteOp::Add { cf, key, delta }));
    }

    pub fn delete(&mut self, cf: Cf, key: Vec<u8>) {
        self.changes
            .push(Change::Write(WriteOp::Delete { cf, key }));
    }

    /// Makes the whole batch depend on the record `key` existing when it commits: if
    /// another writer removed it first, nothing of the batch is written and the commit
    /// answers [`StoreError::Changed`]. (The commit thread is the only writer, so the check
    /// and the write cannot be separated by another change.)
    pub fn require(&mut self, cf: Cf, key: Vec<u8>) {
        self.changes.push(Change::Require { cf, key });
    }

    /// Appends a message to a mailbox; the commit thread assigns its UID and modseq.
    pub fn append_mail(&mut self, account: u32, mailbox: &str, entry: MailEntry) {
        self.changes.push(Change::AppendMail {
            account,
            mailbox: mailbox.to_owned(),
            entry,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Takes in `other`'s changes: both reach the disk together.
    pub fn extend(&mut self, other: Batch) {
        self.changes.extend(other.changes);
    }

    fn payload_bytes(&self) -> usize {
        self.changes
            .iter()
            .map(|c| match c {
                Change::Write(WriteOp::Put { value, .. }) => value.len(),
                _ => 64,
            })
            .sum()
    }
}

/// The answer to a commit: the UIDs given to its appends, in order.
pub type Committed = Result<Vec<u32>, StoreError>;

pub(crate) type Reply = oneshot::Sender<Committed>;

pub(crate) enum Request {
    Commit(Batch, Reply),
    /// Flush and stop; the sender is answered when the thread is done.
    Shutdown(oneshot::Sender<()>),
}

/// Limits on one group: bounded so one fsync never carries an unbounded write.
const MAX_GROUP_BATCHES: usize = 1024;
const MAX_GROUP_BYTES: usize = 64 << 20;

/// Runs the commit loop until a shutdown request; called on the `commit` thread.
pub(crate) fn run(kv: Arc<dyn KvStore>, requests: Receiver<Request>) {
    let mut sequencer = Sequencer::default();
    let mut shutdown = None;
    while shutdown.is_none() {
        let Ok(first) = requests.recv() else { break };
        let mut group = Vec::new();
        let mut bytes = 0;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Shutdown(done) => shutdown = Some(done),
                Request::Commit(batch, reply) => {
                    bytes += batch.payload_bytes();
                    group.push((batch, reply));
                }
            }
            if shutdown.is_none() && group.len() < MAX_GROUP_BATCHES && bytes < MAX_GROUP_BYTES {
                next = requests.try_recv().ok();
            }
        }
        commit_group(kv.as_ref(), &mut sequencer, group);
    }
    // Answer anything still queued, then flush.
    while let Ok(request) = requests.try_recv() {
        if let Request::Commit(_, reply) = request {
            let _ = reply.send(Err(StoreError::Closed));
        }
    }
    if let Err(e) = kv.flush() {
        tracing::error!(error = %e, "flush at shutdown failed");
    }
    if let Some(done) = shutdown {
        let _ = done.send(());
    }
}

fn commit_group(kv: &dyn KvStore, sequencer: &mut Sequencer, group: Vec<(Batch, Reply)>) {
    let mut ops = Vec::new();
    let mut waiters = Vec::with_capacity(group.len());
    for (batch, reply) in group {
        match sequencer.resolve(kv, batch, &mut ops) {
            Ok(uids) => waiters.push((reply, uids)),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    if waiters.is_empty() {
        return;
    }
    let result = kv.write(&ops, true);
    if let Err(e) = &result {
        tracing::error!(error = %e, batches = waiters.len(), "group commit failed");
        // The UIDs handed out were not persisted: forget them.
        sequencer.mailboxes.clear();
    }
    tracing::trace!(batches = waiters.len(), ops = ops.len(), "group committed");
    for (reply, uids) in waiters {
        let _ = reply.send(result.clone().map(|()| uids));
    }
}

/// Mailbox states as the commit thread has written them (a write-through cache).
#[derive(Default)]
struct Sequencer {
    mailboxes: HashMap<Vec<u8>, MailboxMeta>,
}

impl Sequencer {
    /// Turns a batch into write operations, appended to `ops`; a batch that cannot be
    /// resolved adds nothing. (A batch must not both write a mailbox record and append to
    /// that mailbox.)
    fn resolve(
        &mut self,
        kv: &dyn KvStore,
        batch: Batch,
        ops: &mut Vec<WriteOp>,
    ) -> Result<Vec<u32>, StoreError> {
        // The records the batch requires: as the earlier batches of this group leave them,
        // else as stored.
        for change in &batch.changes {
            if let Change::Require { cf, key } = change {
                let pending = ops.iter().rev().find_map(|op| match op {
                    WriteOp::Put { cf: c, key: k, .. } if c == cf && k == key => Some(true),
                    WriteOp::Delete { cf: c, key: k } if c == cf && k == key => Some(false),
                    _ => None,
                });
                let exists = match pending {
                    Some(exists) => exists,
                    None => kv.get(*cf, key)?.is_some(),
                };
                if !exists {
                    return Err(StoreError::Changed(cf.name()));
                }
            }
        }
        // First make sure every mailbox named exists, so that nothing changes on failure.
        for change in &batch.changes {
            if let Change::AppendMail {
                account, mailbox, ..
            } = change
            {
                let key = keys::mailbox(*account, mailbox);
                if let std::collections::hash_map::Entry::Vacant(slot) = self.mailboxes.entry(key) {
                    let raw = kv
                        .get(Cf::Mailboxes, slot.key())?
                        .ok_or_else(|| StoreError::NoSuchMailbox(mailbox.clone()))?;
                    slot.insert(decode(Cf::Mailboxes, &raw)?);
                }
            }
        }
        let mut resolved = Vec::with_capacity(batch.changes.len() + 1);
        let mut uids = Vec::new();
        for change in batch.changes {
            match change {
                Change::Write(op) => {
                    // A direct write of a mailbox record replaces what we know of it.
                    if let WriteOp::Put {
                        cf: Cf::Mailboxes,
                        key,
                        ..
                    }
                    | WriteOp::Delete {
                        cf: Cf::Mailboxes,
                        key,
                    } = &op
                    {
                        self.mailboxes.remove(key);
                    }
                    resolved.push(op);
                }
                Change::Require { .. } => {}
                Change::AppendMail {
                    account,
                    mailbox,
                    mut entry,
                } => {
                    let key = keys::mailbox(account, &mailbox);
                    let meta = self
                        .mailboxes
                        .get_mut(&key)
                        .ok_or_else(|| StoreError::NoSuchMailbox(mailbox.clone()))?;
                    let uid = meta.uidnext;
                    uids.push(uid);
                    meta.uidnext += 1;
                    meta.highest_modseq += 1;
                    entry.modseq = meta.highest_modseq;
                    resolved.push(WriteOp::Put {
                        cf: Cf::Mail,
                        key: keys::mail(account, meta.id, uid),
                        value: encode(&entry),
                    });
                    resolved.push(WriteOp::Put {
                        cf: Cf::Mailboxes,
                        key,
                        value: encode(meta),
                    });
                }
            }
        }
        ops.append(&mut resolved);
        Ok(uids)
    }
}

pub(crate) type RequestSender = Sender<Request>;
