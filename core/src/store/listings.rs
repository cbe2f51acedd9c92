//! Mailbox listings kept in memory: what SELECT, STATUS, IDLE and POP3 read of a mailbox
//! (every message's UID and entry), so that a 10,000-message mailbox is decoded from the
//! store once per change rather than once per command.
//!
//! A listing is filed under its mailbox's version (UID validity, next UID and highest
//! modification sequence): every write to a mailbox's messages takes a new modification
//! sequence in the same commit (the sequencer), so a reader that has just read the
//! mailbox's record finds the listing of exactly that state, or reads and files it.
//! Writes that bypass the sequencer (the exclusive jobs: repair, import) empty the cache.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::schema::{MailEntry, MailboxMeta};

/// The messages of one mailbox in UID order, shared by everyone reading that state.
pub type Listing = Arc<Vec<(u32, MailEntry)>>;

/// Most messages held over all cached listings (about 100 bytes each).
const MAX_MESSAGES: usize = 2_000_000;
/// Most mailboxes held.
const MAX_MAILBOXES: usize = 4_096;

/// Which state of a mailbox a listing shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Version {
    uidvalidity: u32,
    uidnext: u32,
    highest_modseq: u64,
}

impl Version {
    pub fn of(meta: &MailboxMeta) -> Version {
        Version {
            uidvalidity: meta.uidvalidity,
            uidnext: meta.uidnext,
            highest_modseq: meta.highest_modseq,
        }
    }
}

struct Slot {
    version: Version,
    listing: Listing,
    last_used: u64,
}

#[derive(Default)]
struct Slots {
    by_mailbox: HashMap<(u32, u32), Slot>,
    messages: usize,
    clock: u64,
}

/// The cache; one per store.
pub struct Listings {
    slots: Mutex<Slots>,
    /// Bumped by [`Listings::clear`]: a listing read before a clear is not filed after it.
    generation: AtomicU64,
    max_messages: usize,
    max_mailboxes: usize,
}

impl Default for Listings {
    fn default() -> Self {
        Listings::with_bounds(MAX_MESSAGES, MAX_MAILBOXES)
    }
}

impl Listings {
    fn with_bounds(max_messages: usize, max_mailboxes: usize) -> Listings {
        Listings {
            slots: Mutex::default(),
            generation: AtomicU64::new(0),
            max_messages,
            max_mailboxes,
        }
    }

    /// The listing of `mailbox` of `account` at `version`, if held.
    pub fn get(&self, account: u32, mailbox: u32, version: Version) -> Option<Listing> {
        let mut slots = self.lock();
        slots.clock += 1;
        let now = slots.clock;
        let slot = slots.by_mailbox.get_mut(&(account, mailbox))?;
        if slot.version != version {
            return None;
        }
        slot.last_used = now;
        Some(slot.listing.clone())
    }

    /// The generation to pass to [`Listings::put`] for a listing about to be read.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Files `listing` as `mailbox`'s at `version` (read during `generation`), dropping
    /// the least recently used listings past the bounds.
    pub fn put(
        &self,
        account: u32,
        mailbox: u32,
        version: Version,
        generation: u64,
        listing: Listing,
    ) {
        if listing.len() > self.max_messages {
            return;
        }
        let mut slots = self.lock();
        if self.generation() != generation {
            return;
        }
        slots.clock += 1;
        let slot = Slot {
            version,
            last_used: slots.clock,
            listing,
        };
        let added = slot.listing.len();
        if let Some(old) = slots.by_mailbox.insert((account, mailbox), slot) {
            slots.messages -= old.listing.len();
        }
        slots.messages += added;
        while slots.messages > self.max_messages || slots.by_mailbox.len() > self.max_mailboxes {
            let Some(oldest) = slots
                .by_mailbox
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            if let Some(gone) = slots.by_mailbox.remove(&oldest) {
                slots.messages -= gone.listing.len();
            }
        }
    }

    /// Forgets every listing (after writes that did not go through the sequencer).
    pub fn clear(&self) {
        let mut slots = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        slots.by_mailbox.clear();
        slots.messages = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic while holding the lock leaves the map consistent (no partial updates
        // that matter): keep using it.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(uidnext: u32, modseq: u64) -> MailboxMeta {
        MailboxMeta {
            id: 1,
            uidvalidity: 7,
            uidnext,
            highest_modseq: modseq,
            subscribed: true,
            special_use: None,
        }
    }

    fn listing(n: usize) -> Listing {
        let entry = MailEntry {
            blob: [0; 32],
            size: 1,
            internal_date: 0,
            flags: 0,
            keywords: Vec::new(),
            modseq: 1,
            spam_score: None,
        };
        Arc::new((1..=n as u32).map(|u| (u, entry.clone())).collect())
    }

    #[test]
    fn a_listing_serves_only_its_own_version() {
        let cache = Listings::default();
        let v1 = Version::of(&meta(3, 5));
        cache.put(1, 1, v1, cache.generation(), listing(2));
        assert_eq!(cache.get(1, 1, v1).map(|l| l.len()), Some(2));
        assert!(cache.get(1, 1, Version::of(&meta(3, 6))).is_none());
        assert!(cache.get(1, 1, Version::of(&meta(4, 5))).is_none());
        assert!(cache.get(2, 1, v1).is_none());
    }

    #[test]
    fn a_listing_read_before_a_clear_is_not_filed() {
        let cache = Listings::default();
        let v = Version::of(&meta(3, 5));
        let before = cache.generation();
        cache.clear();
        cache.put(1, 1, v, before, listing(2));
        assert!(cache.get(1, 1, v).is_none());
    }

    #[test]
    fn the_least_recently_used_go_past_the_bound() {
        let cache = Listings::with_bounds(100, 10);
        let v = Version::of(&meta(3, 5));
        let big = 50;
        cache.put(1, 1, v, cache.generation(), listing(big));
        cache.put(1, 2, v, cache.generation(), listing(big));
        assert!(cache.get(1, 1, v).is_some());
        cache.put(1, 3, v, cache.generation(), listing(10));
        // Mailbox 2 was used least recently.
        assert!(cache.get(1, 2, v).is_none());
        assert!(cache.get(1, 1, v).is_some() && cache.get(1, 3, v).is_some());
    }
}
