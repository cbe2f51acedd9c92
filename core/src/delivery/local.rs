//! Local delivery: what one accepted message writes to the store.
//!
//! One blob (the message with its trace headers, keyed by content hash), one INBOX entry
//! per distinct local account, the blob's reference count and each account's usage, all
//! in one batch so that the message is stored whole or not at all.

use crate::smtp::Envelope;
use crate::store::schema::{keys, BlobId, MailEntry};
use crate::store::{Batch, Cf};

/// The batch that stores `message` for every recipient of `envelope`.
pub fn delivery_batch(envelope: &Envelope, message: Vec<u8>) -> Batch {
    let blob: BlobId = *blake3::hash(&message).as_bytes();
    let size = message.len() as u64;
    let mut accounts: Vec<u32> = envelope.recipients.iter().map(|r| r.account).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let mut batch = Batch::new();
    batch.put(Cf::Blobs, keys::blob(&blob), message);
    batch.add(Cf::Counters, keys::blob_refs(&blob), accounts.len() as i64);
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
    batch.add(Cf::Counters, keys::stat("messages_accepted"), 1);
    batch
}
