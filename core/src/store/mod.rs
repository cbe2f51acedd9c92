//! The one store: RocksDB behind a small key-value trait, written through one commit thread.
//!
//! * [`kv`]: the engine-neutral interface ([`KvStore`], [`Cf`], [`WriteOp`]).
//! * `rocks`: the RocksDB engine (the only file that names RocksDB).
//! * [`commit`]: the group-commit thread; every write in the process goes through it.
//! * [`schema`]: keys and values of every record.
//! * [`directory`]: domains, accounts, aliases.
//! * [`mail`]: reading mailboxes and messages.
//! * [`queue`]: the outbound queue.

pub mod commit;
pub mod directory;
pub mod kv;
pub mod mail;
pub mod queue;
pub mod reader;
#[cfg(feature = "rocksdb")]
mod rocks;
pub mod schema;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use commit::{Batch, Committed};
pub use kv::{Cf, KvStore, StoreError, WriteOp};

use commit::{Request, RequestSender};

/// A handle on the open store; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Store {
    kv: Arc<dyn KvStore>,
    commits: RequestSender,
}

/// Owns the commit thread; [`StoreOwner::close`] flushes and stops it.
pub struct StoreOwner {
    store: Store,
    thread: Option<JoinHandle<()>>,
}

/// The key-value engine in `dir`: RocksDB.
#[cfg(feature = "rocksdb")]
fn engine(dir: &Path) -> Result<Arc<dyn KvStore>, StoreError> {
    Ok(Arc::new(rocks::RocksStore::open(dir)?))
}

/// Built without RocksDB (the fuzz targets): no store can be opened.
#[cfg(not(feature = "rocksdb"))]
fn engine(_: &Path) -> Result<Arc<dyn KvStore>, StoreError> {
    Err(StoreError::Engine(
        "built without RocksDB (the `rocksdb` feature)".into(),
    ))
}

/// Creates `dir` (and its parents) for the server user alone, and tightens the mode of
/// one that exists: the store holds all mail and every password hash.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

impl Store {
    /// Opens (or creates) the store in `dir` and starts its commit thread.
    pub fn open(dir: &Path) -> Result<StoreOwner, StoreError> {
        private_dir(dir)
            .map_err(|e| StoreError::Engine(format!("cannot create {}: {e}", dir.display())))?;
        let kv = engine(dir)?;
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread_kv = kv.clone();
        let thread_dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || commit::run(thread_kv, rx, thread_dir))
            .map_err(|e| StoreError::Engine(format!("cannot start the commit thread: {e}")))?;
        Ok(StoreOwner {
            store: Store { kv, commits: tx },
            thread: Some(thread),
        })
    }

    /// Reads go straight to the engine.
    pub fn kv(&self) -> &dyn KvStore {
        self.kv.as_ref()
    }

    /// Queues `batch` for the next group commit; the answer arrives once it is synced.
    pub fn submit(&self, batch: Batch) -> oneshot::Receiver<Committed> {
        let (tx, rx) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Request::Commit(_, reply))) =
            self.commits.send(Request::Commit(batch, tx))
        {
            let _ = reply.send(Err(StoreError::Closed));
        }
        rx
    }

    /// Commits `batch` and waits for it to be durable (async callers).
    pub async fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        self.commit_appending(batch).await.map(|_| ())
    }

    /// Commits `batch` and returns the UIDs its appends were given, in order.
    pub async fn commit_appending(&self, batch: Batch) -> Committed {
        self.submit(batch).await.unwrap_or(Err(StoreError::Closed))
    }

    /// Commits `batch` and waits for it to be durable (threads outside any runtime).
    pub fn commit_blocking(&self, batch: Batch) -> Result<(), StoreError> {
        self.submit(batch)
            .blocking_recv()
            .unwrap_or(Err(StoreError::Closed))
            .map(|_| ())
    }
}

impl StoreOwner {
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Stops the commit thread after the writes already queued, and flushes.
    pub fn close(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let (tx, rx) = oneshot::channel();
            if self.store.commits.send(Request::Shutdown(tx)).is_ok() {
                let _ = rx.blocking_recv();
            }
            let _ = thread.join();
        }
    }
}

