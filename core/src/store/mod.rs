//! The one store: RocksDB behind a small key-value trait, written through one commit thread.
//!
//! * [`kv`]: the engine-neutral interface ([`KvStore`], [`Cf`], [`WriteOp`]).
//! * `rocks`: the RocksDB engine (the only file that names RocksDB); `memory`: an engine
//!   in memory for unit tests and builds without RocksDB.
//! * [`changes`]: the mail-store API: every write, as typed operations ([`Changes`]).
//! * [`commit`]: the group-commit thread; every write in the process goes through it.
//! * `sequencer`: the commit thread's resolution of mail operations against the store as
//!   it is when they commit (UIDs, ids, blob references, usage).
//! * [`schema`]: keys and values of every record.
//! * [`check`]: the integrity check (`gannet check`) and its repair.
//! * [`directory`]: domains, accounts, aliases; [`account_admin`]: changing and removing
//!   them; [`admins`]: the console's administrators and API tokens.
//! * [`mail`]: reading mailboxes and messages; [`listings`]: mailbox listings in memory.
//! * [`queue`]: the outbound queue.
//! * [`quarantine`]: messages held for a virus or a forbidden attachment.
//! * [`summary`]: message summaries (the header block), kept beside each blob.
//! * [`watch`]: who is told when a mailbox changes (IMAP IDLE).
//! * [`trace`]: the message trace (what happened to each message).
//! * [`bayes`]: what the Bayes classifier learned.

pub mod account_admin;
pub mod admins;
pub mod bayes;
pub mod bayes_mirror;
pub mod changes;
pub mod check;
pub mod commit;
pub mod directory;
pub mod disk;
pub mod format;
pub mod kv;
pub mod listing;
pub mod listings;
pub mod mail;
mod memory;
pub mod quarantine;
pub mod queue;
pub mod reader;
#[cfg(feature = "rocksdb")]
mod rocks;
pub mod schema;
mod sequencer;
pub mod summary;
pub mod trace;
pub mod watch;

use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

pub use changes::{Applied, Changes, FlagChange, FlagMode, Folder, NewMail};
pub use commit::{Committed, UsageObserver};
pub use kv::{KvStore, StoreError};

use commit::{Request, RequestSender, UsageSink};

