//! The Bayes classifier's learned counts (issue #17): per token, how many learned spam and
//! ham messages had it; the totals; and which messages were learned as what (so that a
//! message learned twice counts once, and learning it the other way moves it). Counts are
//! counters in [`Cf::Counters`] (spam in the high 32 bits, ham in the low: one addition
//! per token); the record of a learned message is in [`Cf::Meta`]. A scope is 0 for the
//! site-wide database, else an account's own.

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use super::bayes_mirror::Mirrored;
use super::kv::{decode_counter, Cf, StoreError};
use super::Store;
use crate::filter::bayes::{Counts, Totals};

/// What learning a message did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learned {
    /// Counted as asked.
    Learned,
    /// It was learned as that already: nothing changed.
    AlreadyKnown,
    /// It had been learned the other way: moved.
    Relearned,
    /// Forgotten (it had been learned).
    Forgotten,
    /// Nothing to forget.
    NotKnown,
}

/// The class a learned message was recorded as, in its Meta record.
pub(crate) const SPAM: u8 = 1;
pub(crate) const HAM: u8 = 2;

/// The counter delta that adds one spam (or one ham) message.
pub(crate) fn delta(spam: bool) -> i64 {
    if spam {
        1 << 32
    } else {
        1
    }
}

/// A counter's spam and ham counts. Ham is read as a signed 32-bit number: subtracting a
/// ham count below zero (forgetting or relearning a message whose tokens were not all
/// counted, as after a tokenizer change) borrows from the spam half, and reading the low
/// half signed gives both back. Each count is at least 0.
fn unpack(value: i64) -> Counts {
    let ham = i64::from(i32::from_le_bytes(
        value.to_le_bytes()[..4].try_into().unwrap_or_default(),
    ));
    let spam = (value - ham) >> 32;
    Counts {
        spam: u64::try_from(spam).unwrap_or(0),
        ham: u64::try_from(ham).unwrap_or(0),
    }
}

pub(crate) mod keys {
    //! Keys of the Bayes records.

    pub(crate) fn token(scope: u32, token: u64) -> Vec<u8> {
        let mut k = b"bayes:".to_vec();
        k.extend_from_slice(&scope.to_be_bytes());
        k.extend_from_slice(&token.to_be_bytes());
        k
    }

    /// What every token key of `scope` starts with.
    pub(crate) fn token_prefix(scope: u32) -> Vec<u8> {
        [&b"bayes:"[..], &scope.to_be_bytes()].concat()
    }

    /// The day (days since 1970) a token was last learned, for expiry.
    pub(crate) fn seen(scope: u32, token: u64) -> Vec<u8> {
        let mut k = b"bayes_seen:".to_vec();
        k.extend_from_slice(&scope.to_be_bytes());
        k.extend_from_slice(&token.to_be_bytes());
        k
    }

    pub(crate) fn seen_prefix(scope: u32) -> Vec<u8> {
        [&b"bayes_seen:"[..], &scope.to_be_bytes()].concat()
    }

    pub(crate) fn totals(scope: u32) -> Vec<u8> {
        [&b"bayes_total:"[..], &scope.to_be_bytes()].concat()
    }

    pub(crate) fn message(scope: u32, id: &[u8; 32]) -> Vec<u8> {
        [&b"bayes_msg:"[..], &scope.to_be_bytes(), id].concat()
    }
}

/// The totals of a scope.
pub fn totals(store: &Store, scope: u32) -> Result<Totals, StoreError> {
    let value =
        (store.kv().get(Cf::Counters, &keys::totals(scope))?).map_or(0, |raw| decode_counter(&raw));
    let c = unpack(value);
    Ok(Totals {
        spam: c.spam,
        ham: c.ham,
    })
}

