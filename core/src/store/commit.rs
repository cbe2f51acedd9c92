//! The commit thread: group commit for every writer in the process.
//!
//! Workers send [`Changes`] over a channel and await the answer. The thread takes every
//! commit that is waiting, writes them all in one atomic, synced write (one fsync for the
//! group), then answers each sender. It is also the only writer, which makes it the
//! natural place to decide mail changes: [`super::sequencer`] reads what each operation
//! changes at commit time, hands out UIDs and ids, counts blob references and usage,
//! without any lock. Usage changes go to the quota book once they are durable, and the
//! mailboxes changed to those watching them (IMAP IDLE).
//!
//! It also keeps the disk from filling up: a batch that adds content (a message, a queued
//! or quarantined copy) is refused with [`StoreError::NoSpace`] when it would leave less
//! than [`RESERVE_BYTES`] free. RocksDB itself never meets a full disk then, so it never
//! stops (a write error on its log stops it until it can flush its memtables, which needs
//! free space of its own), deletions still go through, and ingest resumes as soon as space
//! is freed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::bayes_mirror::BayesMirror;
use super::changes::{Applied, Changes};
use super::kv::{KvStore, StoreError, WriteOp};
use super::listings::Listings;
use super::sequencer::Sequencer;
use super::watch::MailboxWatch;

/// The answer to a commit: what it did.
pub type Committed = Result<Applied, StoreError>;

pub(crate) type Reply = oneshot::Sender<Committed>;

/// Work that runs alone on the commit thread, between two groups: nothing else writes
/// while it runs (the integrity check and its repair).
pub(crate) type Exclusive = Box<dyn FnOnce(&dyn KvStore) + Send>;

pub(crate) enum Request {
    Commit(Changes, Reply),
    Exclusive(Exclusive),
    /// Flush and stop; the sender is answered when the thread is done.
    Shutdown(oneshot::Sender<()>),
}

/// Told of every change of an account's storage use once it is durable (the quota book).
pub trait UsageObserver: Send + Sync {
    fn usage_changed(&self, account: u32, delta: i64);
}

/// Where the commit thread reports usage; set once, after the store is open.
pub(crate) type UsageSink = Arc<OnceLock<Arc<dyn UsageObserver>>>;

/// Limits on one group: bounded so one fsync never carries an unbounded write.
const MAX_GROUP_BATCHES: usize = 1024;
const MAX_GROUP_BYTES: usize = 64 << 20;

/// Free space kept on the store's file system: room for RocksDB to flush a memtable (8 MB
/// at most, see `rocks`) and to start its next log (preallocated 8 MB at a time), and for
/// deletions when the disk is otherwise full.
pub const RESERVE_BYTES: u64 = 16 << 20;

/// Bytes available to an unprivileged writer on the file system holding `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    super::disk::space(dir).map(|s| s.available)
}

