//! Reading mailboxes: the messages of a mailbox in UID order, and message bytes.

use super::kv::{Cf, StoreError};
use super::schema::{decode, keys, BlobId, MailEntry, MailboxMeta};
use super::Store;

pub fn mailbox(store: &Store, account: u32, name: &str) -> Result<Option<MailboxMeta>, StoreError> {
    store
        .kv()
        .get(Cf::Mailboxes, &keys::mailbox(account, name))?
        .map(|raw| decode(Cf::Mailboxes, &raw))
        .transpose()
}

/// An account's mailboxes by name.
pub fn mailboxes(store: &Store, account: u32) -> Result<Vec<(String, MailboxMeta)>, StoreError> {
    let mut out = Vec::new();
    let mut error = None;
    let prefix = keys::mailboxes_of(account);
    store
        .kv()
        .scan_prefix(Cf::Mailboxes, &prefix, &mut |k, v| {
            match decode::<MailboxMeta>(Cf::Mailboxes, v) {
                Ok(meta) => out.push((
                    String::from_utf8_lossy(&k[prefix.len()..]).into_owned(),
                    meta,
                )),
                Err(e) => error = Some(e),
            }
            error.is_none()
        })?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// The messages of a mailbox, in UID order.
pub fn list(
    store: &Store,
    account: u32,
    mailbox_id: u32,
) -> Result<Vec<(u32, MailEntry)>, StoreError> {
    let mut out = Vec::new();
    let mut error = None;
    store.kv().scan_prefix(
        Cf::Mail,
        &keys::mail_of(account, mailbox_id),
        &mut |k, v| {
            match (keys::uid_of_mail_key(k), decode::<MailEntry>(Cf::Mail, v)) {
                (Some(uid), Ok(entry)) => out.push((uid, entry)),
                (_, Err(e)) => error = Some(e),
                (None, _) => {}
            }
            error.is_none()
        },
    )?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

pub fn entry(
    store: &Store,
    account: u32,
    mailbox_id: u32,
    uid: u32,
) -> Result<Option<MailEntry>, StoreError> {
    store
        .kv()
        .get(Cf::Mail, &keys::mail(account, mailbox_id, uid))?
        .map(|raw| decode(Cf::Mail, &raw))
        .transpose()
}

pub fn blob(store: &Store, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
    store.kv().get(Cf::Blobs, &keys::blob(id))
}

/// A message's bytes if they are in memory; `None` when reading them needs the disk.
pub fn blob_cached(store: &Store, id: &BlobId) -> Option<Option<Vec<u8>>> {
    store
        .kv()
        .get_cached(Cf::Blobs, &keys::blob(id))
        .ok()
        .flatten()
}
