//! Mailbox listings kept in memory: what SELECT, STATUS, IDLE and POP3 read of a mailbox
//! (every message's UID and entry), so that a 10,000-message mailbox is decoded from the
//! store once per change rather than once per command.
//!
//! A listing is filed under its mailbox's version (UID validity, next UID and highest
//! modification sequence): every write to a mailbox's messages takes a new modification
//! sequence in the same commit (the sequencer), so a reader that has just read the
//! mailbox's record finds the listing of exactly that state, or reads and files it.
//! Writes that bypass the sequencer (the exclusive jobs: repair, import) empty the cache.
//!
//! The commit thread tells the cache what each group commit did to a mailbox held here
//! ([`Delta`]: the messages written and removed, from one version to the next), and a
//! reader asking for a later version gets the held listing with those changes applied,
//! instead of reading the whole mailbox again: a mailbox receiving mail all day while
//! clients watch it costs each reader the new messages, not the 100,000 old ones.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::schema::{MailEntry, MailboxMeta};

pub use super::listing::Listing;

/// Most messages held over all cached listings (about 100 bytes each), but for the
/// largest, which is kept whatever its size (see [`Listings::evict`]).
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

/// What one group commit did to a mailbox's messages: each message written (`Some`: its
/// entry now) or removed (`None`), in UID order, taking the mailbox from one version to
/// the next.
#[derive(Debug)]
pub struct Delta {
    pub from: Version,
    pub to: Version,
    pub messages: Vec<(u32, Option<MailEntry>)>,
}

/// What a written group did to a mailbox, for the listings held ([`Listings::follow`]).
#[derive(Debug)]
pub enum ListingChange {
    /// A mailbox's messages changed: from one version to the next.
    Advance {
        account: u32,
        mailbox: u32,
        delta: Delta,
    },
    /// A mailbox was deleted, or changed in a way a listing cannot follow.
    Forget { account: u32, mailbox: u32 },
}

/// Most changes held after a listing before it is forgotten instead (read again when
/// next asked for): a mailbox that changes often and is read seldom. At a thousand
/// messages a second in groups of ten or more, this is ten seconds of mail or more. (A
/// reader catching up clones the changes' handles under the lock: keep it modest.)
const MAX_DELTAS: usize = 1_024;

struct Slot {
    /// The version of `listing`.
    version: Version,
    listing: Listing,
    /// Changes since `version`, each from the one before's `to`.
    deltas: Vec<Arc<Delta>>,
    last_used: u64,
}

impl Slot {
    /// The latest version this slot can give.
    fn head(&self) -> Version {
        self.deltas.last().map_or(self.version, |d| d.to)
    }

    /// Messages counted against the bound: the listing's and the changes'.
    fn weight(&self) -> usize {
        self.listing.len() + self.deltas.iter().map(|d| d.messages.len()).sum::<usize>()
    }
}

#[derive(Default)]
struct Slots {
    by_mailbox: HashMap<(u32, u32), Slot>,
    /// Mailboxes not held whose listing a reader is reading from the store (its `get`
    /// missed): the changes since, so that the listing is filed with them and the next
    /// reader finds it. Without them a mailbox written to all the time would be filed
    /// already out of date at every read, and read again by every reader.
    reading: HashMap<(u32, u32), Vec<Arc<Delta>>>,
    /// Messages in those logs (bounded like those held).
    logged: usize,
    messages: usize,
    clock: u64,
}

impl Slots {
    /// Adds `delta` to the log of a mailbox being read, if there is one. A change that
    /// does not follow the last one, or one past the bounds, ends the log (the listing
    /// read is then filed as it was read).
    fn log(&mut self, key: (u32, u32), delta: Delta, max_messages: usize) {
        let added = delta.messages.len();
        let Some(log) = self.reading.get_mut(&key) else {
            return;
        };
        let head = log.last().map_or(delta.from, |last| last.to);
        if carries_on(head, &delta) && log.len() < MAX_DELTAS && self.logged + added <= max_messages
        {
            log.push(Arc::new(delta));
            self.logged += added;
        } else {
            self.end_log(key);
        }
    }