/// Refuses the batches of `group` that add content beyond the free space (keeping
/// [`RESERVE_BYTES`]); returns the others. `free`: None when unknown (nothing refused).
fn admit_space(group: Vec<(Changes, Reply)>, free: Option<u64>) -> Vec<(Changes, Reply)> {
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
/// where the store's files are, for the free-space check (none: in memory).
pub(crate) fn run(
    kv: Arc<dyn KvStore>,
    requests: Receiver<Request>,
    dir: Option<PathBuf>,
    usage: UsageSink,
    watch: Arc<MailboxWatch>,
    bayes: Arc<BayesMirror>,
    listings: Arc<Listings>,
) {
    let mut sequencer = Sequencer::default();
    let mut shutdown = None;
    while shutdown.is_none() {
        let Ok(first) = requests.recv() else { break };
        let mut group = Vec::new();
        let mut bytes = 0;
        let mut exclusive = None;
        let mut next = Some(first);
        while let Some(request) = next.take() {
            match request {
                Request::Shutdown(done) => shutdown = Some(done),
                Request::Exclusive(job) => exclusive = Some(job),
                Request::Commit(batch, reply) => {
                    bytes += batch.payload_bytes();
                    group.push((batch, reply));
                }
            }
            if shutdown.is_none()
                && exclusive.is_none()
                && group.len() < MAX_GROUP_BATCHES
                && bytes < MAX_GROUP_BYTES
            {
                next = requests.try_recv().ok();
            }
        }
        let group = if group.iter().any(|(b, _)| b.grows()) {
            admit_space(group, dir.as_deref().and_then(free_bytes))
        } else {
            group
        };
        let shared = Shared {
            usage: &usage,
            watch: &watch,
            bayes: &bayes,
            listings: &listings,
        };
        commit_group(kv.as_ref(), &mut sequencer, group, &shared);
        if let Some(job) = exclusive {
            job(kv.as_ref());
            // It may have written counters behind the mirror's back.
            bayes.clear();
            // It may have written: what the sequencer remembers may be stale.
            sequencer.group_failed();
        }
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

/// What the commit thread keeps up to date besides the store.
struct Shared<'a> {
    usage: &'a UsageSink,
    watch: &'a MailboxWatch,
    bayes: &'a BayesMirror,
    listings: &'a Listings,
}

fn commit_group(
    kv: &dyn KvStore,
    sequencer: &mut Sequencer,
    group: Vec<(Changes, Reply)>,
    shared: &Shared<'_>,
) {
    let Shared {
        usage,
        watch,
        bayes,
        listings,
    } = *shared;
    if group.is_empty() {
        return;
    }
    let started = std::time::Instant::now();
    let mut ops: Vec<WriteOp> = Vec::new();
    let mut waiters = Vec::with_capacity(group.len());
    for (changes, reply) in group {
        match sequencer.resolve(kv, changes, &mut ops) {
            Ok(applied) => waiters.push((reply, applied)),
            Err(e) => {
                let _ = reply.send(Err(e));
            }
        }
    }
    if waiters.is_empty() {
        return;
    }
    let result = if ops.is_empty() {
        Ok(())
    } else {
        let writing = std::time::Instant::now();
        let written = bayes.write_through(&ops, || kv.write(&ops, true));
        crate::metrics::STORE_WRITE.observe(writing.elapsed());
        written
    };
    crate::metrics::STORE_COMMIT.observe(started.elapsed());
    match &result {
        Ok(()) => {
            // Before anyone hears of the commit: a reader woken by it finds its
            // mailbox's listing brought up to date rather than reading it again.
            for change in sequencer.group_written() {
                listings.follow(change);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, batches = waiters.len(), "group commit failed");
            // The UIDs and ids handed out were not persisted: forget them.
            sequencer.group_failed();
        }
    }
    tracing::trace!(batches = waiters.len(), ops = ops.len(), "group committed");
    let observer = usage.get();
    for (reply, applied) in waiters {
        if let (Ok(()), Some(observer)) = (&result, observer) {
            for &(account, delta) in &applied.usage {
                if delta != 0 {
                    observer.usage_changed(account, delta);
                }
            }
        }
        if result.is_ok() {
            watch.changed(&applied.mailboxes);
        }
        let _ = reply.send(result.clone().map(|()| applied));
    }
}

pub(crate) type RequestSender = Sender<Request>;

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::kv::Cf;

    fn message(bytes: usize) -> Changes {
        let mut b = Changes::new();
        b.put(Cf::Blobs, b"hash".to_vec(), vec![0; bytes]);
        b
    }

    fn flags() -> Changes {
        let mut b = Changes::new();
        b.put(Cf::Mail, b"entry".to_vec(), vec![0; 100]);
        b.delete(Cf::Mail, b"old".to_vec());
        b
    }

    #[test]
    fn content_beyond_the_reserve_is_refused_and_changes_pass() {
        let mut answers = Vec::new();
        let group: Vec<(Changes, Reply)> = [message(1000), flags(), message(1000), message(10)]
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
