//! The integrity check (`gannet check [--repair]`): walks the whole store and compares
//! what the counters say with what the records are.
//!
//! * every mail entry's mailbox exists and its blob exists;
//! * every blob's reference count equals the entries, queued and held messages that use it;
//! * every message summary (`Cf::Headers`) belongs to a blob in use;
//! * each account's usage equals the sum of its messages' sizes;
//! * every UID is below its mailbox's next UID.
//!
//! It runs on the commit thread between two groups ([`Store::exclusive`]), so it sees one
//! consistent state even on a running server. `repair` rebuilds the counters from the
//! records, moves next UIDs past the highest UID, drops entries of mailboxes that no
//! longer exist, and blobs and summaries nothing refers to. A message whose blob is missing cannot be
//! repaired: it is reported and kept.

use std::collections::{BTreeMap, HashMap};

use super::kv::{decode_counter, Cf, KvStore, StoreError, WriteOp};
use super::quarantine::HeldMessage;
use super::queue::QueuedMessage;
use super::schema::{decode, encode, keys, BlobId, MailEntry, MailboxMeta};
use super::Store;

/// What the check found (and, with repair, fixed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub mailboxes: u64,
    pub messages: u64,
    pub queued: u64,
    /// Messages in the quarantine.
    pub held: u64,
    pub blobs: u64,
    /// One line per inconsistency that repair can fix.
    pub repairable: Vec<String>,
    /// One line per inconsistency it cannot (a message whose body is gone).
    pub unrepairable: Vec<String>,
    /// Whether the repairable ones were fixed.
    pub repaired: bool,
}

impl Report {
    pub fn is_consistent(&self) -> bool {
        self.repairable.is_empty() && self.unrepairable.is_empty()
    }
}

/// Checks the store; with `repair`, fixes what can be fixed in one synced write.
pub fn check(store: &Store, repair: bool) -> Result<Report, StoreError> {
    store.exclusive(move |kv| run(kv, repair))?
}

/// A blob's short name in the report: its first 8 bytes in hex.
fn hex(blob: &BlobId) -> String {
    crate::secret::hex(blob.get(..8).unwrap_or(blob))
}

/// Scans a whole family, decoding each value.
fn scan<T: serde::de::DeserializeOwned>(
    kv: &dyn KvStore,
    cf: Cf,
    prefix: &[u8],
    mut visit: impl FnMut(&[u8], T),
) -> Result<(), StoreError> {
    let mut error = None;
    kv.scan_prefix(cf, prefix, &mut |k, v| {
        match decode::<T>(cf, v) {
            Ok(value) => visit(k, value),
            Err(e) => error = Some(e),
        }
        error.is_none()
    })?;
    error.map_or(Ok(()), Err)
}

