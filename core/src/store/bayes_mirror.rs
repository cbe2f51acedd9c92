//! The Bayes counters in memory. A scan with Bayes reads the counts of every token of the
//! message (hundreds), which from RocksDB costs about a microsecond each, more than the
//! rest of the classifier: so the first read of a scope loads all its counters into a
//! hash map, and the commit thread applies each learned delta to the map in the same step
//! as it writes it (holding the map's lock across the write, so a load in progress never
//! counts a delta twice or misses it). A scope with more than [`MAX_TOKENS`] tokens is
//! not mirrored: its counts are read from the store as before.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::RwLock;

use super::kv::{decode_counter, Cf, KvStore, StoreError, WriteOp};

/// Scopes larger than this (about 40 MB of map) stay on disk.
pub const MAX_TOKENS: usize = 1_500_000;

/// One scope's counters: each token's packed counts, and the totals.
#[derive(Debug, Default)]
struct Scope {
    tokens: HashMap<u64, i64, BuildHasherDefault<TokenHasher>>,
    totals: i64,
}

/// Tokens are already uniform 64-bit hashes (BLAKE3 prefixes): the map uses them as they
/// are instead of hashing them again.
#[derive(Debug, Default)]
struct TokenHasher(u64);

impl Hasher for TokenHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by u64 keys; kept correct for any other input.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, token: u64) {
        self.0 = token;
    }
}

/// Scopes loaded so far (None: too large to mirror).
#[derive(Debug, Default)]
pub struct BayesMirror {
    scopes: RwLock<HashMap<u32, Option<Scope>>>,
}

/// What a mirrored read found: the packed values, or that the scope is not mirrored.
pub enum Mirrored<T> {
    Found(T),
    NotMirrored,
}

