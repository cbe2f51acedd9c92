//! The small key-value interface the rest of Gannet sees: get, scan, atomic batch write.
//!
//! RocksDB implements it today ([`super::rocks`]); a distributed engine can replace it
//! later without touching anything outside `store/`.

/// Column families (one key space each), as DESIGN.md sketches them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cf {
    /// content hash → raw message bytes.
    Blobs,
    /// content hash → the message's summary (its header block: [`super::summary`]),
    /// written and deleted with the blob.
    Headers,
    /// account, mailbox, uid → message entry.
    Mail,
    /// account, mailbox name → mailbox state (uidvalidity, uidnext, ...).
    Mailboxes,
    /// account id → account; name index.
    Accounts,
    /// address or `@domain` → route.
    Routes,
    /// due time, queue id → queued message.
    Queue,
    /// expiry, id → quarantined message.
    Quarantine,
    /// name → signed 64-bit counter, updated by merge (addition).
    Counters,
    /// time, sequence → message trace event.
    Events,
    /// store-wide settings and id sequences.
    Meta,
}

impl Cf {
    pub const ALL: [Cf; 11] = [
        Cf::Blobs,
        Cf::Headers,
        Cf::Mail,
        Cf::Mailboxes,
        Cf::Accounts,
        Cf::Routes,
        Cf::Queue,
        Cf::Quarantine,
        Cf::Counters,
        Cf::Events,
        Cf::Meta,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Cf::Blobs => "blobs",
            Cf::Headers => "headers",
            Cf::Mail => "mail",
            Cf::Mailboxes => "mailboxes",
            Cf::Accounts => "accounts",
            Cf::Routes => "routes",
            Cf::Queue => "queue",
            Cf::Quarantine => "quarantine",
            Cf::Counters => "counters",
            Cf::Events => "events",
            Cf::Meta => "meta",
        }
    }
}

/// One write in an atomic batch.
#[derive(Debug, Clone)]
pub enum WriteOp {
    Put {
        cf: Cf,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    /// Adds a little-endian i64 to the counter at `key` (only in [`Cf::Counters`]).
    Add {
        cf: Cf,
        key: Vec<u8>,
        delta: i64,
    },
    Delete {
        cf: Cf,
        key: Vec<u8>,
    },
}

/// Errors from the storage engine.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("corrupt value in {cf}: {detail}")]
    Corrupt { cf: &'static str, detail: String },
    #[error("mailbox {0} does not exist")]
    NoSuchMailbox(String),
    #[error("mailbox {0} already exists")]
    MailboxExists(String),
    /// An operation the store does not allow (deleting a special-use mailbox, ...).
    #[error("{0}")]
    Refused(String),
    #[error("the store is shut down")]
    Closed,
    /// The disk is (nearly) full: nothing was written; worth retrying once space is freed.
    #[error("no space left for the store: {0}")]
    NoSpace(String),
    /// A batch required a record that another writer removed first.
    #[error("{0} changed meanwhile")]
    Changed(&'static str),
}

/// What every storage engine offers.
pub trait KvStore: Send + Sync {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Like `get`, but only from memory (memtables and caches): `None` when answering would
    /// need a disk read. Lets an io_uring worker read hot values without ever blocking.
    fn get_cached(&self, cf: Cf, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, StoreError>;

    /// The values of `keys` (sorted in byte order), in that order: one batched read where
    /// the engine has one (the Bayes classifier reads hundreds of counters per message).
    fn multi_get_sorted(
        &self,
        cf: Cf,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        keys.iter().map(|k| self.get(cf, k)).collect()
    }

    /// Calls `visit` with each key (in order) starting with `prefix` until it returns false.
    fn scan_prefix(
        &self,
        cf: Cf,
        prefix: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        self.scan_prefix_from(cf, prefix, prefix, visit)
    }

    /// Calls `visit` with each key (in order) from `start` on that starts with `prefix`
    /// (`start` itself starting with it), until it returns false.
    fn scan_prefix_from(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError>;

    /// Applies all operations atomically; with `sync`, returns only once they are on disk.
    fn write(&self, ops: &[WriteOp], sync: bool) -> Result<(), StoreError>;

    /// Persists memory buffers (used at shutdown).
    fn flush(&self) -> Result<(), StoreError>;

    /// Compacts every family now, so that the space of deleted records (message bodies
    /// above all) goes back to the file system.
    fn compact(&self) -> Result<(), StoreError>;

    /// The engine's state of compaction and write stalls (zeros for an engine without).
    fn engine_stats(&self) -> EngineStats {
        EngineStats::default()
    }
}

/// What the storage engine says about its background work, for `gannet store-stats` and
/// the soak benchmark.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct EngineStats {
    /// Bytes compaction estimates it must still rewrite (all families).
    pub pending_compaction_bytes: u64,
    /// Compactions running now.
    pub running_compactions: u64,
    /// Memtable flushes running now.
    pub running_flushes: u64,
    /// Writes are slowed down now (the delayed write rate, bytes/s; 0: not slowed).
    pub delayed_write_rate: u64,
    /// Writes are stopped now.
    pub write_stopped: bool,
    /// The most level-0 files of any family: RocksDB slows writes down at 20 and stops
    /// them at 36 (a family whose compactions fall behind its flushes).
    pub level0_files_max: u64,
    /// Full memtables waiting for their flush (all families): writes stop when a
    /// family's are all full.
    pub immutable_memtables: u64,
    /// Bytes of table files and of blob files (all families).
    pub sst_bytes: u64,
    pub blob_bytes: u64,
    /// Memory: the memtables (all families), the table readers' indexes and filters
    /// held outside the block cache, and the block cache's use (of it, pinned).
    pub memtable_bytes: u64,
    pub table_readers_bytes: u64,
    pub block_cache_bytes: u64,
    pub block_cache_pinned_bytes: u64,
}

/// Reads a counter value written by [`WriteOp::Add`].
pub fn decode_counter(bytes: &[u8]) -> i64 {
    bytes.try_into().map(i64::from_le_bytes).unwrap_or_default()
}