fn run(kv: &dyn KvStore, repair: bool) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let mut fixes: Vec<WriteOp> = Vec::new();
    // Mailboxes by (account, id): name and record.
    let mut mailboxes: HashMap<(u32, u32), (String, MailboxMeta)> = HashMap::new();
    scan::<MailboxMeta>(kv, Cf::Mailboxes, b"", |k, meta| {
        let account = k
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        let name = String::from_utf8_lossy(k.get(4..).unwrap_or_default()).into_owned();
        mailboxes.insert((account, meta.id), (name, meta));
    })?;
    report.mailboxes = mailboxes.len() as u64;

    let mut refs: HashMap<BlobId, i64> = HashMap::new();
    let mut usage: BTreeMap<u32, i64> = BTreeMap::new();
    let mut highest_uid: HashMap<(u32, u32), u32> = HashMap::new();
    let mut orphans = Vec::new();
    scan::<MailEntry>(kv, Cf::Mail, b"", |k, entry| {
        let account = k
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        let mailbox = k
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes);
        let uid = keys::uid_of_mail_key(k).unwrap_or(0);
        if !mailboxes.contains_key(&(account, mailbox)) {
            orphans.push((k.to_vec(), account, mailbox, uid));
            return;
        }
        report.messages += 1;
        *refs.entry(entry.blob).or_default() += 1;
        *usage.entry(account).or_default() += entry.size as i64;
        let high = highest_uid.entry((account, mailbox)).or_default();
        *high = (*high).max(uid);
    })?;
    for (key, account, mailbox, uid) in orphans {
        report.repairable.push(format!(
            "account {account}: message {uid} of mailbox id {mailbox}, which no longer exists"
        ));
        fixes.push(WriteOp::Delete { cf: Cf::Mail, key });
    }
    scan::<QueuedMessage>(kv, Cf::Queue, b"", |_, queued| {
        report.queued += 1;
        *refs.entry(queued.blob).or_default() += 1;
    })?;
    scan::<HeldMessage>(kv, Cf::Quarantine, b"", |_, held| {
        report.held += 1;
        *refs.entry(held.blob).or_default() += 1;
    })?;

    // Next UIDs.
    for ((account, id), high) in &highest_uid {
        let Some((name, meta)) = mailboxes.get(&(*account, *id)) else {
            continue;
        };
        if *high >= meta.uidnext {
            report.repairable.push(format!(
                "account {account}: mailbox {name} holds UID {high} but its next UID is {}",
                meta.uidnext
            ));
            let mut fixed = meta.clone();
            fixed.uidnext = high + 1;
            fixes.push(WriteOp::Put {
                cf: Cf::Mailboxes,
                key: keys::mailbox(*account, name),
                value: encode(&fixed),
            });
        }
    }

    // Blob reference counts, as counted against as stored.
    let mut counted: HashMap<BlobId, i64> = HashMap::new();
    kv.scan_prefix(Cf::Counters, b"blobref:", &mut |k, v| {
        if let Some(id) = k.get(8..).and_then(|b| BlobId::try_from(b).ok()) {
            counted.insert(id, decode_counter(v));
        }
        true
    })?;
    let mut blobs: Vec<&BlobId> = refs.keys().chain(counted.keys()).collect();
    blobs.sort();
    blobs.dedup();
    for blob in blobs {
        let actual = refs.get(blob).copied().unwrap_or(0);
        let stored = counted.get(blob).copied().unwrap_or(0);
        let exists = kv.get(Cf::Blobs, &keys::blob(blob))?.is_some();
        if actual > 0 {
            report.blobs += 1;
            if !exists {
                report.unrepairable.push(format!(
                    "blob {}: used by {actual} message(s) but missing: their bodies are lost",
                    hex(blob)
                ));
            }
        }
        if actual == stored && (actual > 0 || !exists) {
            continue;
        }
        report.repairable.push(format!(
            "blob {}: reference count {stored}, referred to {actual} time(s)",
            hex(blob)
        ));
        if actual > 0 {
            fixes.push(WriteOp::Put {
                cf: Cf::Counters,
                key: keys::blob_refs(blob),
                value: actual.to_le_bytes().to_vec(),
            });
        } else {
            fixes.push(WriteOp::Delete {
                cf: Cf::Counters,
                key: keys::blob_refs(blob),
            });
            fixes.push(WriteOp::Delete {
                cf: Cf::Blobs,
                key: keys::blob(blob),
            });
        }
    }

    // Summaries: one whose blob nothing uses goes (the blob goes too, above). A used
    // blob without a summary is fine: its readers read the blob.
    let mut orphan_summaries = Vec::new();
    kv.scan_prefix(Cf::Headers, b"", &mut |k, _| {
        let used = BlobId::try_from(k)
            .ok()
            .is_some_and(|id| refs.get(&id).is_some_and(|n| *n > 0));
        if !used {
            orphan_summaries.push(k.to_vec());
        }
        true
    })?;
    for key in orphan_summaries {
        let name = BlobId::try_from(&key[..]).map_or_else(|_| "?".to_string(), |id| hex(&id));
        report
            .repairable
            .push(format!("summary {name}: its blob is used by no message"));
        fixes.push(WriteOp::Delete {
            cf: Cf::Headers,
            key,
        });
    }

    // Usage per account.
    let mut stored_usage: BTreeMap<u32, i64> = BTreeMap::new();
    kv.scan_prefix(Cf::Counters, b"usage:", &mut |k, v| {
        if let Some(account) = k.get(6..).and_then(|b| b.try_into().ok()) {
            stored_usage.insert(u32::from_be_bytes(account), decode_counter(v));
        }
        true
    })?;
    let accounts: std::collections::BTreeSet<u32> =
        usage.keys().chain(stored_usage.keys()).copied().collect();
    for account in accounts {
        let actual = usage.get(&account).copied().unwrap_or(0);
        let stored = stored_usage.get(&account).copied().unwrap_or(0);
        if actual != stored {
            report.repairable.push(format!(
                "account {account}: usage {stored} bytes, its messages take {actual}"
            ));
            fixes.push(WriteOp::Put {
                cf: Cf::Counters,
                key: keys::usage(account),
                value: actual.to_le_bytes().to_vec(),
            });
        }
    }

    if repair && !fixes.is_empty() {
        kv.write(&fixes, true)?;
        report.repaired = true;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Changes, Folder, NewMail};

    #[test]
    fn a_consistent_store_passes_and_a_damaged_one_is_repaired() {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        let mut c = Changes::new();
        c.create_mailbox(3, "INBOX", None, 0);
        store.commit_blocking(c).unwrap();
        for body in [&b"one"[..], b"two", b"two"] {
            let mut c = Changes::new();
            let blob = c.store_blob(body.to_vec());
            let mail = NewMail::arrived(blob, body.len() as u64, 0);
            c.append(3, Folder::inbox(), mail);
            store.commit_blocking(c).unwrap();
        }
        let report = check(store, false).unwrap();
        assert!(report.is_consistent(), "{report:?}");
        assert_eq!((report.messages, report.blobs), (3, 2));

        // Damage: a usage counter off, a blob count off, a next UID rolled back.
        let mut damage = Changes::new();
        damage.add(Cf::Counters, keys::usage(3), 100);
        damage.add(
            Cf::Counters,
            keys::blob_refs(blake3::hash(b"two").as_bytes()),
            1,
        );
        store.commit_blocking(damage).unwrap();
        store
            .exclusive(|kv| {
                let raw = kv
                    .get(Cf::Mailboxes, &keys::mailbox(3, "INBOX"))
                    .unwrap()
                    .unwrap();
                let mut meta: MailboxMeta = decode(Cf::Mailboxes, &raw).unwrap();
                meta.uidnext = 2;
                kv.write(
                    &[WriteOp::Put {
                        cf: Cf::Mailboxes,
                        key: keys::mailbox(3, "INBOX"),
                        value: encode(&meta),
                    }],
                    true,
                )
                .unwrap();
            })
            .unwrap();
        let report = check(store, false).unwrap();
        assert_eq!(report.repairable.len(), 3, "{report:?}");
        assert!(!report.repaired);
        let repaired = check(store, true).unwrap();
        assert!(repaired.repaired);
        let after = check(store, false).unwrap();
        assert!(after.is_consistent(), "{after:?}");
        // The next message gets a UID past the highest.
        let mut c = Changes::new();
        c.append(
            3,
            Folder::inbox(),
            NewMail::arrived(*blake3::hash(b"one").as_bytes(), 3, 0),
        );
        assert_eq!(store.commit_blocking(c).unwrap().uids, [4]);
    }

    #[test]
    fn summaries_go_with_their_blob_and_orphans_are_repaired() {
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        let mut c = Changes::new();
        c.create_mailbox(3, "INBOX", None, 0);
        store.commit_blocking(c).unwrap();
        let body = b"Subject: kept\r\n\r\nbody\r\n";
        let mut c = Changes::new();
        let blob = c.store_blob(body.to_vec());
        let mail = NewMail::arrived(blob, body.len() as u64, 0);
        c.append(3, Folder::inbox(), mail);
        store.commit_blocking(c).unwrap();
        // Written in the blob's commit.
        assert_eq!(
            crate::store::mail::header(store, &blob).unwrap().as_deref(),
            Some(&b"Subject: kept\r\n\r\n"[..])
        );
        assert!(check(store, false).unwrap().is_consistent());

        // A summary whose blob is gone is reported and deleted.
        let orphan = *blake3::hash(b"gone").as_bytes();
        store
            .exclusive(move |kv| {
                kv.write(
                    &[WriteOp::Put {
                        cf: Cf::Headers,
                        key: keys::blob(&orphan),
                        value: crate::store::summary::Summary {
                            header: b"Subject: x\r\n\r\n".to_vec(),
                        }
                        .encode(),
                    }],
                    true,
                )
                .unwrap();
            })
            .unwrap();
        let report = check(store, false).unwrap();
        assert_eq!(report.repairable.len(), 1, "{report:?}");
        assert!(report.repairable[0].starts_with("summary "));
        assert!(check(store, true).unwrap().repaired);
        assert!(check(store, false).unwrap().is_consistent());
        assert_eq!(crate::store::mail::header(store, &orphan).unwrap(), None);
        assert!(crate::store::mail::header(store, &blob).unwrap().is_some());

        // Expunged: the summary goes in the write that deletes the blob.
        let mut c = Changes::new();
        let inbox = crate::store::mail::mailbox(store, 3, "INBOX")
            .unwrap()
            .unwrap();
        c.expunge(3, inbox.id, vec![1], false);
        store.commit_blocking(c).unwrap();
        assert_eq!(crate::store::mail::blob(store, &blob).unwrap(), None);
        assert_eq!(crate::store::mail::header(store, &blob).unwrap(), None);
        assert!(check(store, false).unwrap().is_consistent());
    }
}
