//! \Recent (RFC 3501 2.3.2, for IMAP4rev1 clients): a message is recent in exactly one
//! session, the first to select its mailbox read-write after it arrived (or to be told of
//! it while having the mailbox selected). The book remembers, per mailbox, the first UID
//! no session has claimed yet; a claim moves it to the mailbox's UIDNEXT as the claiming
//! session saw it, atomically, so two sessions never claim the same message.
//!
//! The book is kept in memory, shared by every session of the server: after a restart
//! every message is recent once more, to the first session that selects its mailbox
//! (\Recent is advisory; RFC 9051 dropped it).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::store::listing::Listing;

/// The first unclaimed UID of each mailbox, by (account, mailbox id): mailbox ids are
/// never given twice within an account, so a deleted mailbox's entry is never mistaken
/// for a new one's.
#[derive(Debug, Default)]
pub struct RecentBook {
    first_unclaimed: Mutex<HashMap<(u32, u32), u32>>,
}

impl RecentBook {
    /// Claims for the caller the messages of mailbox `(account, mailbox)` that no session
    /// has claimed, up to (not including) `uidnext`: those with a UID in the range
    /// returned are recent in the caller's session.
    pub fn claim(&self, account: u32, mailbox: u32, uidnext: u32) -> std::ops::Range<u32> {
        let mut book = self.lock();
        let first = book.entry((account, mailbox)).or_insert(1);
        let from = *first;
        if uidnext > from {
            *first = uidnext;
            from..uidnext
        } else {
            from..from
        }
    }

    /// The first UID no session has claimed in `(account, mailbox)`: messages from it on
    /// are recent to whoever selects the mailbox next (EXAMINE and STATUS look, without
    /// claiming).
    pub fn first_unclaimed(&self, account: u32, mailbox: u32) -> u32 {
        self.lock().get(&(account, mailbox)).copied().unwrap_or(1)
    }

    /// Forgets a deleted mailbox.
    pub fn forget(&self, account: u32, mailbox: u32) {
        self.lock().remove(&(account, mailbox));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, u32), u32>> {
        // A panic while the lock was held cannot leave the map half-changed (each change
        // is one insert or remove): go on with it.
        self.first_unclaimed
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The UIDs recent in one session: the ranges it claimed (or, EXAMINE, saw unclaimed),
/// merged. Ranges, not a set of UIDs: a session watching a mailbox that receives mail all
/// day claims every new message, and a set would grow by each of them. The messages
/// recent are those of the selected mailbox with a UID in a range (an expunged one drops
/// out with the message).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecentUids {
    /// Sorted, disjoint and not adjacent, none empty.
    ranges: Vec<std::ops::Range<u32>>,
}

impl RecentUids {
    pub fn add(&mut self, range: std::ops::Range<u32>) {
        if range.is_empty() {
            return;
        }
        // Claims come in UID order, each from where the last one ended: the common case
        // is growing the last range.
        match self.ranges.last_mut() {
            Some(last) if last.end == range.start => last.end = range.end,
            Some(last) if last.end < range.start => self.ranges.push(range),
            None => self.ranges.push(range),
            Some(_) => {
                self.ranges.push(range);
                self.ranges.sort_unstable_by_key(|r| r.start);
                let mut merged: Vec<std::ops::Range<u32>> = Vec::new();
                for r in self.ranges.drain(..) {
                    match merged.last_mut() {
                        Some(m) if r.start <= m.end => m.end = m.end.max(r.end),
                        _ => merged.push(r),
                    }
                }
                self.ranges = merged;
            }
        }
    }

    pub fn contains(&self, uid: u32) -> bool {
        let after = self.ranges.partition_point(|r| r.start <= uid);
        after
            .checked_sub(1)
            .and_then(|i| self.ranges.get(i))
            .is_some_and(|r| r.contains(&uid))
    }

    /// How many of `messages` are recent.
    pub fn count_in(&self, messages: &Listing) -> usize {
        let at = |uid: u32| messages.find(uid).unwrap_or_else(|at| at);
        self.ranges.iter().map(|r| at(r.end) - at(r.start)).sum()
    }
}

/// How many of a mailbox's `messages` (in UID order) no session has claimed (STATUS
/// RECENT).
pub fn unclaimed(book: &RecentBook, account: u32, mailbox: u32, messages: &Listing) -> u32 {
    let first = book.first_unclaimed(account, mailbox);
    let claimed = messages.find(first).unwrap_or_else(|at| at);
    (messages.len() - claimed) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_uids_merge_their_ranges() {
        let mut r = RecentUids::default();
        r.add(5..5);
        assert!(!r.contains(5));
        r.add(3..6);
        r.add(6..9);
        r.add(12..14);
        assert_eq!(r.ranges, [3..9, 12..14]);
        r.add(1..4);
        r.add(9..12);
        assert_eq!(r.ranges, vec![std::ops::Range { start: 1, end: 14 }]);
        assert!(r.contains(1) && r.contains(13) && !r.contains(14) && !r.contains(0));
        let messages = crate::store::listing::Listing::from_vec(
            [2, 4, 13, 20]
                .into_iter()
                .map(|u| (u, crate::store::schema::MailEntry::for_test(0)))
                .collect(),
        );
        assert_eq!(r.count_in(&messages), 3);
    }

    #[test]
    fn each_message_is_claimed_once() {
        let book = RecentBook::default();
        assert_eq!(book.first_unclaimed(1, 2), 1);
        assert_eq!(book.claim(1, 2, 5), 1..5);
        // A second session sees nothing recent; a later one only what came since.
        assert!(book.claim(1, 2, 5).is_empty());
        assert_eq!(book.claim(1, 2, 7), 5..7);
        // A session that saw an older listing claims nothing and moves nothing back.
        assert!(book.claim(1, 2, 6).is_empty());
        assert_eq!(book.first_unclaimed(1, 2), 7);
        // Other mailboxes and accounts are apart.
        assert_eq!(book.claim(1, 3, 2), 1..2);
        assert_eq!(book.claim(2, 2, 2), 1..2);
        book.forget(1, 2);
        assert_eq!(book.first_unclaimed(1, 2), 1);
    }
}