impl Drop for StoreOwner {
    fn drop(&mut self) {
        self.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::schema::{keys, MailEntry, MailboxMeta};
    use super::*;

    fn entry(size: u64) -> MailEntry {
        MailEntry {
            blob: [7; 32],
            size,
            internal_date: 0,
            flags: 0,
            keywords: Vec::new(),
            modseq: 0,
            spam_score: None,
        }
    }

    #[test]
    fn a_batch_that_requires_a_removed_record_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let store = owner.store().clone();
        let mut b = Batch::new();
        b.put(Cf::Queue, b"entry".to_vec(), b"v1".to_vec());
        store.commit_blocking(b).unwrap();
        // The queue runner's rewrite, conditional on the entry it read.
        let rewrite = || {
            let mut b = Batch::new();
            b.require(Cf::Queue, b"entry".to_vec());
            b.delete(Cf::Queue, b"entry".to_vec());
            b.put(Cf::Queue, b"entry-later".to_vec(), b"v2".to_vec());
            b
        };
        // An admin deleted it first: the rewrite must not bring it back.
        let mut delete = Batch::new();
        delete.delete(Cf::Queue, b"entry".to_vec());
        store.commit_blocking(delete).unwrap();
        assert!(matches!(
            store.commit_blocking(rewrite()),
            Err(StoreError::Changed("queue"))
        ));
        assert_eq!(store.kv().get(Cf::Queue, b"entry-later").unwrap(), None);
        // When it is still there, the rewrite applies.
        let mut b = Batch::new();
        b.put(Cf::Queue, b"entry".to_vec(), b"v1".to_vec());
        store.commit_blocking(b).unwrap();
        store.commit_blocking(rewrite()).unwrap();
        assert_eq!(store.kv().get(Cf::Queue, b"entry").unwrap(), None);
        assert!(store.kv().get(Cf::Queue, b"entry-later").unwrap().is_some());
    }

    #[test]
    fn appends_get_dense_uids_and_counters_add_up() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let store = owner.store().clone();
        let meta = MailboxMeta {
            id: 1,
            uidvalidity: 42,
            uidnext: 1,
            highest_modseq: 0,
            subscribed: true,
            special_use: None,
        };
        let mut b = Batch::new();
        b.put(
            Cf::Mailboxes,
            keys::mailbox(9, "INBOX"),
            schema::encode(&meta),
        );
        store.commit_blocking(b).unwrap();
        // Several writers at once: every append gets its own UID.
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mut b = Batch::new();
                        b.append_mail(9, "INBOX", entry(10));
                        b.add(Cf::Counters, keys::usage(9), 10);
                        store.commit_blocking(b).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let mut uids = Vec::new();
        store
            .kv()
            .scan_prefix(Cf::Mail, &keys::mail_of(9, 1), &mut |k, _| {
                uids.push(keys::uid_of_mail_key(k).unwrap());
                true
            })
            .unwrap();
        assert_eq!(uids, (1..=200).collect::<Vec<u32>>());
        let usage = store
            .kv()
            .get(Cf::Counters, &keys::usage(9))
            .unwrap()
            .unwrap();
        assert_eq!(kv::decode_counter(&usage), 2000);
        // Appending to a mailbox that does not exist fails and writes nothing.
        let mut b = Batch::new();
        b.add(Cf::Counters, keys::usage(9), 1);
        b.append_mail(9, "Nope", entry(1));
        assert!(matches!(
            store.commit_blocking(b),
            Err(StoreError::NoSuchMailbox(_))
        ));
        drop(store);
        owner.close();
        // Reopened, the state is as committed and UIDs continue.
        let owner = Store::open(dir.path()).unwrap();
        let store = owner.store().clone();
        let usage = store
            .kv()
            .get(Cf::Counters, &keys::usage(9))
            .unwrap()
            .unwrap();
        assert_eq!(kv::decode_counter(&usage), 2000);
        let mut b = Batch::new();
        b.append_mail(9, "INBOX", entry(10));
        store.commit_blocking(b).unwrap();
        assert!(store
            .kv()
            .get(Cf::Mail, &keys::mail(9, 1, 201))
            .unwrap()
            .is_some());
    }
}
