//! The outbound queue: messages for remote recipients, waiting for delivery.
//!
//! Key: next attempt (Unix seconds, big-endian) then queue id, so a scan from the start
//! finds what is due first. The message itself is a blob shared with local copies.

use serde::{Deserialize, Serialize};

use super::kv::{Cf, StoreError};
use super::schema::{decode, BlobId};
use super::{Changes, Store};

/// `created` of an entry the administrator returned to its sender (`gannet queue
/// bounce`): the runner bounces its recipients at once instead of delivering.
pub const RETURNED_BY_ADMIN: i64 = 0;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedMessage {
    pub id: u64,
    /// The reverse-path; empty for the null sender.
    pub reverse_path: String,
    pub recipients: Vec<QueuedRecipient>,
    pub blob: BlobId,
    /// Bytes at the start of the blob not to send (its local `Return-Path:` line).
    pub skip: u32,
    pub size: u64,
    pub created: i64,
    pub attempts: u32,
    pub next_attempt: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedRecipient {
    pub address: String,
    pub status: RecipientStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RecipientStatus {
    Queued,
    Delivered,
    Bounced,
}

impl RecipientStatus {
    /// One word: queued, delivered, bounced.
    pub fn label(self) -> &'static str {
        match self {
            RecipientStatus::Queued => "queued",
            RecipientStatus::Delivered => "delivered",
            RecipientStatus::Bounced => "bounced",
        }
    }
}

pub fn key(next_attempt: i64, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(16);
    k.extend_from_slice(&(next_attempt.max(0) as u64).to_be_bytes());
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// Every queued message, soonest due first.
pub fn list(store: &Store) -> Result<Vec<QueuedMessage>, StoreError> {
    let mut out = Vec::new();
    let mut error = None;
    store.kv().scan_prefix(Cf::Queue, b"", &mut |_, v| {
        match decode::<QueuedMessage>(Cf::Queue, v) {
            Ok(m) => out.push(m),
            Err(e) => error = Some(e),
        }
        error.is_none()
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The queued message with this id.
pub fn find(store: &Store, id: u64) -> Result<Option<QueuedMessage>, StoreError> {
    Ok(list(store)?.into_iter().find(|m| m.id == id))
}

/// Replaces the entry `old` with `new` (the same message, changed: its key moves with its
/// due time), unless `old` left the queue meanwhile.
pub fn rewrite(old: &QueuedMessage, new: &QueuedMessage) -> Changes {
    let mut changes = Changes::new();
    changes.requeue(old, new);
    changes
}

/// Drops `message` from the queue (and its hold on the blob).
pub fn remove(message: &QueuedMessage) -> Changes {
    let mut changes = Changes::new();
    changes.dequeue(message);
    changes
}

/// Entries due at `now`, soonest first (the queue is keyed by due time), at most `limit`.
pub fn due(store: &Store, now: i64, limit: usize) -> Result<Vec<QueuedMessage>, StoreError> {
    let mut out = Vec::new();
    store.kv().scan_prefix(Cf::Queue, b"", &mut |k, v| {
        let due_at = k
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u64::from_be_bytes) as i64;
        if due_at > now {
            return false;
        }
        if let Ok(m) = decode::<QueuedMessage>(Cf::Queue, v) {
            out.push(m);
        }
        out.len() < limit
    })?;
    Ok(out)
}
