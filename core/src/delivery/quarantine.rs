//! Holding a message in the quarantine, telling its recipients, and releasing it.
//!
//! * [`hold`]: the changes that keep a message whole (one blob) with its recipients and
//!   reason, and put a notice in each local recipient's INBOX (scan-relay recipients get
//!   theirs through the queue, like the rest of their mail).
//! * [`ReleaseKey`], [`token`], [`verify`]: each notice's release link carries a token
//!   bound to the message, the recipient and the expiry, an HMAC-SHA256 under a key kept
//!   in the data directory (nothing to look up, nothing to guess: 128 bits of MAC).
//! * [`release`]: the changes that deliver the original to one recipient, once.

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use base64::Engine;
use ring::hmac;

use crate::smtp::{format_rfc5322_date, Envelope};
use crate::store::quarantine::{self, HeldMessage, HeldRecipient, HeldStatus};
use crate::store::queue::{QueuedMessage, QueuedRecipient, RecipientStatus};
use crate::store::{mail, Changes, Folder, NewMail, Store, StoreError};

/// The key that signs release links; 32 random bytes in `quarantine.key`.
pub struct ReleaseKey(hmac::Key);

impl ReleaseKey {
    /// Loads the key from `dir`, creating it (readable by its owner only) on first use.
    pub fn load_or_create(dir: &Path) -> std::io::Result<ReleaseKey> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("quarantine.key");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() == 32 => bytes,
            Ok(_) => {
                return Err(std::io::Error::other(format!(
                    "{} is not a 32-byte key",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = vec![0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                    .map_err(|_| std::io::Error::other("no randomness for the release key"))?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)?;
                file.write_all(&bytes)?;
                file.sync_all()?;
                bytes
            }
            Err(e) => return Err(e),
        };
        Ok(ReleaseKey::from_bytes(&bytes))
    }

    pub fn from_bytes(bytes: &[u8]) -> ReleaseKey {
        ReleaseKey(hmac::Key::new(hmac::HMAC_SHA256, bytes))
    }
}

/// Bytes of the MAC kept in a token.
const MAC_BYTES: usize = 16;

fn signed(id: u64, recipient: u16, expires: i64) -> [u8; 18] {
    let mut out = [0u8; 18];
    out[..8].copy_from_slice(&id.to_be_bytes());
    out[8..10].copy_from_slice(&recipient.to_be_bytes());
    out[10..].copy_from_slice(&expires.to_be_bytes());
    out
}

/// The release token of recipient `recipient` of held message `id`.
pub fn token(key: &ReleaseKey, id: u64, recipient: usize, expires: i64) -> String {
    let recipient = u16::try_from(recipient).unwrap_or(u16::MAX);
    let data = signed(id, recipient, expires);
    let tag = hmac::sign(&key.0, &data);
    let mut raw = data.to_vec();
    raw.extend_from_slice(tag.as_ref().get(..MAC_BYTES).unwrap_or_default());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}

/// Why a release link does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("this link is not valid")]
    Invalid,
    #[error("this link has expired, and the message with it")]
    Expired,
}

/// The message and recipient a token names, if it is genuine and not expired at `now`.
pub fn verify(key: &ReleaseKey, token: &str, now: i64) -> Result<(u64, usize), TokenError> {
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.as_bytes())
        .map_err(|_| TokenError::Invalid)?;
    if raw.len() != 18 + MAC_BYTES {
        return Err(TokenError::Invalid);
    }
    let (data, mac) = raw.split_at(18);
    let expected = hmac::sign(&key.0, data);
    let expected = expected.as_ref().get(..MAC_BYTES).unwrap_or_default();
    // Constant time: the MAC is compared whole, whatever the first difference.
    if expected.len() != mac.len()
        || expected
            .iter()
            .zip(mac)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            != 0
    {
        return Err(TokenError::Invalid);
    }
    let field = |range: std::ops::Range<usize>| data.get(range).unwrap_or_default();
    let id = u64::from_be_bytes(field(0..8).try_into().map_err(|_| TokenError::Invalid)?);
    let recipient = u16::from_be_bytes(field(8..10).try_into().map_err(|_| TokenError::Invalid)?);
    let expires = i64::from_be_bytes(field(10..18).try_into().map_err(|_| TokenError::Invalid)?);
    if now >= expires {
        return Err(TokenError::Expired);
    }
    Ok((id, usize::from(recipient)))
}

