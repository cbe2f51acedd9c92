//! Reading mailboxes: the messages of a mailbox in UID order, and message bytes.

use super::kv::{Cf, StoreError};
use super::listings::{Listing, Version};
use super::schema::{decode, keys, BlobId, MailEntry, MailboxMeta};
use super::summary::{header_block, Summary};
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

/// The names of an account's subscriptions whose mailbox was deleted (RFC 9051 6.3.7).
pub fn lost_subscriptions(store: &Store, account: u32) -> Result<Vec<String>, StoreError> {
    let prefix = keys::lost_subscriptions_of(account);
    let mut out = Vec::new();
    store.kv().scan_prefix(Cf::Accounts, &prefix, &mut |k, _| {
        out.push(String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default()).into_owned());
        true
    })?;
    Ok(out)
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

/// The messages of `meta`'s mailbox as they are at `meta`'s version: from memory when
/// this state was read before ([`super::listings`]), else from the store (and kept).
pub fn listing(store: &Store, account: u32, meta: &MailboxMeta) -> Result<Listing, StoreError> {
    let cache = store.listings();
    let version = Version::of(meta);
    if let Some(held) = cache.get(account, meta.id, version) {
        return Ok(held);
    }
    let generation = cache.generation();
    let fresh: Listing = match list(store, account, meta.id) {
        Ok(fresh) => Listing::from_vec(fresh),
        Err(e) => {
            cache.abandon(account, meta.id);
            return Err(e);
        }
    };
    cache.put(account, meta.id, version, generation, fresh.clone());
    Ok(fresh)
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

/// A message's header block ([`super::summary`]) if its summary is stored; `None` when it
/// has none (read the blob instead).
pub fn header(store: &Store, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
    store
        .kv()
        .get(Cf::Headers, &keys::blob(id))?
        .map(|raw| Summary::from_stored(raw).map(|s| s.header))
        .transpose()
}

/// A message's header block if it is in memory: `Some(Some(_))` found, `Some(None)` the
/// message has no summary, `None` reading it needs the disk.
pub fn header_cached(store: &Store, id: &BlobId) -> Option<Option<Vec<u8>>> {
    match store.kv().get_cached(Cf::Headers, &keys::blob(id)) {
        Ok(Some(Some(raw))) => Summary::from_stored(raw).ok().map(|s| Some(s.header)),
        Ok(Some(None)) => Some(None),
        _ => None,
    }
}

/// What IMAP reads for a header-only command: the message's header block from its
/// summary; for a message stored without one, the header block cut from its blob; the
/// whole blob where the header has no block of its own ([`super::summary::header_block`]).
/// `None`: no such message.
pub fn header_or_message(store: &Store, id: &BlobId) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(header) = header(store, id)? {
        return Ok(Some(header));
    }
    Ok(blob(store, id)?.map(|raw| match header_block(&raw) {
        Some(block) => block.to_vec(),
        None => raw,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::WriteOp;
    use crate::store::Changes;

    #[test]
    fn headers_come_from_the_summary_or_the_blob() {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        let mut c = Changes::new();
        let with = c.store_blob(b"Subject: a\r\n\r\nbody\r\n".to_vec());
        let odd = c.store_blob(b"Subject: b\n\nbody\r\n\r\nmore".to_vec());
        store.commit_blocking(c).unwrap();
        assert_eq!(
            header_or_message(store, &with).unwrap().as_deref(),
            Some(&b"Subject: a\r\n\r\n"[..])
        );
        // No block of its own: the whole message.
        assert_eq!(header(store, &odd).unwrap(), None);
        assert_eq!(
            header_or_message(store, &odd).unwrap().as_deref(),
            Some(&b"Subject: b\n\nbody\r\n\r\nmore"[..])
        );
        // A message stored before summaries: the block is cut from the blob.
        let old = *blake3::hash(b"old").as_bytes();
        store
            .exclusive(move |kv| {
                kv.write(
                    &[WriteOp::Put {
                        cf: Cf::Blobs,
                        key: keys::blob(&old),
                        value: b"Subject: old\r\n\r\nbody".to_vec(),
                    }],
                    true,
                )
                .unwrap();
            })
            .unwrap();
        assert_eq!(header(store, &old).unwrap(), None);
        assert_eq!(
            header_or_message(store, &old).unwrap().as_deref(),
            Some(&b"Subject: old\r\n\r\n"[..])
        );
        assert_eq!(header_or_message(store, &[9; 32]).unwrap(), None);
    }
}
