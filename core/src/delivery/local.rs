//! What one accepted message writes to the store, and where the spam verdict puts it.
//!
//! Local recipients are grouped by what they get: the mailbox (INBOX or Junk, by each
//! account's spam level and whitelist) and the `X-Spam-*` headers (which name the
//! account's threshold). Each group shares one blob; remote recipients share one queue
//! entry with the message as received. All of it is one batch: stored whole or not at all.

use super::routing::Directory;
use crate::filter::actions::tag_subject;
use crate::filter::eval::address_matches;
use crate::filter::Verdict;
use crate::smtp::Envelope;
use crate::store::queue::{QueuedMessage, QueuedRecipient, RecipientStatus};
use crate::store::schema::BlobId;
use crate::store::{Changes, Folder, NewMail};

/// [`Placement::mailbox`] of spam: the account's folder with the `\Junk` attribute,
/// whatever it is called now.
pub const JUNK: &str = "Junk";

/// Local accounts that get the message in the same mailbox with the same headers.
#[derive(Debug, Clone, PartialEq)]
pub struct Placement {
    pub accounts: Vec<u32>,
    pub mailbox: &'static str,
    /// `X-Spam-*` lines to add (empty: none).
    pub headers: String,
    /// Prefix for the Subject (`rewrite_header Subject` in the rules), for spam.
    pub subject_tag: Option<String>,
}

/// Decides each local recipient's mailbox and headers from the verdict: `own`'s for an
/// account listed there (scanned with its own Bayes database), else `verdict`.
pub fn placements(
    envelope: &Envelope,
    verdict: Option<&Verdict>,
    own: &[(u32, Verdict)],
    directory: &Directory,
    from_header: Option<&str>,
) -> Vec<Placement> {
    let accounts = envelope.local_accounts();
    let senders: Vec<String> = [
        Some(envelope.reverse_path.to_lowercase()),
        from_header.map(str::to_lowercase),
    ]
    .into_iter()
    .flatten()
    .filter(|s| !s.is_empty())
    .collect();
    let mut groups: Vec<Placement> = Vec::new();
    for account in accounts {
        let report = directory.report_account() == Some(account);
        let verdict = own
            .iter()
            .find(|(a, _)| *a == account)
            .map(|(_, v)| v)
            .or(verdict);
        let (mailbox, headers, subject_tag) = match verdict {
            // Reports are spam by definition: kept as sent, in the report account's INBOX.
            _ if report => ("INBOX", String::new(), None),
            None => ("INBOX", String::new(), None),
            Some(v) => {
                let prefs = directory.spam_prefs(account);
                let whitelisted = senders
                    .iter()
                    .any(|s| prefs.whitelist.iter().any(|p| address_matches(s, p)));
                let threshold = if whitelisted { None } else { prefs.threshold };
                let spam = threshold.is_some_and(|t| v.score >= t);
                (
                    if spam { JUNK } else { "INBOX" },
                    v.headers(threshold),
                    v.subject_tag(threshold),
                )
            }
        };
        match groups
            .iter_mut()
            .find(|g| g.mailbox == mailbox && g.headers == headers && g.subject_tag == subject_tag)
        {
            Some(g) => g.accounts.push(account),
            None => groups.push(Placement {
                accounts: vec![account],
                mailbox,
                headers,
                subject_tag,
            }),
        }
    }
    groups
}

/// The message with `headers` after its first line (the Return-Path of local delivery).
fn with_headers(message: &[u8], headers: &str) -> Vec<u8> {
    let at = memchr::memmem::find(message, b"\r\n").map_or(0, |i| i + 2);
    let mut out = Vec::with_capacity(message.len() + headers.len());
    out.extend_from_slice(&message[..at]);
    out.extend_from_slice(headers.as_bytes());
    out.extend_from_slice(&message[at..]);
    out
}

