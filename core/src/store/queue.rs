//! The outbound queue: messages for remote recipients, waiting for delivery.
//!
//! Key: next attempt (Unix seconds, big-endian) then queue id, so a scan from the start
//! finds what is due first. The message itself is a blob shared with local copies.

use serde::{Deserialize, Serialize};

use super::kv::{Cf, StoreError};
use super::schema::{decode, encode, keys, BlobId};
use super::{Batch, Store};

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

/// The batch that replaces the entry `old` with `new` (the same message, changed: its
/// key moves with its due time).
pub fn rewrite(old: &QueuedMessage, new: &QueuedMessage) -> Batch {
    let mut batch = Batch::new();
    batch.delete(Cf::Queue, key(old.next_attempt, old.id));
    batch.put(Cf::Queue, key(new.next_attempt, new.id), encode(new));
    batch
}

/// The batch that drops `message` from the queue (and its hold on the blob).
pub fn remove(message: &QueuedMessage) -> Batch {
    let mut batch = Batch::new();
    batch.delete(Cf::Queue, key(message.next_attempt, message.id));
    batch.add(Cf::Counters, keys::blob_refs(&message.blob), -1);
    batch
}