/// Where release links point: `https://HOST:PORT` (no trailing slash).
#[derive(Debug, Clone)]
pub struct Links {
    pub public_url: String,
}

impl Links {
    pub fn release(&self, token: &str) -> String {
        format!(
            "{}/quarantine/{token}",
            self.public_url.trim_end_matches('/')
        )
    }
}

/// Ids of notices and released copies in the queue: the worker field's top value, which
/// no worker uses (DSNs use 0xff).
fn next_queue_id(now: i64) -> u64 {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    (now as u64) << 32 | 0xfe << 24 | u64::from(seq & 0xff_ffff)
}

/// The Subject header's value, unfolded, for the notice (at most 200 characters).
fn subject_of(message: &[u8]) -> String {
    crate::mime::header_value(message, "Subject")
        .map(|s| s.chars().take(200).collect())
        .unwrap_or_default()
}

/// What one hold says: the message, why, and until when.
pub struct Hold<'a> {
    pub envelope: &'a Envelope,
    /// The message as received (its Return-Path line first).
    pub message: Vec<u8>,
    pub reason: String,
    pub now: i64,
    pub retention_secs: i64,
    pub hostname: &'a str,
}

/// The changes that hold a message for its local and scan-relay recipients (the others
/// are not held) and give each of them a notice with their release link.
pub fn hold(hold: Hold<'_>, key: &ReleaseKey, links: &Links) -> Changes {
    let envelope = hold.envelope;
    let mut changes = Changes::new();
    let expires = hold.now + hold.retention_secs;
    let recipients: Vec<HeldRecipient> = envelope
        .recipients
        .iter()
        .filter(|r| r.account.is_some() || r.scan)
        .map(|r| HeldRecipient {
            address: r.address.clone(),
            account: r.account,
            status: HeldStatus::Held,
        })
        .collect();
    let held = HeldMessage {
        id: envelope.id,
        blob: *blake3::hash(&hold.message).as_bytes(),
        size: hold.message.len() as u64,
        reverse_path: envelope.reverse_path.clone(),
        subject: subject_of(&hold.message),
        reason: hold.reason,
        arrived: hold.now,
        expires,
        recipients,
    };
    changes.store_blob(hold.message);
    for (index, recipient) in held.recipients.iter().enumerate() {
        let link = links.release(&token(key, held.id, index, expires));
        let notice = notice(hold.hostname, &held, recipient, &link, hold.now);
        let size = notice.len() as u64;
        let blob = *blake3::hash(&notice).as_bytes();
        match recipient.account {
            Some(account) => {
                changes.store_blob(notice);
                changes.append(
                    account,
                    Folder::inbox(),
                    NewMail::arrived(blob, size, hold.now),
                );
            }
            None => {
                changes.store_blob(notice);
                changes.enqueue(&queued(
                    next_queue_id(hold.now),
                    "",
                    &recipient.address,
                    blob,
                    size,
                    0,
                    hold.now,
                ));
            }
        }
    }
    changes.hold(&held);
    changes
}

fn queued(
    id: u64,
    reverse_path: &str,
    to: &str,
    blob: crate::store::schema::BlobId,
    size: u64,
    skip: u32,
    now: i64,
) -> QueuedMessage {
    QueuedMessage {
        id,
        reverse_path: reverse_path.to_string(),
        recipients: vec![QueuedRecipient {
            address: to.to_string(),
            status: RecipientStatus::Queued,
        }],
        blob,
        skip,
        size: size - u64::from(skip),
        created: now,
        attempts: 0,
        next_attempt: now,
        last_error: None,
    }
}