    /// Drops the listing held for `key`'s mailbox, if any.
    fn drop_slot(&mut self, key: (u32, u32)) {
        if let Some(gone) = self.by_mailbox.remove(&key) {
            self.messages -= gone.weight();
        }
    }

    /// Removes the log of `key`'s mailbox, returning its changes.
    fn end_log(&mut self, key: (u32, u32)) -> Vec<Arc<Delta>> {
        let log = self.reading.remove(&key).unwrap_or_default();
        self.logged -= log.iter().map(|d| d.messages.len()).sum::<usize>();
        log
    }
}

/// The cache; one per store.
pub struct Listings {
    slots: Mutex<Slots>,
    /// Bumped by [`Listings::clear`]: a listing read before a clear is not filed after it.
    generation: AtomicU64,
    /// Listings filed after a read of the store (for tests and metrics).
    reads: AtomicU64,
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
            reads: AtomicU64::new(0),
            max_messages,
            max_mailboxes,
        }
    }

    /// The listing of `mailbox` of `account` at `version`, if held (or held at an earlier
    /// version with the changes since).
    pub fn get(&self, account: u32, mailbox: u32, version: Version) -> Option<Listing> {
        let (base, changes) = {
            let mut slots = self.lock();
            slots.clock += 1;
            let now = slots.clock;
            let Some(slot) = slots.by_mailbox.get_mut(&(account, mailbox)) else {
                // The caller reads it from the store: the changes from now on go with it.
                if slots.reading.len() < self.max_mailboxes {
                    slots.reading.entry((account, mailbox)).or_default();
                }
                return None;
            };
            slot.last_used = now;
            if slot.version == version {
                return Some(slot.listing.clone());
            }
            let upto = slot.deltas.iter().position(|d| d.to == version)?;
            let changes: Vec<Arc<Delta>> = slot.deltas.get(..=upto)?.to_vec();
            (slot.listing.clone(), changes)
        };
        // Applied outside the lock: the commit thread files changes meanwhile.
        let listing: Listing = apply(&base, &changes);
        let mut slots = self.lock();
        let slots = &mut *slots;
        if let Some(slot) = slots.by_mailbox.get_mut(&(account, mailbox)) {
            // Still the state it was built from (not replaced or advanced by another
            // reader meanwhile): it becomes the slot's listing.
            // (Changes are only ever appended to a listing while it stays.)
            if Listing::ptr_eq(&slot.listing, &base) && slot.deltas.len() >= changes.len() {
                let before = slot.weight();
                slot.deltas.drain(..changes.len());
                slot.version = version;
                slot.listing = listing.clone();
                slots.messages = slots.messages - before + slot.weight();
            }
        }
        Some(listing)
    }

    /// Takes in what a written group did to a mailbox.
    pub fn follow(&self, change: ListingChange) {
        match change {
            ListingChange::Advance {
                account,
                mailbox,
                delta,
            } => self.advance(account, mailbox, delta),
            ListingChange::Forget { account, mailbox } => self.forget(account, mailbox),
        }
    }

    /// Files what a group commit did to `mailbox` of `account`: a listing held at the
    /// delta's `from` (or with changes up to it) can then be brought to its `to`. A held
    /// listing that does not lead to `from` is stale and forgotten.
    pub fn advance(&self, account: u32, mailbox: u32, delta: Delta) {
        let mut slots = self.lock();
        let slots = &mut *slots;
        let Some(slot) = slots.by_mailbox.get_mut(&(account, mailbox)) else {
            slots.log((account, mailbox), delta, self.max_messages);
            return;
        };
        let head = slot.head();
        if head == delta.to {
            // A reader filed this state already.
            return;
        }
        let added = delta.messages.len();
        if carries_on(head, &delta) && slot.deltas.len() < MAX_DELTAS && added <= self.max_messages
        {
            slot.deltas.push(Arc::new(delta));
            slots.messages += added;
            self.evict(slots);
        } else {
            slots.drop_slot((account, mailbox));
        }
    }

    /// Forgets the listing of `mailbox` of `account` (deleted, or changed in a way the
    /// cache cannot follow).
    pub fn forget(&self, account: u32, mailbox: u32) {
        let mut slots = self.lock();
        slots.end_log((account, mailbox));
        slots.drop_slot((account, mailbox));
    }

    /// A reader that missed will not file what it read (the read failed): its log ends.
    pub fn abandon(&self, account: u32, mailbox: u32) {
        self.lock().end_log((account, mailbox));
    }

    /// Messages held: in listings and the changes after them, and in the logs of
    /// listings being read (what the bounds count).
    pub fn held(&self) -> usize {
        let slots = self.lock();
        slots.messages + slots.logged
    }

    /// How many listings were read from the store and offered to [`Listings::put`].
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::Relaxed)
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
        self.reads.fetch_add(1, Ordering::Relaxed);
        let mut slots = self.lock();
        // The changes written while it was read (logged since a reader missed): kept
        // after the listing if their chain passes through `version`, the state the reader
        // looked up before reading (the listing holds at least that state, and a change
        // applied again to a listing that has it already changes nothing). A log that
        // does not reach back to `version` (opened by another reader, with a gap since)
        // is no use to this listing.
        let since_read = slots.end_log((account, mailbox));
        if self.generation() != generation {
            return;
        }
        let deltas = changes_after(since_read, version);
        if let Some(held) = slots.by_mailbox.get(&(account, mailbox)) {
            let head = held.head();
            if head.uidvalidity == version.uidvalidity
                && head.highest_modseq > version.highest_modseq
            {
                // A reader late with an earlier state: what is held is newer, and keeps.
                return;
            }
        }
        slots.clock += 1;
        let slot = Slot {
            version,
            last_used: slots.clock,
            listing,
            deltas,
        };
        let added = slot.weight();
        if let Some(old) = slots.by_mailbox.insert((account, mailbox), slot) {
            slots.messages -= old.weight();
        }
        slots.messages += added;
        self.evict(&mut slots);
    }

    /// Drops the least recently used listings past the bounds, but never the largest,
    /// which the message bound does not count: a mailbox larger than the bound is held
    /// with the others (up to the bound) beside it. Not holding it cost far more: in a
    /// soak whose one mailbox passed 2 million messages (the bound), every reader read
    /// the whole mailbox again at each change, RSS went from 0.75 to 2 GB and the rate
    /// halved (docs/benchmarks.md, session 17); dropping it for the next small listing
    /// filed would do the same.
    fn evict(&self, slots: &mut Slots) {
        let over = |slots: &Slots, largest: usize| {
            slots.messages.saturating_sub(largest) > self.max_messages
                || slots.by_mailbox.len() > self.max_mailboxes
        };
        if !over(slots, 0) {
            return;
        }
        // Dropping the others never changes which one is the largest.
        let Some((largest, weight)) = slots
            .by_mailbox
            .iter()
            .map(|(k, s)| (*k, s.weight()))
            .max_by_key(|&(_, weight)| weight)
        else {
            return;
        };
        while over(slots, weight) {
            let Some(oldest) = slots
                .by_mailbox
                .iter()
                .filter(|(k, _)| **k != largest)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(k, _)| *k)
            else {
                break;
            };
            slots.drop_slot(oldest);
        }
    }

    /// Forgets every listing (after writes that did not go through the sequencer).
    pub fn clear(&self) {
        let mut slots = self.lock();
        self.generation.fetch_add(1, Ordering::AcqRel);
        slots.by_mailbox.clear();
        slots.reading.clear();
        slots.logged = 0;
        slots.messages = 0;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        // A panic while holding the lock leaves the map consistent (no partial updates
        // that matter): keep using it.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Whether `delta` carries a mailbox on from `head` (and not into a new UID validity: the
/// mailbox was recreated).
fn carries_on(head: Version, delta: &Delta) -> bool {
    head == delta.from && delta.from.uidvalidity == delta.to.uidvalidity
}

/// The changes of a log (a chain, each from the one before's `to`) after `version`: all
/// of them if the first starts there, those after the one that ends there, none if the
/// chain does not pass through it.
fn changes_after(log: Vec<Arc<Delta>>, version: Version) -> Vec<Arc<Delta>> {
    if log.first().is_some_and(|first| first.from == version) {
        return log;
    }
    match log.iter().position(|d| d.to == version) {
        Some(at) => log.into_iter().skip(at + 1).collect(),
        None => Vec::new(),
    }
}

/// `base` with `changes` applied in order (the last change of each message wins): only
/// the chunks of `base` that hold a changed message are copied.
fn apply(base: &Listing, changes: &[Arc<Delta>]) -> Listing {
    let mut changed: BTreeMap<u32, Option<&MailEntry>> = BTreeMap::new();
    for delta in changes {
        for (uid, entry) in &delta.messages {
            changed.insert(*uid, entry.as_ref());
        }
    }
    base.apply(&changed)
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
        Listing::from_vec((1..=n as u32).map(|u| (u, entry(0))).collect())
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
        // The largest (mailbox 9) is not counted against the bound.
        cache.put(1, 9, v, cache.generation(), listing(60));
        cache.put(1, 1, v, cache.generation(), listing(50));
        cache.put(1, 2, v, cache.generation(), listing(45));
        assert!(cache.get(1, 1, v).is_some());
        cache.put(1, 3, v, cache.generation(), listing(10));
        // Mailbox 2 was used least recently.
        assert!(cache.get(1, 2, v).is_none());
        assert!(cache.get(1, 1, v).is_some() && cache.get(1, 3, v).is_some());
        assert!(cache.get(1, 9, v).is_some());
    }

    fn entry(flags: u32) -> MailEntry {
        MailEntry::for_test(flags)
    }

    fn uids(listing: &Listing) -> Vec<(u32, u32)> {
        listing.iter().map(|(u, e)| (*u, e.flags)).collect()
    }

    /// What the cache counts equals what it holds, and is what it reports.
    fn weight_is_kept(cache: &Listings) {
        let (held, logged) = {
            let slots = cache.lock();
            let held: usize = slots.by_mailbox.values().map(Slot::weight).sum();
            assert_eq!(slots.messages, held);
            let logged: usize = slots
                .reading
                .values()
                .flatten()
                .map(|d| d.messages.len())
                .sum();
            assert_eq!(slots.logged, logged);
            (held, logged)
        };
        assert_eq!(cache.held(), held + logged);
    }

    #[test]
    fn changes_bring_a_held_listing_to_later_versions() {
        let cache = Listings::default();
        let (v1, v2, v3) = (
            Version::of(&meta(4, 5)),
            Version::of(&meta(5, 6)),
            Version::of(&meta(5, 7)),
        );
        cache.put(1, 1, v1, cache.generation(), listing(3));
        // v1 -> v2: message 4 arrives, 2 is flagged; v2 -> v3: 1 and 3 removed.
        let delta = |from, to, messages| Delta { from, to, messages };
        cache.advance(
            1,
            1,
            delta(v1, v2, vec![(2, Some(entry(1))), (4, Some(entry(0)))]),
        );
        cache.advance(1, 1, delta(v2, v3, vec![(1, None), (3, None)]));
        weight_is_kept(&cache);
        let at_v2 = cache.get(1, 1, v2).expect("v2 from v1 and its change");
        assert_eq!(uids(&at_v2), [(1, 0), (2, 1), (3, 0), (4, 0)]);
        weight_is_kept(&cache);
        // v2 is now the held listing: asked again, the same one.
        assert!(Listing::ptr_eq(&at_v2, &cache.get(1, 1, v2).expect("held")));
        let at_v3 = cache.get(1, 1, v3).expect("v3");
        assert_eq!(uids(&at_v3), [(2, 1), (4, 0)]);
        assert!(cache.get(1, 1, v1).is_none(), "an earlier state is gone");
        assert_eq!(cache.reads(), 1, "one read, at the start");
        weight_is_kept(&cache);
    }

    #[test]
    fn a_listing_read_while_its_mailbox_is_written_is_filed_with_the_changes() {
        let cache = Listings::default();
        let version = |uidnext, modseq| Version::of(&meta(uidnext, modseq));
        let (v1, v2, v3) = (version(4, 5), version(5, 6), version(6, 7));
        let delta = |from, to, uid| Delta {
            from,
            to,
            messages: vec![(uid, Some(entry(0)))],
        };
        // A reader at v1 misses and reads the store; two groups are written meanwhile
        // (the read saw the first of them).
        assert!(cache.get(1, 1, v1).is_none());
        cache.advance(1, 1, delta(v1, v2, 4));
        cache.advance(1, 1, delta(v2, v3, 5));
        cache.put(1, 1, v1, cache.generation(), listing(4));
        weight_is_kept(&cache);
        // The next reader, at v3, is served from memory: no second read of the store.
        let at_v3 = cache.get(1, 1, v3).expect("brought to v3");
        assert_eq!(at_v3.len(), 5);
        assert_eq!(cache.reads(), 1);
        weight_is_kept(&cache);
        // A log broken by a change that does not follow is dropped: the listing is
        // filed as read, and a later state is read again.
        assert!(cache.get(1, 2, v1).is_none());
        cache.advance(1, 2, delta(v1, v2, 4));
        cache.advance(1, 2, delta(v3, version(7, 8), 6));
        cache.put(1, 2, v1, cache.generation(), listing(3));
        assert!(cache.get(1, 2, v2).is_none());
        assert!(cache.get(1, 2, v1).is_some());
        // Nothing is logged for a mailbox nobody is reading.
        cache.advance(1, 3, delta(v1, v2, 4));
        assert!(!cache.lock().reading.contains_key(&(1, 3)));
        // A log that does not pass through the reader's state (opened by a later reader,
        // a gap before it) is no use to it: filed as read, a later state is read again,
        // never served with changes missing.
        assert!(cache.get(1, 4, v2).is_none());
        cache.advance(1, 4, delta(v2, v3, 5));
        cache.put(1, 4, v1, cache.generation(), listing(3));
        assert!(cache.get(1, 4, v3).is_none());
        // A reader whose read failed ends its log.
        assert!(cache.get(1, 5, v1).is_none());
        cache.advance(1, 5, delta(v1, v2, 4));
        cache.abandon(1, 5);
        weight_is_kept(&cache);
        assert!(cache.lock().reading.is_empty());
    }

    #[test]
    fn a_change_that_does_not_follow_forgets_the_listing() {
        let cache = Listings::default();
        let (v1, v2, v3) = (
            Version::of(&meta(4, 5)),
            Version::of(&meta(5, 6)),
            Version::of(&meta(6, 7)),
        );
        cache.put(1, 1, v1, cache.generation(), listing(3));
        // A change from a state the cache never saw: what it holds is stale.
        let messages = vec![(5, Some(entry(0)))];
        cache.advance(
            1,
            1,
            Delta {
                from: v2,
                to: v3,
                messages,
            },
        );
        assert!(cache.get(1, 1, v1).is_none() && cache.get(1, 1, v3).is_none());
        // A new UID validity: the mailbox was recreated.
        cache.put(1, 1, v1, cache.generation(), listing(3));
        let mut other = meta(1, 1);
        other.uidvalidity = 8;
        let messages = Vec::new();
        cache.advance(
            1,
            1,
            Delta {
                from: v1,
                to: Version::of(&other),
                messages,
            },
        );
        assert!(cache.get(1, 1, v1).is_none());
        // A change already seen by a reader (filed at its `to`) is skipped.
        cache.put(1, 1, v2, cache.generation(), listing(4));
        cache.advance(
            1,
            1,
            Delta {
                from: v1,
                to: v2,
                messages: vec![(4, Some(entry(0)))],
            },
        );
        assert_eq!(cache.get(1, 1, v2).map(|l| l.len()), Some(4));
        // A reader late with an earlier state does not replace a newer one.
        cache.put(1, 1, v1, cache.generation(), listing(3));
        assert_eq!(cache.get(1, 1, v2).map(|l| l.len()), Some(4));
        cache.forget(1, 1);
        assert!(cache.get(1, 1, v2).is_none());
        weight_is_kept(&cache);
    }

    #[test]
    fn the_largest_listing_is_held_past_the_bound() {
        let cache = Listings::with_bounds(100, 10);
        let v1 = Version::of(&meta(3, 5));
        let v2 = Version::of(&meta(3, 6));
        cache.put(1, 1, v1, cache.generation(), listing(50));
        cache.put(1, 2, v1, cache.generation(), listing(150));
        assert!(cache.get(1, 2, v1).is_some(), "the large listing is held");
        assert!(
            cache.get(1, 1, v1).is_some(),
            "and the others up to the bound"
        );
        // It follows changes as any listing does.
        let messages = vec![(151, Some(entry(0)))];
        cache.advance(
            1,
            2,
            Delta {
                from: v1,
                to: v2,
                messages,
            },
        );
        assert_eq!(cache.get(1, 2, v2).map(|l| l.len()), Some(151));
        weight_is_kept(&cache);
        // Smaller listings filed after it are held beside it, up to the bound.
        cache.put(1, 1, v1, cache.generation(), listing(50));
        cache.put(1, 3, v1, cache.generation(), listing(40));
        assert!(cache.get(1, 1, v1).is_some() && cache.get(1, 3, v1).is_some());
        assert!(cache.get(1, 2, v2).is_some(), "the largest stays");
        cache.put(1, 4, v1, cache.generation(), listing(20));
        assert!(
            cache.get(1, 1, v1).is_none(),
            "the least recently used small one went"
        );
        assert!(cache.get(1, 2, v2).is_some() && cache.get(1, 4, v1).is_some());
        weight_is_kept(&cache);
    }

    #[test]
    fn changes_count_against_the_bound() {
        let cache = Listings::with_bounds(100, 10);
        let v1 = Version::of(&meta(3, 5));
        let v2 = Version::of(&meta(3, 6));
        // The largest (mailbox 9) is not counted against the bound.
        cache.put(1, 9, v1, cache.generation(), listing(70));
        cache.put(1, 1, v1, cache.generation(), listing(60));
        cache.put(1, 2, v1, cache.generation(), listing(30));
        assert!(cache.get(1, 2, v1).is_some());
        // 20 flag changes in mailbox 2 take the total past 100: mailbox 1 goes.
        let messages = (1..=20).map(|u| (u, Some(entry(1)))).collect();
        cache.advance(
            1,
            2,
            Delta {
                from: v1,
                to: v2,
                messages,
            },
        );
        assert!(cache.get(1, 1, v1).is_none());
        assert_eq!(cache.get(1, 2, v2).map(|l| uids(&l)[0]), Some((1, 1)));
        weight_is_kept(&cache);
    }

    #[test]
    fn a_merge_keeps_uid_order() {
        let base = listing(5);
        let d = |messages| {
            Arc::new(Delta {
                from: Version::of(&meta(1, 1)),
                to: Version::of(&meta(1, 1)),
                messages,
            })
        };
        let out = apply(
            &base,
            &[
                d(vec![(0, Some(entry(2))), (3, None), (9, Some(entry(0)))]),
                d(vec![(9, None), (7, Some(entry(1))), (5, Some(entry(3)))]),
            ],
        );
        let got: Vec<(u32, u32)> = out.iter().map(|(u, e)| (*u, e.flags)).collect();
        assert_eq!(got, [(0, 2), (1, 0), (2, 0), (4, 0), (5, 3), (7, 1)]);
    }
}