impl BayesMirror {
    /// The packed counts of `tokens` and the totals of `scope`, loading the scope first.
    pub fn read(
        &self,
        kv: &dyn KvStore,
        scope: u32,
        tokens: &[u64],
    ) -> Result<Mirrored<(Vec<i64>, i64)>, StoreError> {
        {
            let scopes = self.scopes.read().unwrap_or_else(|p| p.into_inner());
            if let Some(found) = scopes.get(&scope) {
                return Ok(lookup(found.as_ref(), tokens));
            }
        }
        let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        let loaded = match scopes.entry(scope) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(load(kv, scope)?),
        };
        Ok(lookup(loaded.as_ref(), tokens))
    }

    /// Writes `ops` with `write` and applies the Bayes counter additions among them to the
    /// loaded scopes, under the lock (the commit thread's write).
    pub fn write_through(
        &self,
        ops: &[WriteOp],
        write: impl FnOnce() -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let touches = ops.iter().any(|op| parse(op).is_some());
        if !touches {
            return write();
        }
        let mut scopes = self.scopes.write().unwrap_or_else(|p| p.into_inner());
        write()?;
        for (scope, target, delta) in ops.iter().filter_map(parse) {
            let Some(slot) = scopes.get_mut(&scope) else {
                continue;
            };
            let Some(s) = slot else { continue };
            match (target, delta) {
                (Some(token), Some(delta)) => *s.tokens.entry(token).or_default() += delta,
                (Some(token), None) => {
                    s.tokens.remove(&token);
                }
                (None, Some(delta)) => s.totals += delta,
                (None, None) => {}
            }
            // Grown past the bound by learning: from now on read from the store.
            if s.tokens.len() > MAX_TOKENS {
                *slot = None;
            }
        }
        Ok(())
    }

    /// Forgets everything (after a write that bypassed [`BayesMirror::write_through`]).
    pub fn clear(&self) {
        self.scopes
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

fn lookup(scope: Option<&Scope>, tokens: &[u64]) -> Mirrored<(Vec<i64>, i64)> {
    match scope {
        None => Mirrored::NotMirrored,
        Some(s) => Mirrored::Found((
            tokens
                .iter()
                .map(|t| s.tokens.get(t).copied().unwrap_or_default())
                .collect(),
            s.totals,
        )),
    }
}

/// A scope's counters from the store; None when it has more than [`MAX_TOKENS`].
fn load(kv: &dyn KvStore, scope: u32) -> Result<Option<Scope>, StoreError> {
    let mut loaded = Scope::default();
    let prefix = super::bayes::keys::token_prefix(scope);
    let mut too_many = false;
    kv.scan_prefix(Cf::Counters, &prefix, &mut |key, value| {
        if let Some(token) = key
            .get(prefix.len()..)
            .and_then(|t| <[u8; 8]>::try_from(t).ok())
        {
            loaded
                .tokens
                .insert(u64::from_be_bytes(token), decode_counter(value));
        }
        too_many = loaded.tokens.len() > MAX_TOKENS;
        !too_many
    })?;
    if too_many {
        tracing::info!(scope, "Bayes database too large to keep in memory");
        return Ok(None);
    }
    loaded.totals = kv
        .get(Cf::Counters, &super::bayes::keys::totals(scope))?
        .map_or(0, |raw| decode_counter(&raw));
    Ok(Some(loaded))
}

/// A Bayes counter addition or removal: (scope, the token or None for the totals, the
/// delta or None for a removal).
fn parse(op: &WriteOp) -> Option<(u32, Option<u64>, Option<i64>)> {
    let (key, delta) = match op {
        WriteOp::Add {
            cf: Cf::Counters,
            key,
            delta,
        } => (key, Some(*delta)),
        WriteOp::Delete {
            cf: Cf::Counters,
            key,
        } => (key, None),
        _ => return None,
    };
    if let Some(rest) = key.strip_prefix(b"bayes:".as_slice()) {
        let scope = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?);
        let token = u64::from_be_bytes(rest.get(4..)?.try_into().ok()?);
        return Some((scope, Some(token), delta));
    }
    let rest = key.strip_prefix(b"bayes_total:".as_slice())?;
    let scope = u32::from_be_bytes(rest.try_into().ok()?);
    Some((scope, None, delta))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bayes::keys;
    use crate::store::memory::MemoryStore;

    fn add(key: Vec<u8>, delta: i64) -> WriteOp {
        WriteOp::Add {
            cf: Cf::Counters,
            key,
            delta,
        }
    }

    fn read(m: &BayesMirror, kv: &MemoryStore, tokens: &[u64]) -> (Vec<i64>, i64) {
        match m.read(kv, 0, tokens).unwrap() {
            Mirrored::Found(found) => found,
            Mirrored::NotMirrored => panic!("not mirrored"),
        }
    }

    #[test]
    fn writes_through_the_mirror_reach_both() {
        let kv = MemoryStore::default();
        let m = BayesMirror::default();
        let first = [
            add(keys::token(0, 7), 1 << 32),
            add(keys::totals(0), 1 << 32),
        ];
        m.write_through(&first, || kv.write(&first, true)).unwrap();
        // Loaded from the store on the first read.
        assert_eq!(read(&m, &kv, &[7, 8]), (vec![1 << 32, 0], 1 << 32));
        // Later additions reach the loaded map as they are written.
        let second = [
            add(keys::token(0, 8), 1),
            add(keys::totals(0), 1),
            add(keys::token(1, 8), 1),
        ];
        m.write_through(&second, || kv.write(&second, true))
            .unwrap();
        assert_eq!(read(&m, &kv, &[7, 8]), (vec![1 << 32, 1], (1 << 32) + 1));
        // A failed write changes nothing.
        let failed = [add(keys::token(0, 8), 1)];
        let refused = m.write_through(&failed, || Err(StoreError::Closed));
        assert!(refused.is_err());
        assert_eq!(read(&m, &kv, &[8]).0, vec![1]);
        // Scope 1 was never read: loaded when it is, with what the store has.
        match m.read(&kv, 1, &[8]).unwrap() {
            Mirrored::Found((counts, _)) => assert_eq!(counts, vec![1]),
            Mirrored::NotMirrored => panic!("not mirrored"),
        }
    }
}
