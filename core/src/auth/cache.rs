//! The login verification cache: a successful argon2id check is remembered for a short
//! time, so that a client that logs in again and again (a phone polling IMAP, a mail
//! client opening several connections at once) does not pay 19 MiB and two passes of
//! argon2id each time.
//!
//! What is remembered is a BLAKE3 keyed hash, under a random key of this process, of the
//! account id, its stored PHC hash string and the password: no password is kept, and a
//! changed password (a new PHC string, with a new salt) matches no entry. Only successes
//! are remembered; a failure always costs a full check, and the lockout is decided before
//! the cache is asked (`service.rs`). Entries expire after [`TTL`]; at most [`CAPACITY`]
//! are kept (the expired go first, then the oldest).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};

/// How long a successful verification is remembered.
pub const TTL: Duration = Duration::from_secs(5 * 60);
/// How many are remembered at most.
pub const CAPACITY: usize = 4096;

/// Successful verifications, by keyed hash, with when they were made.
pub struct VerifiedCache {
    key: [u8; 32],
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<[u8; 32], Instant>>,
}

impl Default for VerifiedCache {
    fn default() -> Self {
        VerifiedCache::new(TTL, CAPACITY)
    }
}

impl VerifiedCache {
    pub fn new(ttl: Duration, capacity: usize) -> VerifiedCache {
        let mut key = [0u8; 32];
        OsRng.fill_bytes(&mut key);
        VerifiedCache {
            key,
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn digest(&self, account: u32, hash: &str, password: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(&account.to_be_bytes());
        // Lengths first: no two (hash, password) pairs run together the same way.
        h.update(&(hash.len() as u64).to_be_bytes());
        h.update(hash.as_bytes());
        h.update(&(password.len() as u64).to_be_bytes());
        h.update(password.as_bytes());
        *h.finalize().as_bytes()
    }

    /// Whether `password` was verified against `hash` for `account` less than the TTL
    /// before `now`.
    pub fn verified(&self, account: u32, hash: &str, password: &str, now: Instant) -> bool {
        let digest = self.digest(account, hash, password);
        let Ok(mut entries) = self.entries.lock() else {
            return false;
        };
        match entries.get(&digest) {
            Some(&at) if now.saturating_duration_since(at) < self.ttl && at <= now => true,
            Some(_) => {
                entries.remove(&digest);
                false
            }
            None => false,
        }
    }

    /// Remembers that `password` matched `hash` for `account` at `now`.
    pub fn remember(&self, account: u32, hash: &str, password: &str, now: Instant) {
        let digest = self.digest(account, hash, password);
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity && !entries.contains_key(&digest) {
            let ttl = self.ttl;
            entries.retain(|_, at| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= self.capacity {
                if let Some(oldest) = entries.iter().min_by_key(|(_, at)| **at).map(|(k, _)| *k) {
                    entries.remove(&oldest);
                }
            }
        }
        entries.insert(digest, now);
    }

    /// How many verifications are remembered (expired ones included until swept).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";

    #[test]
    fn a_success_is_remembered_until_it_expires() {
        let cache = VerifiedCache::new(Duration::from_secs(300), 10);
        let t0 = Instant::now();
        assert!(!cache.verified(1, HASH, "Secret123", t0));
        cache.remember(1, HASH, "Secret123", t0);
        assert!(cache.verified(1, HASH, "Secret123", t0 + Duration::from_secs(299)));
        assert!(!cache.verified(1, HASH, "Secret123", t0 + Duration::from_secs(300)));
        // The expired entry is gone.
        assert!(cache.is_empty());
    }

    #[test]
    fn only_the_same_account_hash_and_password_match() {
        let cache = VerifiedCache::new(Duration::from_secs(300), 10);
        let t0 = Instant::now();
        cache.remember(1, HASH, "Secret123", t0);
        assert!(!cache.verified(1, HASH, "Secret124", t0));
        assert!(!cache.verified(2, HASH, "Secret123", t0));
        // A changed password hash (new salt) invalidates it.
        let changed = "$argon2id$v=19$m=19456,t=2,p=1$bmV3$aGFzaA";
        assert!(!cache.verified(1, changed, "Secret123", t0));
        // The boundary between hash and password is part of the key.
        cache.remember(1, "ab", "c", t0);
        assert!(!cache.verified(1, "a", "bc", t0));
        // Another process (another key) knows nothing of it.
        let other = VerifiedCache::new(Duration::from_secs(300), 10);
        assert!(!other.verified(1, HASH, "Secret123", t0));
    }

    #[test]
    fn it_is_bounded() {
        let cache = VerifiedCache::new(Duration::from_secs(300), 3);
        let t0 = Instant::now();
        for (i, p) in ["Pass0001", "Pass0002", "Pass0003", "Pass0004"]
            .iter()
            .enumerate()
        {
            cache.remember(1, HASH, p, t0 + Duration::from_secs(i as u64));
        }
        assert_eq!(cache.len(), 3);
        let now = t0 + Duration::from_secs(10);
        // The oldest went.
        assert!(!cache.verified(1, HASH, "Pass0001", now));
        assert!(cache.verified(1, HASH, "Pass0004", now));
        // Expired entries go before live ones.
        let later = t0 + Duration::from_secs(302);
        cache.remember(1, HASH, "Pass0005", later);
        assert!(cache.verified(1, HASH, "Pass0005", later));
        assert!(cache.verified(1, HASH, "Pass0004", later));
    }
}