/// What the queued copy for scan-relay recipients carries: the verdict's `X-Spam-*`
/// headers and, for spam, the Subject tag the rules ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct ScanCopy {
    pub headers: String,
    pub subject_tag: Option<String>,
}

/// `message` as a placement or scan copy stores it: `headers` after the first line, and
/// the Subject tagged.
fn decorated(message: &[u8], headers: &str, subject_tag: Option<&str>) -> Vec<u8> {
    let variant = with_headers(message, headers);
    match subject_tag {
        Some(tag) => tag_subject(&variant, tag),
        None => variant,
    }
}

/// The queue entry of `recipients` of `envelope`, whose copy is `blob` (starting with
/// the local Return-Path line, not sent).
fn queue_entry(
    envelope: &Envelope,
    id: u64,
    recipients: Vec<QueuedRecipient>,
    blob: BlobId,
    bytes: &[u8],
) -> QueuedMessage {
    let skip = if bytes.starts_with(b"Return-Path:") {
        memchr::memmem::find(bytes, b"\r\n").map_or(0, |i| i + 2) as u32
    } else {
        0
    };
    QueuedMessage {
        id,
        reverse_path: envelope.reverse_path.clone(),
        recipients,
        blob,
        skip,
        size: bytes.len() as u64 - u64::from(skip),
        created: envelope.received_at,
        attempts: 0,
        next_attempt: envelope.received_at,
        last_error: None,
    }
}

/// The queue id of a message's scan-relay copy: its own id with a bit of the sequence
/// field set that no worker reaches within a second.
fn scan_copy_id(id: u64) -> u64 {
    id | 1 << 23
}

/// The changes that store `message` for every recipient of `envelope`: local recipients
/// as `placements` say, scan-relay ones with `scan_copy`'s decorations. One commit: all of
/// it is stored or none.
pub fn delivery_changes(
    envelope: &Envelope,
    message: Vec<u8>,
    placements: &[Placement],
    scan_copy: Option<&ScanCopy>,
) -> Changes {
    let mut changes = Changes::new();
    let original: BlobId = *blake3::hash(&message).as_bytes();
    let mut original_used = false;
    for p in placements {
        let (blob, size) = if p.headers.is_empty() && p.subject_tag.is_none() {
            original_used = true;
            (original, message.len())
        } else {
            let variant = decorated(&message, &p.headers, p.subject_tag.as_deref());
            let size = variant.len();
            (changes.store_blob(variant), size)
        };
        let folder = if p.mailbox == JUNK {
            Folder::junk()
        } else {
            Folder::inbox()
        };
        for &account in &p.accounts {
            changes.append(
                account,
                folder.clone(),
                NewMail::arrived(blob, size as u64, envelope.received_at),
            );
        }
    }
    let queued = |scan: bool| -> Vec<QueuedRecipient> {
        envelope
            .recipients
            .iter()
            .filter(|r| r.account.is_none() && r.scan == (scan && scan_copy.is_some()))
            .map(|r| QueuedRecipient {
                address: r.address.clone(),
                status: RecipientStatus::Queued,
            })
            .collect()
    };
    let remote = queued(false);
    let scanned = queued(true);
    if let (false, Some(copy)) = (scanned.is_empty(), scan_copy) {
        let variant = decorated(&message, &copy.headers, copy.subject_tag.as_deref());
        let entry = queue_entry(
            envelope,
            scan_copy_id(envelope.id),
            scanned,
            *blake3::hash(&variant).as_bytes(),
            &variant,
        );
        changes.store_blob(variant);
        changes.enqueue(&entry);
    }
    if !remote.is_empty() {
        // The queued copy is sent without the Return-Path line that local delivery adds.
        changes.enqueue(&queue_entry(
            envelope,
            envelope.id,
            remote,
            original,
            &message,
        ));
        original_used = true;
    }
    if original_used {
        changes.store_blob(message);
    }
    changes.count("messages_accepted", 1);
    changes
}
