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

use crate::store::schema::MailEntry;

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

/// How many of a mailbox's `messages` (in UID order) no session has claimed (STATUS
/// RECENT).
pub fn unclaimed(
    book: &RecentBook,
    account: u32,
    mailbox: u32,
    messages: &[(u32, MailEntry)],
) -> u32 {
    let first = book.first_unclaimed(account, mailbox);
    let claimed = messages.partition_point(|(uid, _)| *uid < first);
    (messages.len() - claimed) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

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
