//! The RocksDB engine behind [`KvStore`]: column families, BlobDB for message bodies, a
//! merge operator for counters. Everything RocksDB-specific stays in this file.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, ColumnFamilyDescriptor, DBCompressionType, MergeOperands, Options,
    WriteBatch, WriteOptions, DB,
};

use super::kv::{decode_counter, Cf, KvStore, StoreError, WriteOp};

pub(super) struct RocksStore {
    db: DB,
}

fn engine(e: rocksdb::Error) -> StoreError {
    classify(e.into_string())
}

/// A full disk (RocksDB's NoSpace, also repeated as its background error until it
/// recovers) is a temporary condition of its own; anything else is an engine error.
fn classify(text: String) -> StoreError {
    if text.contains("No space left on device") {
        StoreError::NoSpace(text)
    } else {
        StoreError::Engine(text)
    }
}

/// The share of blob files, oldest first, whose live bodies a compaction relocates.
const BLOB_GC_AGE_CUTOFF: f64 = 0.05;

/// Merge operator: counters are little-endian i64 sums.
fn add_counters(_key: &[u8], existing: Option<&[u8]>, operands: &MergeOperands) -> Option<Vec<u8>> {
    let mut sum = existing.map(decode_counter).unwrap_or(0);
    for op in operands {
        sum = sum.wrapping_add(decode_counter(op));
    }
    Some(sum.to_le_bytes().to_vec())
}

impl RocksStore {
    pub(super) fn open(dir: &Path) -> Result<Self, StoreError> {
        let mut db_opts = Options::default();
        db_opts.create_if_missing(true);
        db_opts.create_missing_column_families(true);
        // One flush and up to three compactions at once. With one compaction slot (2
        // jobs) a 30-minute soak had its writes delayed in 30 intervals and once stopped
        // (replies up to 1.7 s), always with one compaction running and under 31 MB
        // pending: a long compaction of one family held back the others'. With three:
        // none delayed, p99 at most 86 ms (docs/benchmarks.md, session 14).
        db_opts.set_max_background_jobs(4);
        db_opts.set_bytes_per_sync(1 << 20);
        db_opts.set_keep_log_file_num(5);
        // Unflushed data stays small, so a flush (which RocksDB needs to recover from a
        // write error) fits in the space the commit thread keeps in reserve; this also
        // bounds the log's preallocation (8 MB at a time).
        db_opts.set_max_total_wal_size(8 << 20);
        // A cache shared by all families: indexes and small values stay in memory.
        let cache = Cache::new_lru_cache(128 << 20);
        let families = Cf::ALL.iter().map(|&cf| {
            let mut opts = Options::default();
            let mut table = BlockBasedOptions::default();
            table.set_block_cache(&cache);
            table.set_bloom_filter(10.0, false);
            // Indexes and filters in the cache too (at high priority, L0's pinned), not
            // in each open table's own memory: memory then stays within the cache's
            // size however large the store grows (held outside, they grew with it).
            table.set_cache_index_and_filter_blocks(true);
            table.set_pin_l0_filter_and_index_blocks_in_cache(true);
            opts.set_block_based_table_factory(&table);
            opts.set_compression_type(DBCompressionType::Lz4);
            // Room for three full memtables waiting for the one flush thread. The log's
            // cap switches every family's memtable together about once a second under
            // load; with RocksDB's two (one being written, one waiting) a family whose
            // last one was still queued behind the others' flushes stopped all writes:
            // 83 brief stops of `meta` in a 30-minute soak (session 14), none with four
            // (session 15). The memtables stay small: the cap switches them long before
            // their write buffer size.
            opts.set_max_write_buffer_number(4);
            // Flushes are small: the log's cap flushes every family about twice a second,
            // ~70 KB for most. With RocksDB's defaults a family's whole tree is one level
            // until it holds 256 MB, and a compaction from level 0 rewrites all of it (a
            // 10-minute soak: the trace family wrote 1.6 GB in compactions for 78 MB
            // flushed, the cost of each growing with the store). So: compact level 0
            // after 16 files rather than 4 (reads check the extra files' pinned filters;
            // the write triggers keep their distance above), and a base level of at most
            // 32 MB, so level 0 is merged into that and the rest moves down a file at a
            // time.
            opts.set_level_zero_file_num_compaction_trigger(16);
            opts.set_level_zero_slowdown_writes_trigger(48);
            opts.set_level_zero_stop_writes_trigger(64);
            opts.set_max_bytes_for_level_base(32 << 20);
            // Output tables of 8 MB instead of 64: a table's bloom filter is built at its
            // end from a hash of every key, held until then (8 bytes a key). The trace
            // family's small entries put ~3 million keys in one 30-45 MB table, and each of
            // its full compactions showed as a 20-40 MB peak of resident memory right as
            // it finished (a 0.65-s sampler against RocksDB's LOG, session 16).
            opts.set_target_file_size_base(8 << 20);
            match cf {
                Cf::Blobs => {
                    // Message bodies go to blob files: the LSM tree only moves pointers.
                    opts.set_enable_blob_files(true);
                    opts.set_min_blob_size(1024);
                    opts.set_blob_compression_type(DBCompressionType::Lz4);
                    opts.set_enable_blob_gc(true);
                    // Bodies are relocated only from the oldest twentieth of blob files
                    // (RocksDB's default is a quarter). Mail is mostly kept, so the
                    // files hold little garbage, and at a quarter every compaction of
                    // the family copied live bodies again: 6 GB rewritten in a
                    // 30-minute soak for ~1.1 GB of files (docs/benchmarks.md, session
                    // 17). Garbage still goes: a file all of whose mail is deleted is
                    // dropped whatever its age, the oldest files are compacted on
                    // purpose once half of them is garbage, and `compact` (the admin
                    // command) collects from every file.
                    opts.set_blob_gc_age_cutoff(BLOB_GC_AGE_CUTOFF);
                    opts.set_blob_gc_force_threshold(0.5);
                    // Message bodies read recently stay in memory, where workers may read
                    // them directly (see `get_cached`).
                    opts.set_blob_cache(&cache);
                    // Values leave the memtable for blob files at each flush: a small
                    // memtable costs little and bounds what a flush must write (see
                    // commit::RESERVE_BYTES).
                    opts.set_write_buffer_size(8 << 20);
                }
                Cf::Counters => opts.set_merge_operator_associative("add_i64", add_counters),
                _ => opts.set_write_buffer_size(16 << 20),
            }
            ColumnFamilyDescriptor::new(cf.name(), opts)
        });
        let db = DB::open_cf_descriptors(&db_opts, dir, families).map_err(engine)?;
        Ok(RocksStore { db })
    }

