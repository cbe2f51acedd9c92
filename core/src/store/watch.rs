//! Change notification: who wants to know when a mailbox changes (an IMAP session in
//! IDLE) subscribes to it; the commit thread tells every subscriber of a mailbox once a
//! group that changed it is durable. A `watch` channel per watched mailbox carries a
//! version number, so a change made while a subscriber was busy is seen when it next
//! looks (never lost), and many changes in a row wake it once.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::watch;

/// The mailboxes someone watches, by (account, mailbox id).
#[derive(Debug, Default)]
pub struct MailboxWatch {
    senders: Mutex<HashMap<(u32, u32), watch::Sender<u64>>>,
}

impl MailboxWatch {
    /// A receiver that wakes (`changed()`) after each durable change of the mailbox.
    pub fn subscribe(&self, account: u32, mailbox: u32) -> watch::Receiver<u64> {
        let mut senders = self.lock();
        if let Some(sender) = senders.get(&(account, mailbox)) {
            return sender.subscribe();
        }
        // Drop the channels nobody listens to any more before adding one.
        senders.retain(|_, s| s.receiver_count() > 0);
        let (sender, receiver) = watch::channel(0);
        senders.insert((account, mailbox), sender);
        receiver
    }

    /// Tells the subscribers of each mailbox in `changed` (called by the commit thread).
    pub fn changed(&self, changed: &[(u32, u32)]) {
        let mut senders = self.lock();
        if senders.is_empty() {
            return;
        }
        for key in changed {
            let Some(sender) = senders.get(key) else {
                continue;
            };
            if sender.receiver_count() == 0 {
                senders.remove(key);
            } else {
                sender.send_modify(|version| *version = version.wrapping_add(1));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(u32, u32), watch::Sender<u64>>> {
        // Each change under the lock is one insert, send or remove: a panic elsewhere
        // cannot leave the map half-changed.
        self.senders
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_of_a_mailbox_see_its_changes_only() {
        let watch = MailboxWatch::default();
        let mut a = watch.subscribe(1, 5);
        let mut b = watch.subscribe(1, 5);
        let mut other = watch.subscribe(1, 6);
        assert!(!a.has_changed().unwrap());
        watch.changed(&[(1, 5), (2, 5)]);
        watch.changed(&[(1, 5)]);
        // Two changes: seen as one, by each subscriber of the mailbox.
        assert!(a.has_changed().unwrap());
        assert!(b.has_changed().unwrap());
        assert!(!other.has_changed().unwrap());
        a.borrow_and_update();
        assert!(!a.has_changed().unwrap());
        b.borrow_and_update();
        other.borrow_and_update();
        // Nobody listens to mailbox 6 any more: its channel goes.
        drop(other);
        watch.changed(&[(1, 6)]);
        assert_eq!(watch.lock().len(), 1);
    }
}