/// The notice for one recipient of a held message.
pub fn notice(
    hostname: &str,
    held: &HeldMessage,
    recipient: &HeldRecipient,
    link: &str,
    now: i64,
) -> Vec<u8> {
    let sender = if held.reverse_path.is_empty() {
        "<> (the null sender)".to_string()
    } else {
        format!("<{}>", held.reverse_path)
    };
    let days = ((held.expires - held.arrived) + 86_399) / 86_400;
    let subject: String = held
        .subject
        .chars()
        .filter(|c| !c.is_control())
        .take(120)
        .collect();
    format!(
        "Return-Path: <>\r\n\
         From: Mail quarantine <postmaster@{hostname}>\r\n\
         To: <{to}>\r\n\
         Subject: A message to you is held in quarantine\r\n\
         Date: {date}\r\n\
         Message-ID: <quarantine.{id:016x}.{now}@{hostname}>\r\n\
         Auto-Submitted: auto-generated\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\
         Content-Transfer-Encoding: 8bit\r\n\
         \r\n\
         A message sent to you was held because it may be dangerous.\r\n\
         \r\n\
         From:     {sender}\r\n\
         Subject:  {subject}\r\n\
         Received: {arrived}\r\n\
         Held for: {reason}\r\n\
         \r\n\
         It is kept for {days} days, until {expires}, then deleted. Nothing is released\r\n\
         without you. If you know the sender and expect this message, you can look at\r\n\
         it and release it to your inbox here:\r\n\
         \r\n\
         {link}\r\n\
         \r\n\
         If you do not know the sender, do nothing: the message will be deleted.\r\n",
        to = recipient.address,
        date = format_rfc5322_date(now),
        id = held.id,
        arrived = format_rfc5322_date(held.arrived),
        reason = held.reason,
        expires = format_rfc5322_date(held.expires),
    )
    .into_bytes()
}