/// The counts of each token (in the order given).
pub fn counts(store: &Store, scope: u32, tokens: &[u64]) -> Result<Vec<Counts>, StoreError> {
    if let Mirrored::Found((values, _)) = store.bayes_mirror().read(store.kv(), scope, tokens)? {
        return Ok(values.into_iter().map(unpack).collect());
    }
    // Not in memory (too large): one batched read in key order (big-endian tokens sort as numbers), then back to
    // the order asked for.
    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_unstable_by_key(|&i| tokens[i]);
    let keys: Vec<Vec<u8>> = order
        .iter()
        .map(|&i| keys::token(scope, tokens[i]))
        .collect();
    let values = store.kv().multi_get_sorted(Cf::Counters, &keys)?;
    let mut out = vec![Counts::default(); tokens.len()];
    for (&i, value) in order.iter().zip(values) {
        out[i] = unpack(value.map_or(0, |raw| decode_counter(&raw)));
    }
    Ok(out)
}

/// Whether the site-wide database has learned enough for a verdict, read from the store
/// at most once a second (a delivery asks for every message, on an io_uring worker), and
/// not read again once it has: learning only adds (after a forget below the threshold the
/// classifier itself answers nothing).
#[derive(Debug, Default)]
pub struct ReadyGate {
    ready: AtomicBool,
    checked_at: AtomicI64,
}

impl ReadyGate {
    pub fn ready(&self, store: &Store, now: i64) -> bool {
        if self.ready.load(Ordering::Relaxed) {
            return true;
        }
        if self.checked_at.swap(now, Ordering::Relaxed) == now {
            return false;
        }
        let ready = totals(store, 0).is_ok_and(|t| t.ready());
        self.ready.store(ready, Ordering::Relaxed);
        ready
    }
}

/// Messages learned in one commit by [`learn_stored`] (their tokens are held until it).
const LEARN_CHUNK: usize = 256;

/// Learns stored messages (by blob) as spam or ham, in one commit: what each came to
/// (a blob gone meanwhile is left out). Blocking: for reader threads.
pub fn learn_stored(
    store: &Store,
    scope: u32,
    blobs: &[super::schema::BlobId],
    spam: bool,
) -> Result<Vec<Learned>, StoreError> {
    let mut learned = Vec::with_capacity(blobs.len());
    // A MOVE of a whole mailbox into Junk: a bounded number of messages' tokens at a time.
    for chunk in blobs.chunks(LEARN_CHUNK) {
        let mut changes = super::Changes::new();
        for blob in chunk {
            if let Some(raw) = super::mail::blob(store, blob)? {
                let (id, tokens) = crate::filter::bayes::learnable(&raw);
                changes.learn(scope, id, tokens, Some(spam));
            }
        }
        if !changes.is_empty() {
            learned.extend(store.commit_blocking(changes)?.learned);
        }
    }
    Ok(learned)
}

/// A scope of the store's Bayes database, as the classifier reads it. A read error
/// counts as nothing learned (the scan goes on without Bayes), and is logged.
pub struct StoreLearned<'a> {
    pub store: &'a Store,
    pub scope: u32,
}

impl crate::filter::bayes::Learned for StoreLearned<'_> {
    fn totals(&self) -> Totals {
        // From memory where the scope is mirrored (this runs on a reader thread, where
        // loading it is allowed).
        let mirrored = self
            .store
            .bayes_mirror()
            .read(self.store.kv(), self.scope, &[]);
        if let Ok(Mirrored::Found((_, packed))) = mirrored {
            let c = unpack(packed);
            return Totals {
                spam: c.spam,
                ham: c.ham,
            };
        }
        totals(self.store, self.scope).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Bayes totals unreadable: no Bayes verdict");
            Totals::default()
        })
    }

    fn counts(&self, tokens: &[u64]) -> Vec<Counts> {
        counts(self.store, self.scope, tokens).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "Bayes counts unreadable");
            vec![Counts::default(); tokens.len()]
        })
    }
}

/// The most tokens a scope keeps by default (SpamAssassin's `bayes_expiry_max_db_size`).
pub const DEFAULT_MAX_TOKENS: usize = 150_000;

/// Tokens expired in one commit.
const EXPIRE_CHUNK: usize = 10_000;