    fn handle(&self, cf: Cf) -> Result<&rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(cf.name())
            .ok_or_else(|| StoreError::Engine(format!("column family {} missing", cf.name())))
    }
}

impl KvStore for RocksStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get_cf(self.handle(cf)?, key).map_err(engine)
    }

    fn get_cached(&self, cf: Cf, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        let mut opts = rocksdb::ReadOptions::default();
        opts.set_read_tier(rocksdb::ReadTier::BlockCache);
        match self.db.get_cf_opt(self.handle(cf)?, key, &opts) {
            Ok(value) => Ok(Some(value)),
            Err(e) if e.kind() == rocksdb::ErrorKind::Incomplete => Ok(None),
            Err(e) => Err(engine(e)),
        }
    }

    fn multi_get_sorted(
        &self,
        cf: Cf,
        keys: &[Vec<u8>],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.db
            .batched_multi_get_cf(self.handle(cf)?, keys, true)
            .into_iter()
            .map(|r| r.map(|v| v.map(|v| v.to_vec())).map_err(engine))
            .collect()
    }

    fn scan_prefix_from(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let from = if start < prefix { prefix } else { start };
        let mode = rocksdb::IteratorMode::From(from, rocksdb::Direction::Forward);
        // Bounded to the prefix: the iterator then stops at its end instead of skipping
        // on over the tombstones of deleted records past it to the next live key.
        let mut bounds = rocksdb::ReadOptions::default();
        bounds.set_iterate_range(rocksdb::PrefixRange(prefix));
        for item in self.db.iterator_cf_opt(self.handle(cf)?, bounds, mode) {
            let (key, value) = item.map_err(engine)?;
            if !key.starts_with(prefix) || !visit(&key, &value) {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, ops: &[WriteOp], sync: bool) -> Result<(), StoreError> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                WriteOp::Put { cf, key, value } => batch.put_cf(self.handle(*cf)?, key, value),
                WriteOp::Add { cf, key, delta } => {
                    batch.merge_cf(self.handle(*cf)?, key, delta.to_le_bytes())
                }
                WriteOp::Delete { cf, key } => batch.delete_cf(self.handle(*cf)?, key),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db.write_opt(batch, &opts).map_err(engine)
    }

    fn flush(&self) -> Result<(), StoreError> {
        for cf in Cf::ALL {
            self.db.flush_cf(self.handle(cf)?).map_err(engine)?;
        }
        self.db.flush_wal(true).map_err(engine)
    }

    fn compact(&self) -> Result<(), StoreError> {
        for cf in Cf::ALL {
            let handle = self.handle(cf)?;
            if cf != Cf::Blobs {
                self.db
                    .compact_range_cf(handle, None::<&[u8]>, None::<&[u8]>);
                continue;
            }
            // Every blob file is collected here, not only the oldest (the background
            // setting), and the last level is rewritten too, so that each body still
            // referenced is copied out of files that also hold deleted mail.
            self.db
                .set_options_cf(handle, &[("blob_garbage_collection_age_cutoff", "1.0")])
                .map_err(engine)?;
            let mut opts = rocksdb::CompactOptions::default();
            opts.set_bottommost_level_compaction(rocksdb::BottommostLevelCompaction::Force);
            self.db
                .compact_range_cf_opt(handle, None::<&[u8]>, None::<&[u8]>, &opts);
            let background = BLOB_GC_AGE_CUTOFF.to_string();
            self.db
                .set_options_cf(
                    handle,
                    &[("blob_garbage_collection_age_cutoff", background.as_str())],
                )
                .map_err(engine)?;
        }
        Ok(())
    }

    fn engine_stats(&self) -> super::kv::EngineStats {
        let db_value = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        // Each family's figure for a property (families without it left out).
        let per_family = |name: &'static str| {
            Cf::ALL
                .into_iter()
                .filter_map(|cf| self.handle(cf).ok())
                .filter_map(move |h| self.db.property_int_value_cf(h, name).ok().flatten())
        };
        let summed = |name: &'static str| -> u64 { per_family(name).sum() };
        let most = |name: &'static str| -> u64 { per_family(name).max().unwrap_or(0) };
        // The block cache is one, shared by every family: any family's figure is the whole.
        let cache_value = |name: &str| -> u64 {
            Cf::ALL
                .first()
                .and_then(|&cf| self.handle(cf).ok())
                .and_then(|h| self.db.property_int_value_cf(h, name).ok().flatten())
                .unwrap_or(0)
        };
        super::kv::EngineStats {
            pending_compaction_bytes: summed("rocksdb.estimate-pending-compaction-bytes"),
            running_compactions: db_value("rocksdb.num-running-compactions"),
            running_flushes: db_value("rocksdb.num-running-flushes"),
            delayed_write_rate: db_value("rocksdb.actual-delayed-write-rate"),
            write_stopped: db_value("rocksdb.is-write-stopped") != 0,
            level0_files_max: most("rocksdb.num-files-at-level0"),
            immutable_memtables: summed("rocksdb.num-immutable-mem-table"),
            sst_bytes: summed("rocksdb.total-sst-files-size"),
            blob_bytes: summed("rocksdb.total-blob-file-size"),
            memtable_bytes: summed("rocksdb.size-all-mem-tables"),
            table_readers_bytes: summed("rocksdb.estimate-table-readers-mem"),
            block_cache_bytes: cache_value("rocksdb.block-cache-usage"),
            block_cache_pinned_bytes: cache_value("rocksdb.block-cache-pinned-usage"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_is_told_apart_from_other_engine_errors() {
        let full = "IO error: No space left on device: While appending to file: 000004.log: No space left on device";
        assert!(matches!(classify(full.into()), StoreError::NoSpace(_)));
        assert!(matches!(
            classify("Corruption: block checksum mismatch".into()),
            StoreError::Engine(_)
        ));
    }
}
