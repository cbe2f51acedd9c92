//! An engine in memory: the same [`KvStore`] as RocksDB, for unit tests and for builds
//! without RocksDB (the fuzz targets). Nothing survives the process.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::kv::{decode_counter, Cf, KvStore, StoreError, WriteOp};

type Family = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Default)]
pub(super) struct MemoryStore {
    families: Mutex<[Family; Cf::ALL.len()]>,
}

fn index(cf: Cf) -> usize {
    Cf::ALL.iter().position(|c| *c == cf).unwrap_or(0)
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Engine("the in-memory store's lock is poisoned".into())
}

impl KvStore for MemoryStore {
    fn get(&self, cf: Cf, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let families = self.families.lock().map_err(poisoned)?;
        Ok(families[index(cf)].get(key).cloned())
    }

    fn get_cached(&self, cf: Cf, key: &[u8]) -> Result<Option<Option<Vec<u8>>>, StoreError> {
        self.get(cf, key).map(Some)
    }

    fn scan_prefix_from(
        &self,
        cf: Cf,
        prefix: &[u8],
        start: &[u8],
        visit: &mut dyn FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let from = if start < prefix { prefix } else { start };
        let found: Vec<(Vec<u8>, Vec<u8>)> = {
            let families = self.families.lock().map_err(poisoned)?;
            families[index(cf)]
                .range(from.to_vec()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        for (k, v) in found {
            if !visit(&k, &v) {
                break;
            }
        }
        Ok(())
    }

    fn write(&self, ops: &[WriteOp], _sync: bool) -> Result<(), StoreError> {
        let mut families = self.families.lock().map_err(poisoned)?;
        for op in ops {
            match op {
                WriteOp::Put { cf, key, value } => {
                    families[index(*cf)].insert(key.clone(), value.clone());
                }
                WriteOp::Add { cf, key, delta } => {
                    let family = &mut families[index(*cf)];
                    let now = family.get(key).map_or(0, |v| decode_counter(v));
                    family.insert(key.clone(), (now + delta).to_le_bytes().to_vec());
                }
                WriteOp::Delete { cf, key } => {
                    families[index(*cf)].remove(key);
                }
            }
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn compact(&self) -> Result<(), StoreError> {
        Ok(())
    }
}
