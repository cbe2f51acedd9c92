//! The quarantine: messages held because of a virus or a forbidden attachment, kept whole
//! and once (one blob), with each recipient's fate, until they expire.
//!
//! Key: the entry's id (big-endian). Holding, releasing and deleting are operations of the
//! mail store ([`super::Changes::hold`], [`super::Changes::release`],
//! [`super::Changes::drop_held`]): the commit thread applies them to the entry as it is
//! when they commit, so a message is released once however many times its link is
//! clicked, and a release racing a purge either delivers or finds it gone.

use serde::{Deserialize, Serialize};

use super::kv::{Cf, StoreError};
use super::schema::{decode, BlobId};
use super::Store;

/// A held message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeldMessage {
    pub id: u64,
    /// The message as received (its local Return-Path line included).
    pub blob: BlobId,
    pub size: u64,
    pub reverse_path: String,
    pub subject: String,
    /// Why it is held: a virus name, or an attachment and the rule it broke.
    pub reason: String,
    pub arrived: i64,
    pub expires: i64,
    pub recipients: Vec<HeldRecipient>,
}

impl HeldMessage {
    /// Whether `address` (in any case) is one of its recipients: the filter of the
    /// quarantine list in the CLI, the console and the API.
    pub fn is_for(&self, address: &str) -> bool {
        self.recipients
            .iter()
            .any(|r| r.address.eq_ignore_ascii_case(address))
    }
}

impl HeldStatus {
    /// One word: held, released, deleted.
    pub fn label(&self) -> &'static str {
        match self {
            HeldStatus::Held => "held",
            HeldStatus::Released { .. } => "released",
            HeldStatus::Deleted { .. } => "deleted",
        }
    }
}

/// One recipient of a held message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldRecipient {
    pub address: String,
    /// The local account, or None for a scan-relay recipient (released by forwarding).
    pub account: Option<u32>,
    pub status: HeldStatus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HeldStatus {
    Held,
    /// Released at this time, by whom ("link" or "admin").
    Released {
        at: i64,
        by: String,
    },
    /// Deleted for this recipient (the release page's "delete").
    Deleted {
        at: i64,
        by: String,
    },
}

pub(super) fn key(id: u64) -> Vec<u8> {
    id.to_be_bytes().to_vec()
}

/// Every held message, in id order.
pub fn list(store: &Store) -> Result<Vec<HeldMessage>, StoreError> {
    let mut out = Vec::new();
    let mut error = None;
    store.kv().scan_prefix(Cf::Quarantine, b"", &mut |_, v| {
        match decode::<HeldMessage>(Cf::Quarantine, v) {
            Ok(m) => out.push(m),
            Err(e) => error = Some(e),
        }
        error.is_none()
    })?;
    error.map_or(Ok(out), Err)
}

/// The held message with this id.
pub fn find(store: &Store, id: u64) -> Result<Option<HeldMessage>, StoreError> {
    store
        .kv()
        .get(Cf::Quarantine, &key(id))?
        .map(|raw| decode(Cf::Quarantine, &raw))
        .transpose()
}
