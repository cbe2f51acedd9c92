//! The commit thread: group commit for every writer in the process.
//!
//! Workers send [`Batch`]es over a channel and await the answer. The thread takes every
//! batch that is waiting, writes them all in one atomic, synced write (one fsync for the
//! group), then answers each sender. It is also the only writer, which makes it the
//! natural place to hand out mailbox UIDs: an [`Batch::append_mail`] names a mailbox, and
//! the thread picks the UID, so UIDs are dense and never reused without any lock.
//!
//! It also keeps the disk from filling up: a batch that adds content (a message, a queued
//! or quarantined copy) is refused with [`StoreError::NoSpace`] when it would leave less
//! than [`RESERVE_BYTES`] free. RocksDB itself never meets a full disk then, so it never
//! stops (a write error on its log stops it until it can flush its memtables, which needs
//! free space of its own), deletions still go through, and ingest resumes as soon as space
//! is freed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
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

    /// Whether the batch adds content: a message, a queued or quarantined copy. Batches
    /// that only change or remove records (flags, expunges) are never refused for space.
    fn grows(&self) -> bool {
        self.changes.iter().any(|c| match c {
            Change::AppendMail { .. } => true,
            Change::Write(WriteOp::Put { cf, .. }) => {
                matches!(cf, Cf::Blobs | Cf::Queue | Cf::Quarantine)
            }
            _ => false,
        })
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

/// Free space kept on the store's file system: room for RocksDB to flush a memtable (8 MB
/// at most, see `rocks`) and to start its next log (preallocated 8 MB at a time), and for
/// deletions when the disk is otherwise full.
pub const RESERVE_BYTES: u64 = 16 << 20;

/// Bytes available to an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the zeroed struct we own from a NUL-terminated path.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

/// Refuses the batches of `group` that add content beyond the free space (keeping
/// [`RESERVE_BYTES`]); returns the others. `free`: None when unknown (nothing refused).
fn admit_space(group: Vec<(Batch, Reply)>, free: Option<u64>) -> Vec<(Batch, Reply)> {
    let Some(free) = free else { return group };
    let mut budget = free.saturating_sub(RESERVE_BYTES);
    let mut admitted = Vec::with_capacity(group.len());
    for (batch, reply) in group {
        if batch.grows() {
            // The log's preallocated space already counts as used; the flush that later
            // copies the content to a blob file is what the reserve is for.
            let need = batch.payload_bytes() as u64;
            if need > budget {
                tracing::warn!(free, reserve = RESERVE_BYTES, "disk nearly full: refused");
                let _ = reply.send(Err(StoreError::NoSpace("the disk is nearly full".into())));
                continue;
            }
            budget -= need;
        }
        admitted.push((batch, reply));
    }
    admitted
}

/// Runs the commit loop until a shutdown request; called on the `commit` thread. `dir`:
/// where the store lives, for the free-space check.
pub(crate) fn run(kv: Arc<dyn KvStore>, requests: Receiver<Request>, dir: PathBuf) {
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
        let group = if group.iter().any(|(b, _)| b.grows()) {
            admit_space(group, free_bytes(&dir))
        } else {
            group
        };
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
    if group.is_empty() {
        return;
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn message(bytes: usize) -> Batch {
        let mut b = Batch::new();
        b.put(Cf::Blobs, b"hash".to_vec(), vec![0; bytes]);
        b
    }

    fn flags() -> Batch {
        let mut b = Batch::new();
        b.put(Cf::Mail, b"entry".to_vec(), vec![0; 100]);
        b.delete(Cf::Mail, b"old".to_vec());
        b
    }

    #[test]
    fn content_beyond_the_reserve_is_refused_and_changes_pass() {
        let mut answers = Vec::new();
        let group: Vec<(Batch, Reply)> = [message(1000), flags(), message(1000), message(10)]
            .into_iter()
            .map(|b| {
                let (tx, rx) = oneshot::channel();
                answers.push(rx);
                (b, tx)
            })
            .collect();
        // Room for the first message and the small one, not the second.
        let admitted = admit_space(group, Some(RESERVE_BYTES + 1050));
        assert_eq!(admitted.len(), 3);
        assert!(!admitted[1].0.grows());
        let refused: Vec<bool> = answers
            .iter_mut()
            .map(|rx| matches!(rx.try_recv(), Ok(Err(StoreError::NoSpace(_)))))
            .collect();
        assert_eq!(refused, [false, false, true, false]);
    }

    #[test]
    fn unknown_free_space_refuses_nothing() {
        let (tx, _rx) = oneshot::channel();
        assert_eq!(admit_space(vec![(message(1 << 30), tx)], None).len(), 1);
    }

    #[test]
    fn free_space_of_a_real_directory() {
        let dir = tempfile::tempdir().unwrap();
        assert!(free_bytes(dir.path()).is_some());
        assert!(free_bytes(Path::new("/no/such/dir")).is_none());
    }
}
