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
}