/// Why a release did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error("no such message in the quarantine (deleted, or expired)")]
    Gone,
    #[error("already released")]
    AlreadyReleased,
    #[error("its body is missing from the store")]
    NoBody,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The changes that deliver held message `id` to recipient `recipient` (`by`: "link" or
/// "admin"): the original with a header saying when and by whom it was released, into
/// the recipient's INBOX (or forwarded, for a scan-relay recipient). They commit only if
/// it is still held for that recipient.
pub fn release(
    store: &Store,
    id: u64,
    recipient: usize,
    by: &str,
    now: i64,
) -> Result<Changes, ReleaseError> {
    let held = quarantine::find(store, id)?.ok_or(ReleaseError::Gone)?;
    let who = held.recipients.get(recipient).ok_or(ReleaseError::Gone)?;
    if who.status != HeldStatus::Held {
        return Err(ReleaseError::AlreadyReleased);
    }
    let original = mail::blob(store, &held.blob)?.ok_or(ReleaseError::NoBody)?;
    // After the Return-Path line: the rest is the original as received, byte for byte.
    let at = memchr::memmem::find(&original, b"\r\n").map_or(0, |i| i + 2);
    let header = format!(
        "X-Quarantine-Released: {} by {by}\r\n",
        format_rfc5322_date(now)
    );
    let mut copy = Vec::with_capacity(original.len() + header.len());
    copy.extend_from_slice(original.get(..at).unwrap_or_default());
    copy.extend_from_slice(header.as_bytes());
    copy.extend_from_slice(original.get(at..).unwrap_or_default());
    let size = copy.len() as u64;
    let mut changes = Changes::new();
    let blob = changes.store_blob(copy);
    match who.account {
        Some(account) => changes.append(
            account,
            Folder::inbox(),
            NewMail::arrived(blob, size, held.arrived),
        ),
        None => {
            // The queued copy is sent without the local Return-Path line.
            let skip = if original.starts_with(b"Return-Path:") {
                at as u32
            } else {
                0
            };
            changes.enqueue(&queued(
                next_queue_id(now),
                &held.reverse_path,
                &who.address,
                blob,
                size,
                skip,
                now,
            ));
        }
    }
    changes.mark_released(id, recipient, now, by);
    let released = crate::store::trace::Event {
        at: now,
        message: id,
        kind: crate::store::trace::EventKind::Released { by: by.to_string() },
    };
    crate::store::trace::record(&mut changes, &released);
    Ok(changes)
}

/// The changes that remove every held message expired at `now`; how many.
pub fn purge(store: &Store, now: i64) -> Result<(Changes, usize), StoreError> {
    let mut changes = Changes::new();
    let mut n = 0;
    for held in quarantine::list(store)? {
        if held.expires <= now {
            changes.drop_held(held.id);
            n += 1;
        }
    }
    Ok((changes, n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_name_their_message_and_recipient_until_they_expire() {
        let key = ReleaseKey::from_bytes(&[7; 32]);
        let t = token(&key, 0x1234, 3, 1_000);
        assert!(t.len() >= 40, "{t}");
        assert_eq!(verify(&key, &t, 999), Ok((0x1234, 3)));
        assert_eq!(verify(&key, &t, 1_000), Err(TokenError::Expired));
        // Another key, a changed byte, garbage: not valid.
        let other = ReleaseKey::from_bytes(&[8; 32]);
        assert_eq!(verify(&other, &t, 0), Err(TokenError::Invalid));
        let mut bytes = t.clone().into_bytes();
        let last = bytes.len() - 2;
        bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(bytes).unwrap();
        assert_eq!(verify(&key, &forged, 0), Err(TokenError::Invalid));
        assert_eq!(verify(&key, "not a token", 0), Err(TokenError::Invalid));
        assert_eq!(verify(&key, "", 0), Err(TokenError::Invalid));
    }

    #[test]
    fn the_key_is_made_once_and_kept_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let a = ReleaseKey::load_or_create(dir.path()).unwrap();
        let b = ReleaseKey::load_or_create(dir.path()).unwrap();
        let t = token(&a, 1, 0, 10);
        assert_eq!(verify(&b, &t, 0), Ok((1, 0)));
        let mode = std::fs::metadata(dir.path().join("quarantine.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn held_once_released_once_purged_with_its_blob() {
        use crate::smtp::Recipient;
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        let mut c = Changes::new();
        c.create_mailbox(4, "INBOX", None, 0);
        store.commit_blocking(c).unwrap();
        let envelope = Envelope {
            id: 77,
            reverse_path: "bad@example.org".into(),
            recipients: vec![
                Recipient {
                    address: "alice@example.test".into(),
                    account: Some(4),
                    scan: false,
                },
                Recipient {
                    address: "far@customer.test".into(),
                    account: None,
                    scan: false,
                },
            ],
            body_8bit: false,
            smtputf8: false,
            received_at: 100,
            submitter: None,
            client_ip: None,
        };
        let message =
            b"Return-Path: <bad@example.org>\r\nSubject: invoice\r\n\r\nbody\r\n".to_vec();
        let key = ReleaseKey::from_bytes(&[1; 32]);
        let links = Links {
            public_url: "https://mx.example.test:8443".into(),
        };
        let changes = hold(
            Hold {
                envelope: &envelope,
                message: message.clone(),
                reason: "invoice.pdf.exe: double extension".into(),
                now: 100,
                retention_secs: 7 * 86_400,
                hostname: "mx.example.test",
            },
            &key,
            &links,
        );
        store.commit_blocking(changes).unwrap();
        let held = quarantine::find(store, 77).unwrap().unwrap();
        assert_eq!(
            held.recipients.len(),
            1,
            "only local and scan-relay recipients"
        );
        // The notice is in the INBOX, with a link that names this message and recipient.
        let inbox = mail::mailbox(store, 4, "INBOX").unwrap().unwrap();
        let entries = mail::list(store, 4, inbox.id).unwrap();
        assert_eq!(entries.len(), 1);
        let notice = mail::blob(store, &entries[0].1.blob).unwrap().unwrap();
        let text = String::from_utf8(notice).unwrap();
        assert!(text.contains("invoice.pdf.exe: double extension"), "{text}");
        let link = text
            .lines()
            .find(|l| l.starts_with("https://mx.example.test:8443/quarantine/"))
            .unwrap();
        let token = link.rsplit('/').next().unwrap();
        assert_eq!(verify(&key, token, 200), Ok((77, 0)));
        // Released once: the original after the Return-Path line, byte for byte.
        store
            .commit_blocking(release(store, 77, 0, "link", 300).unwrap())
            .unwrap();
        let entries = mail::list(store, 4, inbox.id).unwrap();
        assert_eq!(entries.len(), 2);
        let copy = mail::blob(store, &entries[1].1.blob).unwrap().unwrap();
        assert!(copy.ends_with(b"Subject: invoice\r\n\r\nbody\r\n"));
        assert!(String::from_utf8_lossy(&copy).contains("X-Quarantine-Released: "));
        assert!(matches!(
            release(store, 77, 0, "link", 301),
            Err(ReleaseError::AlreadyReleased)
        ));
        // Purge: nothing before expiry, the entry and its blob after.
        let (none, n) = purge(store, 1000).unwrap();
        assert_eq!(n, 0);
        store.commit_blocking(none).unwrap();
        let (all, n) = purge(store, 100 + 7 * 86_400).unwrap();
        assert_eq!(n, 1);
        store.commit_blocking(all).unwrap();
        assert!(quarantine::find(store, 77).unwrap().is_none());
        let original = *blake3::hash(&message).as_bytes();
        assert_eq!(mail::blob(store, &original).unwrap(), None);
    }

    #[test]
    fn a_release_prepared_twice_delivers_once() {
        use crate::smtp::Recipient;
        let owner = Store::open_in_memory().unwrap();
        let store = owner.store();
        let mut c = Changes::new();
        c.create_mailbox(4, "INBOX", None, 0);
        store.commit_blocking(c).unwrap();
        let envelope = Envelope {
            id: 5,
            reverse_path: String::new(),
            recipients: vec![Recipient {
                address: "alice@example.test".into(),
                account: Some(4),
                scan: false,
            }],
            body_8bit: false,
            smtputf8: false,
            received_at: 0,
            submitter: None,
            client_ip: None,
        };
        let key = ReleaseKey::from_bytes(&[1; 32]);
        let links = Links {
            public_url: "https://h".into(),
        };
        let held = hold(
            Hold {
                envelope: &envelope,
                message: b"Return-Path: <>\r\n\r\nx\r\n".to_vec(),
                reason: "virus".into(),
                now: 0,
                retention_secs: 100,
                hostname: "h",
            },
            &key,
            &links,
        );
        store.commit_blocking(held).unwrap();
        // Two clicks at once: both prepared while it is still held.
        let first = release(store, 5, 0, "link", 1).unwrap();
        let second = release(store, 5, 0, "link", 1).unwrap();
        let (a, b) = (store.submit(first), store.submit(second));
        let a = a.blocking_recv().unwrap();
        let b = b.blocking_recv().unwrap();
        assert!(a.is_ok() != b.is_ok(), "{a:?} {b:?}");
        let inbox = mail::mailbox(store, 4, "INBOX").unwrap().unwrap();
        assert_eq!(
            mail::list(store, 4, inbox.id).unwrap().len(),
            2,
            "notice + one copy"
        );
    }
}