/// A handle on the open store; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct Store {
    kv: Arc<dyn KvStore>,
    commits: RequestSender,
    usage: UsageSink,
    watch: Arc<watch::MailboxWatch>,
    bayes: Arc<bayes_mirror::BayesMirror>,
    listings: Arc<listings::Listings>,
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
        format::check(kv.as_ref())?;
        Store::start(kv, Some(dir.to_path_buf()))
    }

    /// A store in memory (nothing is kept): the same commit thread and mail store over
    /// an engine without files, for tests.
    pub fn open_in_memory() -> Result<StoreOwner, StoreError> {
        let kv = Arc::new(memory::MemoryStore::default());
        format::check(kv.as_ref())?;
        Store::start(kv, None)
    }

    /// Starts the commit thread over `kv`; `dir`: where its files are (for the free-space
    /// check), if anywhere.
    fn start(
        kv: Arc<dyn KvStore>,
        dir: Option<std::path::PathBuf>,
    ) -> Result<StoreOwner, StoreError> {
        let (tx, rx) = crossbeam_channel::unbounded();
        let thread_kv = kv.clone();
        let usage = UsageSink::default();
        let thread_usage = usage.clone();
        let watch = Arc::new(watch::MailboxWatch::default());
        let thread_watch = watch.clone();
        let bayes = Arc::new(bayes_mirror::BayesMirror::default());
        let thread_bayes = bayes.clone();
        let listings = Arc::new(listings::Listings::default());
        let thread_listings = listings.clone();
        let thread = std::thread::Builder::new()
            .name("commit".into())
            .spawn(move || {
                commit::run(
                    thread_kv,
                    rx,
                    dir,
                    thread_usage,
                    thread_watch,
                    thread_bayes,
                    thread_listings,
                )
            })
            .map_err(|e| StoreError::Engine(format!("cannot start the commit thread: {e}")))?;
        Ok(StoreOwner {
            store: Store {
                kv,
                commits: tx,
                usage,
                watch,
                bayes,
                listings,
            },
            thread: Some(thread),
        })
    }

    /// Who is told when a mailbox changes.
    pub fn watch(&self) -> &watch::MailboxWatch {
        &self.watch
    }

    /// The Bayes counters kept in memory.
    pub(crate) fn bayes_mirror(&self) -> &bayes_mirror::BayesMirror {
        &self.bayes
    }

    /// Mailbox listings kept in memory.
    pub(crate) fn listings(&self) -> &listings::Listings {
        &self.listings
    }

    /// Runs `job` on the commit thread with nothing else writing meanwhile, and waits for
    /// its result (threads outside any runtime).
    pub(crate) fn exclusive<T: Send + 'static>(
        &self,
        job: impl FnOnce(&dyn KvStore) -> T + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        // The job may write messages without new modification sequences: the listings
        // in memory are forgotten once it has run (before anyone hears it finished).
        let listings = self.listings.clone();
        let job: commit::Exclusive = Box::new(move |kv| {
            let result = job(kv);
            listings.clear();
            let _ = tx.send(result);
        });
        self.commits
            .send(Request::Exclusive(job))
            .map_err(|_| StoreError::Closed)?;
        rx.blocking_recv().map_err(|_| StoreError::Closed)
    }

    /// The traffic counters (`messages_accepted`, `messages_queued`, ...) by name.
    pub fn stats(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::new();
        self.kv
            .scan_prefix(kv::Cf::Counters, b"stat:", &mut |k, v| {
                let name = String::from_utf8_lossy(k.get(5..).unwrap_or_default()).into_owned();
                out.push((name, kv::decode_counter(v)));
                true
            })?;
        Ok(out)
    }

    /// A statistic's count in each of the `minutes` minutes from `first` (Unix minute:
    /// time / 60) on; 0 where nothing was counted.
    pub fn stat_per_minute(
        &self,
        stat: &str,
        first: i64,
        minutes: usize,
    ) -> Result<Vec<i64>, StoreError> {
        let mut out = vec![0; minutes];
        let prefix = schema::keys::STAT_MINUTE_PREFIX;
        let start = schema::keys::stat_minute(first.max(0), "");
        self.kv
            .scan_prefix_from(kv::Cf::Counters, prefix, &start, &mut |k, v| {
                let rest = k.get(prefix.len()..).unwrap_or_default();
                let minute = rest
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map_or(i64::MAX, i64::from_be_bytes);
                let Some(i) = usize::try_from(minute - first)
                    .ok()
                    .filter(|i| *i < minutes)
                else {
                    return false;
                };
                if rest.get(8..) == Some(stat.as_bytes()) {
                    out[i] += kv::decode_counter(v);
                }
                true
            })?;
        Ok(out)
    }

    /// Forgets the per-minute counts before `minute` (the totals stay).
    pub fn drop_stats_before(&self, minute: i64) -> Result<usize, StoreError> {
        let prefix = schema::keys::STAT_MINUTE_PREFIX;
        let mut old = Vec::new();
        self.kv.scan_prefix(kv::Cf::Counters, prefix, &mut |k, _| {
            let at = k
                .get(prefix.len()..prefix.len() + 8)
                .and_then(|b| b.try_into().ok())
                .map_or(i64::MAX, i64::from_be_bytes);
            if at >= minute {
                return false;
            }
            old.push(k.to_vec());
            true
        })?;
        let n = old.len();
        for chunk in old.chunks(1024) {
            let mut changes = Changes::new();
            for key in chunk {
                changes.delete(kv::Cf::Counters, key.clone());
            }
            self.commit_blocking(changes)?;
        }
        Ok(n)
    }

    /// Compacts the store now (space of deleted mail goes back to the file system).
    pub fn compact(&self) -> Result<(), StoreError> {
        self.kv.compact()
    }

    /// The engine's compaction and write-stall state.
    pub fn engine_stats(&self) -> kv::EngineStats {
        self.kv.engine_stats()
    }

    /// Messages held in the mailbox listings in memory ([`listings::Listings::held`]).
    pub fn listed_messages(&self) -> usize {
        self.listings.held()
    }

    /// Reads go straight to the engine.
    pub(crate) fn kv(&self) -> &dyn KvStore {
        self.kv.as_ref()
    }

    /// Tells `observer` of every change of an account's storage use from now on, once
    /// it is durable (set once; later calls are ignored).
    pub fn observe_usage(&self, observer: Arc<dyn UsageObserver>) {
        let _ = self.usage.set(observer);
    }

    /// Queues `changes` for the next group commit; the answer arrives once they are
    /// synced.
    pub fn submit(&self, changes: Changes) -> oneshot::Receiver<Committed> {
        let (tx, rx) = oneshot::channel();
        if let Err(crossbeam_channel::SendError(Request::Commit(_, reply))) =
            self.commits.send(Request::Commit(changes, tx))
        {
            let _ = reply.send(Err(StoreError::Closed));
        }
        rx
    }

    /// Commits `changes` and waits until they are durable (async callers).
    pub async fn commit(&self, changes: Changes) -> Committed {
        self.submit(changes)
            .await
            .unwrap_or(Err(StoreError::Closed))
    }

    /// Commits `changes` and waits until they are durable (threads outside any runtime).
    pub fn commit_blocking(&self, changes: Changes) -> Committed {
        self.submit(changes)
            .blocking_recv()
            .unwrap_or(Err(StoreError::Closed))
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
    use super::kv::Cf;
    use super::schema::{flags, keys, MailEntry, MailboxMeta};
    use super::*;

    fn mail(blob: u8, size: u64) -> NewMail {
        NewMail::arrived([blob; 32], size, 0)
    }

    /// A store with account 9 and its five default folders.
    fn store_with_account() -> (tempfile::TempDir, StoreOwner, Store) {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let store = owner.store().clone();
        let mut c = Changes::new();
        for (name, special) in schema::DEFAULT_MAILBOXES {
            c.create_mailbox(9, name, special, 1000);
        }
        store.commit_blocking(c).unwrap();
        (dir, owner, store)
    }

    fn usage(store: &Store) -> i64 {
        store
            .kv()
            .get(Cf::Counters, &keys::usage(9))
            .unwrap()
            .map_or(0, |raw| kv::decode_counter(&raw))
    }

    fn refs(store: &Store, blob: &schema::BlobId) -> Option<i64> {
        store
            .kv()
            .get(Cf::Counters, &keys::blob_refs(blob))
            .unwrap()
            .map(|raw| kv::decode_counter(&raw))
    }

    fn meta(store: &Store, name: &str) -> Option<MailboxMeta> {
        mail::mailbox(store, 9, name).unwrap()
    }

    fn entries(store: &Store, name: &str) -> Vec<(u32, MailEntry)> {
        mail::list(store, 9, meta(store, name).unwrap().id).unwrap()
    }

    /// Appends a message with its blob stored; returns its UID.
    fn deliver(store: &Store, name: &str, body: &[u8]) -> u32 {
        let mut c = Changes::new();
        let blob = c.store_blob(body.to_vec());
        let mut m = mail(0, body.len() as u64);
        m.blob = blob;
        c.append(9, Folder::Named(name.into()), m);
        store.commit_blocking(c).unwrap().uids[0]
    }

    /// Counts per minute come back by minute, and old minutes go without the totals.
    #[test]
    fn counts_per_minute() {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        let mut c = Changes::new();
        for (minute, stat, n) in [(100, "a", 2), (100, "b", 5), (101, "a", 1), (103, "a", 4)] {
            c.add(kv::Cf::Counters, schema::keys::stat_minute(minute, stat), n);
        }
        store.commit_blocking(c).unwrap();
        assert_eq!(store.stat_per_minute("a", 100, 4).unwrap(), [2, 1, 0, 4]);
        assert_eq!(store.stat_per_minute("b", 99, 3).unwrap(), [0, 5, 0]);
        assert_eq!(store.stat_per_minute("a", 102, 1).unwrap(), [0]);
        assert_eq!(store.drop_stats_before(101).unwrap(), 2);
        assert_eq!(store.stat_per_minute("a", 100, 4).unwrap(), [0, 1, 0, 4]);
        // A count goes to its total and to the current minute.
        let mut c = Changes::new();
        c.count("x", 3);
        store.commit_blocking(c).unwrap();
        let now = crate::clock::unix_now().div_euclid(60);
        assert_eq!(
            store
                .stat_per_minute("x", now - 1, 2)
                .unwrap()
                .iter()
                .sum::<i64>(),
            3
        );
        assert!(store.stats().unwrap().contains(&("x".to_string(), 3)));
    }

    /// The listing kept in memory is always the store's: after appends, flag changes,
    /// moves, expunges, and a write that bypasses the sequencer (an exclusive job).
    #[test]
    fn the_listing_in_memory_follows_every_change() {
        let (_dir, _owner, store) = store_with_account();
        // Every listing after the first reads is brought up to date from what the commit
        // thread filed, not read again: the count of listings read stays.
        let same = |store: &Store| {
            for name in ["INBOX", "Junk"] {
                let m = meta(store, name).unwrap();
                let held = mail::listing(store, 9, &m).unwrap();
                assert_eq!(held.to_vec(), entries(store, name), "{name}");
                // Asked again at the same state: the very same listing, not a new read.
                let again = mail::listing(store, 9, &m).unwrap();
                assert!(listings::Listing::ptr_eq(&held, &again));
            }
        };
        same(&store);
        let reads = store.listings().reads();
        let id = meta(&store, "INBOX").unwrap().id;
        let uids: Vec<u32> = (0..3)
            .map(|i| deliver(&store, "INBOX", &[b'a' + i]))
            .collect();
        same(&store);
        let mut c = Changes::new();
        let seen = FlagChange {
            mode: FlagMode::Add,
            flags: flags::SEEN | flags::DELETED,
            keywords: vec!["$label1".into()],
        };
        c.set_flags(9, id, vec![uids[1]], seen);
        store.commit_blocking(c).unwrap();
        same(&store);
        let mut c = Changes::new();
        c.move_to(9, id, vec![uids[0]], Folder::junk());
        store.commit_blocking(c).unwrap();
        same(&store);
        let mut c = Changes::new();
        c.expunge(9, id, vec![uids[1]], true);
        store.commit_blocking(c).unwrap();
        same(&store);
        assert_eq!(entries(&store, "INBOX").len(), 1);
        assert_eq!(store.listings().reads(), reads, "no listing read again");
        // A repair-like write with no new modification sequence.
        let key = keys::mail(9, id, uids[2]);
        store
            .exclusive(move |kv| {
                kv.write(&[kv::WriteOp::Delete { cf: Cf::Mail, key }], true)
                    .unwrap();
            })
            .unwrap();
        same(&store);
        assert!(
            store.listings().reads() > reads,
            "read again after the exclusive job"
        );
        assert!(entries(&store, "INBOX").is_empty());
    }

    #[test]
    fn every_change_takes_modification_sequences() {
        let (_dir, _owner, store) = store_with_account();
        let id = meta(&store, "INBOX").unwrap().id;
        let uids: Vec<u32> = (0..3)
            .map(|i| deliver(&store, "INBOX", &[b'a' + i]))
            .collect();
        // An untouched mailbox is at 1; each append takes one.
        assert_eq!(meta(&store, "INBOX").unwrap().highest_modseq, 4);
        let modseqs = |store: &Store| -> Vec<u64> {
            entries(store, "INBOX")
                .iter()
                .map(|(_, e)| e.modseq)
                .collect()
        };
        assert_eq!(modseqs(&store), [2, 3, 4]);
        let seen = FlagChange {
            mode: FlagMode::Add,
            flags: flags::SEEN,
            keywords: Vec::new(),
        };
        // Each message whose flags change gets one of its own; unchanged ones keep theirs.
        let mut c = Changes::new();
        c.set_flags(9, id, vec![uids[0], uids[2]], seen.clone());
        store.commit_blocking(c).unwrap();
        assert_eq!(modseqs(&store), [5, 3, 6]);
        let mut c = Changes::new();
        c.set_flags(9, id, uids.clone(), seen.clone());
        let applied = store.commit_blocking(c).unwrap();
        assert_eq!(applied.entries.len(), 3);
        assert_eq!(modseqs(&store), [5, 7, 6]);
        assert_eq!(meta(&store, "INBOX").unwrap().highest_modseq, 7);
        // UNCHANGEDSINCE 6: the message changed at 7 is left alone and reported.
        let flagged = FlagChange {
            mode: FlagMode::Add,
            flags: flags::FLAGGED,
            keywords: Vec::new(),
        };
        let mut c = Changes::new();
        c.set_flags_unchanged_since(9, id, uids.clone(), flagged, Some(6));
        let applied = store.commit_blocking(c).unwrap();
        assert_eq!(applied.modified, [uids[1]]);
        assert_eq!(modseqs(&store), [8, 7, 9]);
        // An expunge moves the mailbox's highest on (the client resynchronises).
        let mut c = Changes::new();
        c.expunge(9, id, vec![uids[0]], false);
        store.commit_blocking(c).unwrap();
        assert_eq!(meta(&store, "INBOX").unwrap().highest_modseq, 10);
        // So does a move away, in the source.
        let mut c = Changes::new();
        c.move_to(9, id, vec![uids[1]], Folder::junk());
        store.commit_blocking(c).unwrap();
        assert_eq!(meta(&store, "INBOX").unwrap().highest_modseq, 11);
        assert_eq!(meta(&store, "Junk").unwrap().highest_modseq, 2);
    }

    #[test]
    fn a_commit_that_requires_a_removed_record_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let store = owner.store().clone();
        let mut b = Changes::new();
        b.put(Cf::Queue, b"entry".to_vec(), b"v1".to_vec());
        store.commit_blocking(b).unwrap();
        // The queue runner's rewrite, conditional on the entry it read.
        let rewrite = || {
            let mut b = Changes::new();
            b.require(Cf::Queue, b"entry".to_vec());
            b.delete(Cf::Queue, b"entry".to_vec());
            b.put(Cf::Queue, b"entry-later".to_vec(), b"v2".to_vec());
            b
        };
        // An admin deleted it first: the rewrite must not bring it back.
        let mut delete = Changes::new();
        delete.delete(Cf::Queue, b"entry".to_vec());
        store.commit_blocking(delete).unwrap();
        assert!(matches!(
            store.commit_blocking(rewrite()),
            Err(StoreError::Changed("queue"))
        ));
        assert_eq!(store.kv().get(Cf::Queue, b"entry-later").unwrap(), None);
        // When it is still there, the rewrite applies.
        let mut b = Changes::new();
        b.put(Cf::Queue, b"entry".to_vec(), b"v1".to_vec());
        store.commit_blocking(b).unwrap();
        store.commit_blocking(rewrite()).unwrap();
        assert_eq!(store.kv().get(Cf::Queue, b"entry").unwrap(), None);
        assert!(store.kv().get(Cf::Queue, b"entry-later").unwrap().is_some());
    }

    #[test]
    fn appends_get_dense_uids_and_counters_add_up() {
        let (dir, owner, store) = store_with_account();
        // Several writers at once: every append gets its own UID.
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let store = store.clone();
                std::thread::spawn(move || {
                    for _ in 0..25 {
                        let mut c = Changes::new();
                        c.append(9, Folder::inbox(), mail(7, 10));
                        store.commit_blocking(c).unwrap();
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        let uids: Vec<u32> = entries(&store, "INBOX").iter().map(|(u, _)| *u).collect();
        assert_eq!(uids, (1..=200).collect::<Vec<u32>>());
        assert_eq!(usage(&store), 2000);
        assert_eq!(refs(&store, &[7; 32]), Some(200));
        // Appending to a mailbox that does not exist fails and writes nothing.
        let mut c = Changes::new();
        c.append(9, Folder::inbox(), mail(7, 1));
        c.append(9, Folder::Named("Nope".into()), mail(7, 1));
        assert!(matches!(
            store.commit_blocking(c),
            Err(StoreError::NoSuchMailbox(_))
        ));
        assert_eq!(usage(&store), 2000);
        drop(store);
        owner.close();
        // Reopened, the state is as committed and UIDs continue.
        let owner = Store::open(dir.path()).unwrap();
        let store = owner.store().clone();
        assert_eq!(usage(&store), 2000);
        let mut c = Changes::new();
        c.append(9, Folder::inbox(), mail(7, 10));
        assert_eq!(store.commit_blocking(c).unwrap().uids, [201]);
    }

    #[test]
    fn an_expunged_message_is_never_flagged_back_or_counted_twice() {
        let (_dir, _owner, store) = store_with_account();
        let uid = deliver(&store, "INBOX", b"hello world");
        let inbox = meta(&store, "INBOX").unwrap().id;
        let deleted = FlagChange {
            mode: FlagMode::Add,
            flags: flags::DELETED,
            keywords: Vec::new(),
        };
        let mut c = Changes::new();
        c.set_flags(9, inbox, vec![uid], deleted.clone());
        store.commit_blocking(c).unwrap();
        // Two sessions expunge it, a third sets a flag on it: all in one group.
        let expunge = || {
            let mut c = Changes::new();
            c.expunge(9, inbox, vec![uid], true);
            store.submit(c)
        };
        let first = expunge();
        let second = expunge();
        let mut c = Changes::new();
        c.set_flags(9, inbox, vec![uid], deleted);
        let flag = store.submit(c);
        let first = first.blocking_recv().unwrap().unwrap();
        let second = second.blocking_recv().unwrap().unwrap();
        let flag = flag.blocking_recv().unwrap().unwrap();
        assert_eq!(first.removed.len() + second.removed.len(), 1);
        assert!(flag.entries.is_empty(), "no flag on a message that is gone");
        assert!(entries(&store, "INBOX").is_empty());
        assert_eq!(usage(&store), 0);
        // Its blob had no other reference: it is gone too.
        let blob = *blake3::hash(b"hello world").as_bytes();
        assert_eq!(mail::blob(&store, &blob).unwrap(), None);
    }

    #[test]
    fn operations_over_many_messages_read_them_once_and_count_each_once() {
        let (_dir, _owner, store) = store_with_account();
        for n in 0..50u32 {
            deliver(&store, "INBOX", format!("message {n}").as_bytes());
        }
        let inbox = meta(&store, "INBOX").unwrap().id;
        // Every UID, one twice, one that never existed.
        let mut uids: Vec<u32> = (1..=50).collect();
        uids.extend([7, 99]);
        let mut c = Changes::new();
        c.set_flags(
            9,
            inbox,
            uids.clone(),
            FlagChange {
                mode: FlagMode::Add,
                flags: flags::DELETED,
                keywords: Vec::new(),
            },
        );
        let flagged = store.commit_blocking(c).unwrap();
        assert_eq!(flagged.entries.len(), 50);
        let mut c = Changes::new();
        c.expunge(9, inbox, uids, true);
        let expunged = store.commit_blocking(c).unwrap();
        assert_eq!(expunged.removed, (1..=50).collect::<Vec<u32>>());
        assert_eq!(usage(&store), 0);
        assert!(entries(&store, "INBOX").is_empty());
    }

    /// Many messages are read in one batched read, under what the same commit changed
    /// before: an expunge after a flag change in one commit sees the new flags.
    #[test]
    fn a_batched_read_sees_the_commits_own_changes() {
        let (_dir, _owner, store) = store_with_account();
        for n in 0..60u32 {
            deliver(&store, "INBOX", format!("message {n}").as_bytes());
        }
        let inbox = meta(&store, "INBOX").unwrap().id;
        // Some expunged and deleted before: their tombstones are in the range read.
        let mut c = Changes::new();
        c.expunge(9, inbox, (1..=10).collect(), false);
        store.commit_blocking(c).unwrap();
        let mut c = Changes::new();
        c.set_flags(
            9,
            inbox,
            (11..=50).collect(),
            FlagChange {
                mode: FlagMode::Add,
                flags: flags::DELETED,
                keywords: Vec::new(),
            },
        );
        // Only those flagged \Deleted go: the ones this very commit flagged.
        c.expunge(9, inbox, (1..=60).rev().collect(), true);
        let applied = store.commit_blocking(c).unwrap();
        let mut removed = applied.removed.clone();
        removed.sort_unstable();
        assert_eq!(removed, (11..=50).collect::<Vec<u32>>());
        let left: Vec<u32> = entries(&store, "INBOX")
            .iter()
            .map(|(uid, _)| *uid)
            .collect();
        assert_eq!(left, (51..=60).collect::<Vec<u32>>());
        assert!(usage(&store) > 0);
    }

    #[test]
    fn expunge_keeps_a_message_whose_deleted_flag_was_cleared_meanwhile() {
        let (_dir, _owner, store) = store_with_account();
        let uid = deliver(&store, "INBOX", b"keep me");
        let inbox = meta(&store, "INBOX").unwrap().id;
        let mut c = Changes::new();
        c.expunge(9, inbox, vec![uid], true);
        assert!(store.commit_blocking(c).unwrap().removed.is_empty());
        assert_eq!(entries(&store, "INBOX").len(), 1);
    }

    #[test]
    fn a_shared_blob_lives_until_its_last_reference() {
        let (_dir, _owner, store) = store_with_account();
        let uid = deliver(&store, "INBOX", b"shared body");
        let inbox = meta(&store, "INBOX").unwrap().id;
        let mut c = Changes::new();
        c.copy(9, inbox, vec![uid, 999], Folder::Named("Drafts".into()));
        let copied = store.commit_blocking(c).unwrap();
        assert_eq!(copied.sources, [uid], "a missing source is not copied");
        assert_eq!(copied.uids, [1]);
        let blob = *blake3::hash(b"shared body").as_bytes();
        let mut c = Changes::new();
        c.expunge(9, inbox, vec![uid], false);
        store.commit_blocking(c).unwrap();
        assert!(mail::blob(&store, &blob).unwrap().is_some());
        let mut c = Changes::new();
        c.delete_mailbox(9, "Drafts");
        assert!(matches!(
            store.commit_blocking(c),
            Err(StoreError::Refused(_))
        ));
        // Moved to a folder of its own, deleted with it: the blob goes.
        let mut c = Changes::new();
        c.create_mailbox(9, "Old", None, 2000);
        store.commit_blocking(c).unwrap();
        let drafts = meta(&store, "Drafts").unwrap().id;
        let mut c = Changes::new();
        c.move_to(9, drafts, vec![1], Folder::Named("Old".into()));
        let moved = store.commit_blocking(c).unwrap();
        assert_eq!((moved.removed, moved.uids), (vec![1], vec![1]));
        // Its only reference moved: the blob stays.
        assert!(mail::blob(&store, &blob).unwrap().is_some());
        assert_eq!(refs(&store, &blob), Some(1));
        let mut c = Changes::new();
        c.delete_mailbox(9, "Old");
        store.commit_blocking(c).unwrap();
        assert_eq!(mail::blob(&store, &blob).unwrap(), None);
        assert_eq!(refs(&store, &blob), None);
        assert_eq!(usage(&store), 0);
    }

    #[test]
    fn mailbox_records_are_changed_where_they_are_and_ids_are_never_reused() {
        let (_dir, _owner, store) = store_with_account();
        // SUBSCRIBE and mail arriving in the same group: the UID counter keeps going.
        let mut sub = Changes::new();
        sub.subscribe(9, "INBOX", false);
        let mut add = Changes::new();
        add.append(9, Folder::inbox(), mail(1, 5));
        let (a, b) = (store.submit(add), store.submit(sub));
        a.blocking_recv().unwrap().unwrap();
        b.blocking_recv().unwrap().unwrap();
        let inbox = meta(&store, "INBOX").unwrap();
        assert_eq!((inbox.uidnext, inbox.subscribed), (2, false));
        // Two CREATEs of one name: one wins. Two of different names: different ids.
        let create = |name: &str| {
            let mut c = Changes::new();
            c.create_mailbox(9, name, None, 5000);
            store.submit(c)
        };
        let (x, y, z) = (create("A"), create("A"), create("B"));
        assert!(x.blocking_recv().unwrap().is_ok());
        assert!(matches!(
            y.blocking_recv().unwrap(),
            Err(StoreError::MailboxExists(_))
        ));
        assert!(z.blocking_recv().unwrap().is_ok());
        let (a, b) = (meta(&store, "A").unwrap(), meta(&store, "B").unwrap());
        assert_ne!(a.id, b.id);
        // Deleted and created again: a new id and a new UIDVALIDITY.
        let mut c = Changes::new();
        c.delete_mailbox(9, "B");
        store.commit_blocking(c).unwrap();
        store
            .commit_blocking({
                let mut c = Changes::new();
                c.create_mailbox(9, "B", None, 5000);
                c
            })
            .unwrap();
        let again = meta(&store, "B").unwrap();
        assert!(again.id > b.id && again.uidvalidity != b.uidvalidity);
    }

    #[test]
    fn junk_is_found_by_its_attribute_after_a_rename() {
        let (_dir, _owner, store) = store_with_account();
        let mut c = Changes::new();
        c.rename_mailbox(9, "Junk", "Spam");
        store.commit_blocking(c).unwrap();
        let mut c = Changes::new();
        c.append(9, Folder::junk(), mail(3, 10));
        store.commit_blocking(c).unwrap();
        let spam = meta(&store, "Spam").unwrap();
        assert_eq!(spam.special_use.as_deref(), Some("\\Junk"));
        assert_eq!(entries(&store, "Spam").len(), 1);
        assert!(meta(&store, "Junk").is_none());
        let mut c = Changes::new();
        c.delete_mailbox(9, "Spam");
        assert!(matches!(
            store.commit_blocking(c),
            Err(StoreError::Refused(_))
        ));
    }

    #[test]
    fn usage_reaches_the_observer_once_durable() {
        struct Book(std::sync::Mutex<i64>);
        impl UsageObserver for Book {
            fn usage_changed(&self, _: u32, delta: i64) {
                *self.0.lock().unwrap() += delta;
            }
        }
        let (_dir, _owner, store) = store_with_account();
        let book = Arc::new(Book(std::sync::Mutex::new(0)));
        store.observe_usage(book.clone());
        let uid = deliver(&store, "INBOX", b"twelve bytes");
        assert_eq!(*book.0.lock().unwrap(), 12);
        let mut c = Changes::new();
        c.expunge(9, meta(&store, "INBOX").unwrap().id, vec![uid, uid], false);
        store.commit_blocking(c).unwrap();
        assert_eq!(*book.0.lock().unwrap(), 0);
    }
}
