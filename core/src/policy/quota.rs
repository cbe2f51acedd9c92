//! Storage quotas in memory: each account's limit and use, seen by every core.
//!
//! The store's counters (merged by the commit thread) are the truth; this book is loaded
//! from them at start and kept in step by the commit thread itself (it is the store's
//! [`UsageObserver`]: every durable change of usage, whoever made it), so that RCPT can
//! be refused for a full mailbox without a store read on the worker.

use std::sync::Arc;

use super::sharded::Sharded;
use crate::store::directory::list_accounts;
use crate::store::{Store, StoreError, UsageObserver};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub limit: u64,
    pub used: i64,
}

pub struct QuotaBook {
    accounts: Sharded<u32, Usage>,
}

impl QuotaBook {
    /// Loads the book from the store, which keeps it in step from then on.
    pub fn load(store: &Store) -> Result<Arc<QuotaBook>, StoreError> {
        let book = Arc::new(QuotaBook {
            accounts: Sharded::new(),
        });
        store.observe_usage(book.clone());
        book.reload(store)?;
        Ok(book)
    }

    /// Re-reads limits and use of every account (after an admin change).
    pub fn reload(&self, store: &Store) -> Result<(), StoreError> {
        for info in list_accounts(store)? {
            let usage = Usage {
                limit: info.account.quota,
                used: info.usage,
            };
            self.accounts
                .with(&info.account.id, |m| m.insert(info.account.id, usage));
        }
        Ok(())
    }

    /// True when `extra` more bytes fit in the account's quota.
    pub fn allows(&self, account: u32, extra: u64) -> bool {
        self.accounts.with(&account, |m| {
            m.get(&account)
                .is_none_or(|u| u.used.max(0) as u64 + extra <= u.limit)
        })
    }

    /// Records a change of the account's use (positive for delivery, negative for expunge).
    fn add(&self, account: u32, delta: i64) {
        self.accounts.with(&account, |m| {
            if let Some(u) = m.get_mut(&account) {
                u.used += delta;
            }
        });
    }

    pub fn usage(&self, account: u32) -> Option<Usage> {
        self.accounts.with(&account, |m| m.get(&account).copied())
    }
}

impl UsageObserver for QuotaBook {
    fn usage_changed(&self, account: u32, delta: i64) {
        self.add(account, delta);
    }
}