/// Which tokens of `scope` to expire so that it keeps at most `max_tokens`: none while
/// it has no more; else the least recently learned (tokens learned before last-learned
/// days were recorded count as the oldest), the rarer first among those of one day,
/// until three quarters of `max_tokens` remain, so that expiry runs seldom, as
/// SpamAssassin's does. Tokens rare and old say least; the totals are kept.
pub fn expiry_candidates(
    store: &Store,
    scope: u32,
    max_tokens: usize,
) -> Result<Vec<u64>, StoreError> {
    let kv = store.kv();
    let mut tokens: Vec<(i64, u64, u64)> = Vec::new();
    let prefix = keys::token_prefix(scope);
    kv.scan_prefix(Cf::Counters, &prefix, &mut |key, value| {
        if let Some(token) = key
            .get(prefix.len()..)
            .and_then(|t| <[u8; 8]>::try_from(t).ok())
        {
            let c = unpack(decode_counter(value));
            tokens.push((0, c.spam + c.ham, u64::from_be_bytes(token)));
        }
        true
    })?;
    if tokens.len() <= max_tokens {
        return Ok(Vec::new());
    }
    // Scanned in token order, as are the counters: one merge pass.
    let mut days = std::collections::HashMap::with_capacity(tokens.len());
    let prefix = keys::seen_prefix(scope);
    kv.scan_prefix(Cf::Counters, &prefix, &mut |key, value| {
        if let Some(token) = key
            .get(prefix.len()..)
            .and_then(|t| <[u8; 8]>::try_from(t).ok())
        {
            days.insert(u64::from_be_bytes(token), decode_counter(value));
        }
        true
    })?;
    for (day, _, token) in tokens.iter_mut() {
        *day = days.get(token).copied().unwrap_or(0);
    }
    tokens.sort_unstable();
    let keep = max_tokens / 4 * 3;
    let drop = tokens.len().saturating_sub(keep);
    Ok(tokens.into_iter().take(drop).map(|(_, _, t)| t).collect())
}

/// Expires tokens of `scope` past `max_tokens` ([`expiry_candidates`]); how many.
/// Blocking: for reader threads, the daily purge and the CLI.
pub fn expire(store: &Store, scope: u32, max_tokens: usize) -> Result<usize, StoreError> {
    let candidates = expiry_candidates(store, scope, max_tokens)?;
    for chunk in candidates.chunks(EXPIRE_CHUNK) {
        let mut changes = super::Changes::new();
        changes.expire_tokens(scope, chunk.to_vec());
        store.commit_blocking(changes)?;
    }
    Ok(candidates.len())
}

/// The scopes that have learned anything: 0 (site-wide) and accounts with their own.
pub fn scopes(store: &Store) -> Result<Vec<u32>, StoreError> {
    let mut scopes = Vec::new();
    store
        .kv()
        .scan_prefix(Cf::Counters, b"bayes_total:", &mut |key, _| {
            if let Some(scope) = key
                .get(b"bayes_total:".len()..)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
            {
                scopes.push(u32::from_be_bytes(scope));
            }
            true
        })?;
    Ok(scopes)
}

