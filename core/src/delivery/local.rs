//! What one accepted message writes to the store.
//!
//! One blob (the message with its trace headers, keyed by content hash), one INBOX entry
//! per distinct local account, one outbound queue entry for all remote recipients, the
//! blob's reference count and each account's usage, all in one batch: the message is
//! stored whole or not at all.

use crate::smtp::Envelope;
use crate::store::queue::{self, QueuedMessage, QueuedRecipient, RecipientStatus};
use crate::store::schema::{encode, keys, BlobId, MailEntry};
use crate::store::{Batch, Cf};

/// The batch that stores `message` for every recipient of `envelope`.
pub fn delivery_batch(envelope: &Envelope, message: Vec<u8>) -> Batch {
    let blob: BlobId = *blake3::hash(&message).as_bytes();
    let size = message.len() as u64;
    let mut accounts: Vec<u32> = envelope
        .recipients
        .iter()
        .filter_map(|r| r.account)
        .collect();
    accounts.sort_unstable();
    accounts.dedup();
    let remote: Vec<QueuedRecipient> = envelope
        .recipients
        .iter()
        .filter(|r| r.account.is_none())
        .map(|r| QueuedRecipient {
            address: r.address.clone(),
            status: RecipientStatus::Queued,
        })
        .collect();
    // The queued copy is sent without the Return-Path line that local delivery adds.
    let skip = if message.starts_with(b"Return-Path:") {
        memchr::memmem::find(&message, b"\r\n").map_or(0, |i| i + 2) as u32
    } else {
        0
    };
    let references = accounts.len() + usize::from(!remote.is_empty());
    let mut batch = Batch::new();
    batch.put(Cf::Blobs, keys::blob(&blob), message);
    batch.add(Cf::Counters, keys::blob_refs(&blob), references as i64);
    for &account in &accounts {
        batch.append_mail(
            account,
            "INBOX",
            MailEntry {
                blob,
                size,
                internal_date: envelope.received_at,
                flags: 0,
                keywords: Vec::new(),
                modseq: 0,
                spam_score: None,
            },
        );
        batch.add(Cf::Counters, keys::usage(account), size as i64);
    }
    if !remote.is_empty() {
        let queued = QueuedMessage {
            id: envelope.id,
            reverse_path: envelope.reverse_path.clone(),
            recipients: remote,
            blob,
            skip,
            size: size - u64::from(skip),
            created: envelope.received_at,
            attempts: 0,
            next_attempt: envelope.received_at,
            last_error: None,
        };
        batch.put(
            Cf::Queue,
            queue::key(queued.next_attempt, queued.id),
            encode(&queued),
        );
        batch.add(Cf::Counters, keys::stat("messages_queued"), 1);
    }
    batch.add(Cf::Counters, keys::stat("messages_accepted"), 1);
    batch
}