/// How many tokens a scope has.
pub fn token_count(store: &Store, scope: u32) -> Result<usize, StoreError> {
    let mut n = 0;
    store
        .kv()
        .scan_prefix(Cf::Counters, &keys::token_prefix(scope), &mut |_, _| {
            n += 1;
            true
        })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Changes;

    #[test]
    fn a_count_taken_below_zero_does_not_corrupt_the_other() {
        // 3 spam, then one ham forgotten that was never counted: spam stays 3, ham 0.
        let value = 3 * delta(true) - delta(false);
        let c = unpack(value);
        assert_eq!((c.spam, c.ham), (3, 0));
        let c = unpack(2 * delta(true) + 5 * delta(false));
        assert_eq!((c.spam, c.ham), (2, 5));
        assert_eq!(unpack(-delta(true)).spam, 0);
    }

    fn learn(store: &Store, id: u8, tokens: &[u64], spam: Option<bool>) -> Learned {
        let mut c = Changes::new();
        c.learn(0, [id; 32], tokens.to_vec(), spam);
        store.commit_blocking(c).unwrap().learned[0]
    }

    #[test]
    fn a_message_counts_once_and_moves_when_relearned() {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        assert_eq!(learn(store, 1, &[7, 8], Some(true)), Learned::Learned);
        assert_eq!(learn(store, 1, &[7, 8], Some(true)), Learned::AlreadyKnown);
        assert_eq!(learn(store, 2, &[8, 9], Some(false)), Learned::Learned);
        assert_eq!(totals(store, 0).unwrap(), Totals { spam: 1, ham: 1 });
        let c = counts(store, 0, &[7, 8, 9, 10]).unwrap();
        assert_eq!(c[1], Counts { spam: 1, ham: 1 });
        assert_eq!(c[3], Counts::default());
        // Learned the other way: moved, not added.
        assert_eq!(learn(store, 1, &[7, 8], Some(false)), Learned::Relearned);
        assert_eq!(totals(store, 0).unwrap(), Totals { spam: 0, ham: 2 });
        assert_eq!(
            counts(store, 0, &[8]).unwrap()[0],
            Counts { spam: 0, ham: 2 }
        );
        assert_eq!(learn(store, 2, &[8, 9], None), Learned::Forgotten);
        assert_eq!(learn(store, 2, &[8, 9], None), Learned::NotKnown);
        assert_eq!(totals(store, 0).unwrap(), Totals { spam: 0, ham: 1 });
        // Two learns of one message in one commit: the second sees the first.
        let mut c = Changes::new();
        c.learn(0, [3; 32], vec![1], Some(true));
        c.learn(0, [3; 32], vec![1], Some(true));
        let applied = store.commit_blocking(c).unwrap();
        assert_eq!(applied.learned, [Learned::Learned, Learned::AlreadyKnown]);
        // Another scope is apart.
        assert_eq!(totals(store, 9).unwrap(), Totals::default());
    }

    #[test]
    fn expiry_drops_the_least_recently_learned_rare_tokens_first() {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        // Tokens 1..=8 learned with one message, 5..=12 with another, both today: 12
        // tokens, 5..=8 counted twice.
        learn(store, 1, &[1, 2, 3, 4, 5, 6, 7, 8], Some(true));
        learn(store, 2, &[5, 6, 7, 8, 9, 10, 11, 12], Some(false));
        let today = crate::clock::unix_now().div_euclid(86_400);
        assert_eq!(token_count(store, 0).unwrap(), 12);
        // Under the bound: nothing.
        assert!(expiry_candidates(store, 0, 12).unwrap().is_empty());
        // Over it (8): down to 6, the 6 oldest gone.
        let seen = |t: u64| {
            store
                .kv()
                .get(Cf::Counters, &keys::seen(0, t))
                .unwrap()
                .map(|v| decode_counter(&v))
        };
        assert_eq!(seen(9), Some(today));
        let _ = store.bayes_mirror().read(store.kv(), 0, &[1]).unwrap();
        assert_eq!(expire(store, 0, 8).unwrap(), 6);
        assert_eq!(token_count(store, 0).unwrap(), 6);
        let left = counts(store, 0, &(1..=12).collect::<Vec<_>>()).unwrap();
        let kept: Vec<u64> = (1..=12)
            .filter(|&t| left[t as usize - 1] != Counts::default())
            .collect();
        // All were learned today: the rarer (counted once) go first, 1-4 and 9-10 (ties
        // broken by token), and 5-8 (counted twice) and 11-12 stay.
        assert_eq!(kept, vec![5, 6, 7, 8, 11, 12]);
        assert_eq!(seen(9), None);
        // The totals stay.
        assert_eq!(totals(store, 0).unwrap(), Totals { spam: 1, ham: 1 });
        assert_eq!(scopes(store).unwrap(), vec![0]);
        // Learned again the same day after its expiry: its day is written again (the
        // commit thread's memory of the days written today was dropped with it).
        learn(store, 3, &[9, 13], Some(true));
        assert_eq!(seen(9), Some(today));
        assert_eq!(seen(13), Some(today));
    }
}
