//! The commit thread's view of mail: turns each commit's operations ([`Changes`]) into
//! writes against the store as it is at that moment.
//!
//! The commit thread is the only writer, so what it reads cannot change before it writes:
//! an operation on a message reads the entry at commit time and skips it if it is gone;
//! a mailbox record is read, changed and written here, never written back from a caller's
//! earlier copy. Within a group (one fsync for many commits) the writes of earlier commits
//! are not in the engine yet: they are kept in the group's overlay and read from there.
//!
//! A commit that fails (a missing mailbox, a name taken, a required record gone) writes
//! nothing: it is resolved into a transaction of its own, merged into the group only when
//! every operation resolved.

use std::collections::{HashMap, HashSet};

use super::bayes;
use super::changes::{Applied, Change, Changes, Folder};
use super::kv::{decode_counter, Cf, KvStore, StoreError, WriteOp};
use super::listings::{Delta, ListingChange, Version};
use super::quarantine::{self, HeldMessage, HeldStatus};
use super::schema::{decode, encode, flags, keys, BlobId, MailEntry, MailboxMeta};

/// From how many messages an operation reads their entries in one batched read.
const BATCH_FROM: usize = 32;

/// Mailbox records by account and name, as the thread has written them; `None`: known
/// not to exist. Kept across groups (a write-through cache), dropped on a failed write.
type MailboxCache = HashMap<u32, HashMap<String, Option<MailboxMeta>>>;

#[derive(Default)]
pub(super) struct Sequencer {
    mailboxes: MailboxCache,
    group: Overlay,
    seen: SeenToday,
}

/// The Bayes tokens whose last-learned day has been written today (scope, token): a
/// token learned again the same day needs no second write, which halves what learning
/// writes. Kept across groups, dropped on a failed write and when the day changes.
#[derive(Default)]
struct SeenToday {
    day: i64,
    tokens: HashSet<(u32, u64)>,
}

/// Past this many tokens the set starts again (its memory stays bounded; a token then
/// only has its day written once more).
const MAX_SEEN_TODAY: usize = 4_000_000;

impl SeenToday {
    fn contains(&self, day: i64, token: (u32, u64)) -> bool {
        self.day == day && self.tokens.contains(&token)
    }

    fn extend(&mut self, day: i64, tokens: HashSet<(u32, u64)>) {
        if self.day != day || self.tokens.len() + tokens.len() > MAX_SEEN_TODAY {
            self.day = day;
            self.tokens.clear();
        }
        self.tokens.extend(tokens);
    }
}

/// Writes made by a group's earlier commits (or a transaction's earlier operations) that
/// the engine does not show yet.
#[derive(Default)]
struct Overlay {
    /// Mail entries by key; `None`: removed.
    mail: HashMap<Vec<u8>, Option<MailEntry>>,
    /// Blob reference counts as they now stand.
    refs: HashMap<BlobId, i64>,
    /// The last mailbox id handed out, per account.
    mailbox_ids: HashMap<u32, u32>,
    /// Mailbox records (transactions only; groups write them through to the cache).
    mailboxes: HashMap<(u32, String), Option<MailboxMeta>>,
    /// Held messages by id; `None`: removed.
    held: HashMap<u64, Option<HeldMessage>>,
    /// Learned messages' classes by key; `None`: forgotten.
    learned: HashMap<Vec<u8>, Option<u8>>,
    /// Bayes tokens whose last-learned day this transaction writes (the day, the tokens).
    seen: (i64, HashSet<(u32, u64)>),
    /// Tokens were expired: what [`SeenToday`] remembers may be gone.
    expired: bool,
    /// Mailboxes whose record was written, by account and id: the version before the
    /// first write (None: created) and after the last (None: deleted).
    versions: HashMap<(u32, u32), (Option<Version>, Option<Version>)>,
}

/// The messages a group wrote in one mailbox: UID and entry (`None`: removed).
type MessagesWritten = Vec<(u32, Option<MailEntry>)>;

impl Sequencer {
    /// Turns `changes` into write operations appended to `ops`; a commit that cannot be
    /// resolved adds nothing and changes no state.
    pub(super) fn resolve(
        &mut self,
        kv: &dyn KvStore,
        changes: Changes,
        ops: &mut Vec<WriteOp>,
    ) -> Result<Applied, StoreError> {
        let mut txn = Txn {
            kv,
            seq: self,
            ops: Vec::with_capacity(changes.changes.len() + 4),
            local: Overlay::default(),
            usage: Vec::new(),
            applied: Applied::default(),
            group_ops: ops,
            unreferenced: Vec::new(),
        };
        for change in changes.changes {
            txn.apply(change)?;
        }
        txn.drop_unreferenced();
        let Txn {
            ops: mut txn_ops,
            local,
            usage,
            mut applied,
            ..
        } = txn;
        for &(account, delta) in &usage {
            if delta != 0 {
                txn_ops.push(WriteOp::Add {
                    cf: Cf::Counters,
                    key: keys::usage(account),
                    delta,
                });
            }
        }
        applied.usage = usage;
        self.group.mail.extend(local.mail);
        self.group.refs.extend(local.refs);
        self.group.mailbox_ids.extend(local.mailbox_ids);
        self.group.held.extend(local.held);
        self.group.learned.extend(local.learned);
        if local.expired {
            self.seen = SeenToday::default();
        }
        let (day, seen) = local.seen;
        if !seen.is_empty() {
            self.seen.extend(day, seen);
        }
        for (key, (before, after)) in local.versions {
            self.group.versions.entry(key).or_insert((before, None)).1 = after;
        }
        for ((account, name), meta) in local.mailboxes {
            self.mailboxes
                .entry(account)
                .or_default()
                .insert(name, meta);
        }
        ops.append(&mut txn_ops);
        Ok(applied)
    }

    /// The group was written: its overlay is now what the engine shows. Returns what it
    /// did to each mailbox's messages, for the listings in memory.
    pub(super) fn group_written(&mut self) -> Vec<ListingChange> {
        let group = std::mem::take(&mut self.group);
        let mut by_mailbox: HashMap<(u32, u32), MessagesWritten> = HashMap::new();
        for (key, entry) in group.mail {
            if let Some((account, mailbox, uid)) = keys::mail_key_parts(&key) {
                by_mailbox
                    .entry((account, mailbox))
                    .or_default()
                    .push((uid, entry));
            }
        }
        let mut changes = Vec::with_capacity(group.versions.len());
        for ((account, mailbox), versions) in group.versions {
            let messages = by_mailbox.remove(&(account, mailbox));
            match (versions, messages) {
                ((Some(from), Some(to)), messages) if from != to => {
                    let mut messages = messages.unwrap_or_default();
                    messages.sort_unstable_by_key(|(uid, _)| *uid);
                    let delta = Delta { from, to, messages };
                    changes.push(ListingChange::Advance {
                        account,
                        mailbox,
                        delta,
                    });
                }
                // Same version, nothing written: nothing a listing shows changed.
                ((Some(_), Some(_)), None) | ((None, _), None) => {}
                _ => changes.push(ListingChange::Forget { account, mailbox }),
            }
        }
        // Messages written without their mailbox's record (not done by the sequencer's
        // operations): a listing held may be stale.
        for (account, mailbox) in by_mailbox.into_keys() {
            changes.push(ListingChange::Forget { account, mailbox });
        }
        changes
    }

    /// The group's write failed: forget everything it would have changed.
    pub(super) fn group_failed(&mut self) {
        self.group = Overlay::default();
        self.mailboxes.clear();
        self.seen = SeenToday::default();
    }
}

/// Takes `count` modification sequences of a mailbox; the first. Above 1 always: a
/// mailbox shows at least 1 (see [`MailboxMeta::shown_highest_modseq`]) before any change, so the first change
/// must be after it (mailboxes created before modification sequences were kept have 0).
fn take_modseqs(meta: &mut MailboxMeta, count: u64) -> u64 {
    let first = meta.highest_modseq.max(1) + 1;
    meta.highest_modseq = first + count - 1;
    first
}

/// One commit being resolved.
struct Txn<'a> {
    kv: &'a dyn KvStore,
    seq: &'a Sequencer,
    /// The group's operations so far (for `Require`).
    group_ops: &'a [WriteOp],
    ops: Vec<WriteOp>,
    local: Overlay,
    usage: Vec<(u32, i64)>,
    applied: Applied,
    /// Blobs whose count fell to zero during the commit (deleted at its end if it stays).
    unreferenced: Vec<BlobId>,
}

impl Txn<'_> {
    fn apply(&mut self, change: Change) -> Result<(), StoreError> {
        match change {
            Change::Write(op) => {
                if let WriteOp::Put {
                    cf: Cf::Mailboxes,
                    key,
                    ..
                }
                | WriteOp::Delete {
                    cf: Cf::Mailboxes,
                    key,
                } = &op
                {
                    // A record written by store/ itself (a new account's folders).
                    return Err(StoreError::Engine(format!(
                        "mailbox records are written by the sequencer only ({key:?})"
                    )));
                }
                self.ops.push(op);
            }
            Change::Require { cf, key } => {
                if !self.exists(cf, &key)? {
                    return Err(StoreError::Changed(cf.name()));
                }
            }
            Change::BlobRef { blob, delta } => self.blob_ref(blob, delta)?,
            Change::Append {
                account,
                folder,
                mail,
            } => {
                let entry = MailEntry {
                    blob: mail.blob,
                    size: mail.size,
                    internal_date: mail.internal_date,
                    flags: mail.flags,
                    keywords: mail.keywords,
                    modseq: 0,
                    spam_score: mail.spam_score,
                };
                let (name, meta) = self.folder(account, &folder)?;
                self.add_entry(account, &name, meta, entry)?;
            }
            Change::Copy {
                account,
                from,
                uids,
                to,
                remove,
            } => {
                let (name, mut meta) = self.folder(account, &to)?;
                let mut moved = false;
                for (uid, entry) in self.entries(account, from, uids)? {
                    if remove {
                        self.remove_entry(account, from, uid, &entry)?;
                        moved = true;
                    }
                    meta = self.add_entry(account, &name, meta, entry)?;
                    self.applied.sources.push(uid);
                }
                if moved {
                    self.next_modseqs(account, from, 1)?;
                }
            }
            Change::Expunge {
                account,
                mailbox,
                uids,
                only_deleted,
            } => {
                let mut removed = false;
                for (uid, entry) in self.entries(account, mailbox, uids)? {
                    if only_deleted && entry.flags & flags::DELETED == 0 {
                        continue;
                    }
                    self.remove_entry(account, mailbox, uid, &entry)?;
                    removed = true;
                }
                // The mailbox changed: CONDSTORE clients see it in HIGHESTMODSEQ.
                if removed {
                    self.next_modseqs(account, mailbox, 1)?;
                }
            }
            Change::SetFlags {
                account,
                mailbox,
                uids,
                change,
                unchanged_since,
            } => {
                let mut changed = Vec::new();
                for (uid, old) in self.entries(account, mailbox, uids)? {
                    if unchanged_since.is_some_and(|since| old.modseq > since) {
                        self.applied.modified.push(uid);
                        continue;
                    }
                    let new = change.apply(&old);
                    if new.flags != old.flags || new.keywords != old.keywords {
                        changed.push((uid, new));
                    } else {
                        self.applied.entries.push((uid, new));
                    }
                }
                if !changed.is_empty() {
                    let first = self.next_modseqs(account, mailbox, changed.len() as u64)?;
                    for (modseq, (uid, mut new)) in (first..).zip(changed) {
                        new.modseq = modseq;
                        self.put_entry(account, mailbox, uid, new.clone());
                        self.applied.entries.push((uid, new));
                    }
                }
            }
            Change::CreateMailbox {
                account,
                name,
                special_use,
                now,
            } => {
                if self.mailbox(account, &name)?.is_some() {
                    return Err(StoreError::MailboxExists(name));
                }
                let id = self.next_mailbox_id(account)?;
                let meta = MailboxMeta {
                    id,
                    uidvalidity: (now as u32).wrapping_add(id),
                    uidnext: 1,
                    // What an untouched mailbox shows (RFC 7162: modification sequences
                    // are positive): the first change takes 2.
                    highest_modseq: 1,
                    subscribed: true,
                    special_use,
                };
                self.put_mailbox(account, &name, Some(meta));
            }
            Change::DeleteMailbox { account, name } => {
                let meta = self
                    .mailbox(account, &name)?
                    .ok_or_else(|| StoreError::NoSuchMailbox(name.clone()))?;
                if name == "INBOX" || meta.special_use.is_some() {
                    return Err(StoreError::Refused(format!(
                        "{name} is a special-use mailbox and cannot be deleted"
                    )));
                }
                for (uid, entry) in self.entries_of(account, meta.id)? {
                    self.remove_entry(account, meta.id, uid, &entry)?;
                }
                self.put_mailbox(account, &name, None);
                // The subscription stays (RFC 9051 6.3.7), and applies again to a
                // mailbox of that name created later.
                if meta.subscribed {
                    self.ops.push(WriteOp::Put {
                        cf: Cf::Accounts,
                        key: keys::lost_subscription(account, &name),
                        value: Vec::new(),
                    });
                }
            }
            Change::DeleteAllMailboxes { account } => {
                for (name, meta) in self.mailboxes_of(account)? {
                    for (uid, entry) in self.entries_of(account, meta.id)? {
                        self.remove_entry(account, meta.id, uid, &entry)?;
                    }
                    self.put_mailbox(account, &name, None);
                }
            }
            Change::MoveAll { account, from, to } => {
                let uids = (self.entries_of(account, from)?.into_iter())
                    .map(|(uid, _)| uid)
                    .collect();
                self.apply(Change::Copy {
                    account,
                    from,
                    uids,
                    to,
                    remove: true,
                })?;
            }
            Change::RenameMailbox { account, from, to } => {
                let meta = self
                    .mailbox(account, &from)?
                    .ok_or_else(|| StoreError::NoSuchMailbox(from.clone()))?;
                if from == "INBOX" {
                    return Err(StoreError::Refused("INBOX cannot be renamed".into()));
                }
                if to.eq_ignore_ascii_case("INBOX") || self.mailbox(account, &to)?.is_some() {
                    return Err(StoreError::MailboxExists(to));
                }
                // Messages are keyed by mailbox id: only the name moves.
                self.put_mailbox(account, &from, None);
                self.put_mailbox(account, &to, Some(meta));
            }
            Change::Hold(held) => self.put_held(*held),
            Change::Learn {
                scope,
                message,
                tokens,
                spam,
                auto,
            } => self.learn(scope, message, &tokens, spam, auto)?,
            Change::ExpireTokens { scope, tokens } => {
                self.local.expired = true;
                for token in tokens {
                    for key in [
                        bayes::keys::token(scope, token),
                        bayes::keys::seen(scope, token),
                    ] {
                        self.ops.push(WriteOp::Delete {
                            cf: Cf::Counters,
                            key,
                        });
                    }
                }
            }
            Change::Settle {
                id,
                recipient,
                status,
            } => {
                let mut held = self.held(id)?.ok_or(StoreError::Changed("quarantine"))?;
                match held.recipients.get_mut(recipient) {
                    Some(r) if r.status == HeldStatus::Held => {
                        r.status = status;
                    }
                    _ => return Err(StoreError::Changed("quarantine")),
                }
                self.put_held(held);
            }
            Change::DropHeld { id } => {
                if let Some(held) = self.held(id)? {
                    self.ops.push(WriteOp::Delete {
                        cf: Cf::Quarantine,
                        key: quarantine::key(id),
                    });
                    self.local.held.insert(id, None);
                    self.blob_ref(held.blob, -1)?;
                }
            }
            Change::Subscribe { account, name, on } => {
                // Unsubscribing also forgets a subscription its mailbox outlived.
                if !on {
                    self.ops.push(WriteOp::Delete {
                        cf: Cf::Accounts,
                        key: keys::lost_subscription(account, &name),
                    });
                }
                match self.mailbox(account, &name)? {
                    Some(mut meta) if meta.subscribed != on => {
                        meta.subscribed = on;
                        self.put_mailbox(account, &name, Some(meta));
                    }
                    Some(_) => {}
                    None if !on => {}
                    None => return Err(StoreError::NoSuchMailbox(name.clone())),
                }
            }
        }
        Ok(())
    }

    // ---- messages ----

    /// Gives `entry` the next UID of mailbox `name` and stores it; returns the mailbox as
    /// it now is.
    fn add_entry(
        &mut self,
        account: u32,
        name: &str,
        mut meta: MailboxMeta,
        mut entry: MailEntry,
    ) -> Result<MailboxMeta, StoreError> {
        let uid = meta.uidnext;
        meta.uidnext += 1;
        entry.modseq = take_modseqs(&mut meta, 1);
        self.blob_ref(entry.blob, 1)?;
        self.add_usage(account, entry.size as i64);
        self.put_entry(account, meta.id, uid, entry);
        self.put_mailbox(account, name, Some(meta.clone()));
        self.applied.uids.push(uid);
        self.applied.uidvalidity = Some(meta.uidvalidity);
        Ok(meta)
    }

    fn remove_entry(
        &mut self,
        account: u32,
        mailbox: u32,
        uid: u32,
        entry: &MailEntry,
    ) -> Result<(), StoreError> {
        self.touched(account, mailbox);
        let key = keys::mail(account, mailbox, uid);
        self.ops.push(WriteOp::Delete {
            cf: Cf::Mail,
            key: key.clone(),
        });
        self.local.mail.insert(key, None);
        self.blob_ref(entry.blob, -1)?;
        self.add_usage(account, -(entry.size as i64));
        self.applied.removed.push(uid);
        Ok(())
    }

    /// Notes that a mailbox's messages changed (for those watching it).
    fn touched(&mut self, account: u32, mailbox: u32) {
        if !self.applied.mailboxes.contains(&(account, mailbox)) {
            self.applied.mailboxes.push((account, mailbox));
        }
    }

    fn put_entry(&mut self, account: u32, mailbox: u32, uid: u32, entry: MailEntry) {
        self.touched(account, mailbox);
        let key = keys::mail(account, mailbox, uid);
        self.ops.push(WriteOp::Put {
            cf: Cf::Mail,
            key: key.clone(),
            value: encode(&entry),
        });
        self.local.mail.insert(key, Some(entry));
    }

    /// The entry as this commit would see it after everything before it.
    fn entry(&self, account: u32, mailbox: u32, uid: u32) -> Result<Option<MailEntry>, StoreError> {
        let key = keys::mail(account, mailbox, uid);
        if let Some(e) = self.changed_entry(&key) {
            return Ok(e.clone());
        }
        self.kv
            .get(Cf::Mail, &key)?
            .map(|raw| decode(Cf::Mail, &raw))
            .transpose()
    }

    /// A mail entry as this commit or, before it, this group changed it (`Some(None)`:
    /// removed); None if neither touched it.
    fn changed_entry(&self, key: &[u8]) -> Option<&Option<MailEntry>> {
        self.local
            .mail
            .get(key)
            .or_else(|| self.seq.group.mail.get(key))
    }

    /// The entries of `uids` (each once, in the order given) that exist, as this commit
    /// sees them before changing any. Many are read in one batched point read, not by
    /// scanning the mailbox: a scan also walks over the tombstone of every entry deleted
    /// there and not yet compacted away, which in a maildrop that POP3 clients empty all
    /// day is most of what the scan finds.
    fn entries(
        &self,
        account: u32,
        mailbox: u32,
        mut uids: Vec<u32>,
    ) -> Result<Vec<(u32, MailEntry)>, StoreError> {
        let mut seen = std::collections::HashSet::with_capacity(uids.len());
        uids.retain(|uid| seen.insert(*uid));
        if uids.len() <= BATCH_FROM {
            let mut out = Vec::with_capacity(uids.len());
            for uid in uids {
                if let Some(entry) = self.entry(account, mailbox, uid)? {
                    out.push((uid, entry));
                }
            }
            return Ok(out);
        }
        // What this group or this commit changed is known; the rest is read from the
        // store, its keys sorted as the batched read wants them (big-endian UIDs).
        let mut known: HashMap<u32, Option<MailEntry>> = HashMap::new();
        let mut stored = Vec::new();
        for &uid in &uids {
            let key = keys::mail(account, mailbox, uid);
            match self.changed_entry(&key) {
                Some(e) => {
                    known.insert(uid, e.clone());
                }
                None => stored.push((uid, key)),
            }
        }
        stored.sort_unstable_by_key(|(uid, _)| *uid);
        let (stored_uids, stored_keys): (Vec<u32>, Vec<Vec<u8>>) = stored.into_iter().unzip();
        let values = self.kv.multi_get_sorted(Cf::Mail, &stored_keys)?;
        for (uid, raw) in stored_uids.into_iter().zip(values) {
            let entry = raw.map(|raw| decode(Cf::Mail, &raw)).transpose()?;
            known.insert(uid, entry);
        }
        Ok(uids
            .into_iter()
            .filter_map(|uid| Some((uid, known.remove(&uid)??)))
            .collect())
    }

    /// Every entry of a mailbox, as this commit would see them, in UID order.
    fn entries_of(&self, account: u32, mailbox: u32) -> Result<Vec<(u32, MailEntry)>, StoreError> {
        let mut all: Vec<(u32, MailEntry)> = self
            .entries_by_uid(account, mailbox)?
            .into_iter()
            .filter_map(|(uid, e)| Some((uid, e?)))
            .collect();
        all.sort_unstable_by_key(|(uid, _)| *uid);
        Ok(all)
    }

    /// The entries of a mailbox by UID: as stored, then as this group and this commit
    /// changed them (`None`: removed).
    fn entries_by_uid(
        &self,
        account: u32,
        mailbox: u32,
    ) -> Result<HashMap<u32, Option<MailEntry>>, StoreError> {
        let prefix = keys::mail_of(account, mailbox);
        let mut found = HashMap::new();
        let mut error = None;
        self.kv.scan_prefix(Cf::Mail, &prefix, &mut |k, v| {
            match (keys::uid_of_mail_key(k), decode::<MailEntry>(Cf::Mail, v)) {
                (Some(uid), Ok(e)) => {
                    found.insert(uid, Some(e));
                }
                (_, Err(e)) => error = Some(e),
                (None, _) => {}
            }
            error.is_none()
        })?;
        if let Some(e) = error {
            return Err(e);
        }
        for overlay in [&self.seq.group.mail, &self.local.mail] {
            for (k, e) in overlay {
                if k.starts_with(&prefix) {
                    if let Some(uid) = keys::uid_of_mail_key(k) {
                        found.insert(uid, e.clone());
                    }
                }
            }
        }
        Ok(found)
    }

    /// Adds `delta` references to `blob`; at zero the blob and its count are deleted.
    fn blob_ref(&mut self, blob: BlobId, delta: i64) -> Result<(), StoreError> {
        let now = match self
            .local
            .refs
            .get(&blob)
            .or_else(|| self.seq.group.refs.get(&blob))
        {
            Some(n) => *n,
            None => self
                .kv
                .get(Cf::Counters, &keys::blob_refs(&blob))?
                .map_or(0, |raw| decode_counter(&raw)),
        };
        let next = now + delta;
        self.ops.push(WriteOp::Add {
            cf: Cf::Counters,
            key: keys::blob_refs(&blob),
            delta,
        });
        self.local.refs.insert(blob, next);
        if next <= 0 && !self.unreferenced.contains(&blob) {
            self.unreferenced.push(blob);
        }
        Ok(())
    }

    /// Deletes the blobs (and their summaries) no longer referred to once every operation of the commit is in
    /// (a MOVE drops a reference before it adds one: the blob must not go in between).
    fn drop_unreferenced(&mut self) {
        for blob in std::mem::take(&mut self.unreferenced) {
            if self.local.refs.get(&blob).is_some_and(|n| *n <= 0) {
                self.ops.push(WriteOp::Delete {
                    cf: Cf::Blobs,
                    key: keys::blob(&blob),
                });
                self.ops.push(WriteOp::Delete {
                    cf: Cf::Headers,
                    key: keys::blob(&blob),
                });
                self.ops.push(WriteOp::Delete {
                    cf: Cf::Counters,
                    key: keys::blob_refs(&blob),
                });
                self.local.refs.insert(blob, 0);
            }
        }
    }

    fn add_usage(&mut self, account: u32, delta: i64) {
        match self.usage.iter_mut().find(|(a, _)| *a == account) {
            Some((_, d)) => *d += delta,
            None => self.usage.push((account, delta)),
        }
    }

    // ---- the Bayes database ----

    /// Counts (or uncounts) a message's tokens, against what was learned of it before.
    fn learn(
        &mut self,
        scope: u32,
        message: [u8; 32],
        tokens: &[u64],
        spam: Option<bool>,
        auto: bool,
    ) -> Result<(), StoreError> {
        let key = bayes::keys::message(scope, &message);
        let before = match self
            .local
            .learned
            .get(&key)
            .or_else(|| self.seq.group.learned.get(&key))
        {
            Some(class) => *class,
            None => self
                .kv
                .get(Cf::Meta, &key)?
                .and_then(|v| v.first().copied()),
        };
        let before = before.map(|class| class == bayes::SPAM);
        let outcome = match (before, spam) {
            (Some(was), Some(now)) if was == now => bayes::Learned::AlreadyKnown,
            // Auto-learning never overrides what was learned before (a person's verdict).
            (Some(_), Some(_)) if auto => bayes::Learned::AlreadyKnown,
            (None, None) => bayes::Learned::NotKnown,
            (Some(was), now) => {
                self.count_tokens(scope, tokens, was, -1);
                if let Some(now) = now {
                    self.count_tokens(scope, tokens, now, 1);
                }
                match now {
                    Some(_) => bayes::Learned::Relearned,
                    None => bayes::Learned::Forgotten,
                }
            }
            (None, Some(now)) => {
                self.count_tokens(scope, tokens, now, 1);
                bayes::Learned::Learned
            }
        };
        let class = spam.map(|s| if s { bayes::SPAM } else { bayes::HAM });
        let unchanged = outcome == bayes::Learned::AlreadyKnown;
        if !unchanged && class != before.map(|s| if s { bayes::SPAM } else { bayes::HAM }) {
            self.ops.push(match class {
                Some(c) => WriteOp::Put {
                    cf: Cf::Meta,
                    key: key.clone(),
                    value: vec![c],
                },
                None => WriteOp::Delete {
                    cf: Cf::Meta,
                    key: key.clone(),
                },
            });
            self.local.learned.insert(key, class);
        }
        self.applied.learned.push(outcome);
        Ok(())
    }

    /// Adds `sign` (1 or -1) learned messages of a class, and each of its tokens.
    fn count_tokens(&mut self, scope: u32, tokens: &[u64], spam: bool, sign: i64) {
        let delta = sign * bayes::delta(spam);
        self.ops.push(WriteOp::Add {
            cf: Cf::Counters,
            key: bayes::keys::totals(scope),
            delta,
        });
        for &token in tokens {
            self.ops.push(WriteOp::Add {
                cf: Cf::Counters,
                key: bayes::keys::token(scope, token),
                delta,
            });
        }
        // The day each token was last learned, for expiry (not on forgetting). In a run
        // of their own: keys in order (the tokens are sorted) are inserted into the
        // memtable next to each other, where alternating with the counts they were not.
        // Written once a day per token (see [`SeenToday`]).
        if sign > 0 {
            let day = crate::clock::unix_now().div_euclid(86_400);
            if self.local.seen.0 != day {
                self.local.seen = (day, HashSet::new());
            }
            for &token in tokens {
                let key = (scope, token);
                if self.seq.seen.contains(day, key) || !self.local.seen.1.insert(key) {
                    continue;
                }
                self.ops.push(WriteOp::Put {
                    cf: Cf::Counters,
                    key: bayes::keys::seen(scope, token),
                    value: day.to_le_bytes().to_vec(),
                });
            }
        }
    }

    // ---- the quarantine ----

    fn held(&self, id: u64) -> Result<Option<HeldMessage>, StoreError> {
        if let Some(h) = self
            .local
            .held
            .get(&id)
            .or_else(|| self.seq.group.held.get(&id))
        {
            return Ok(h.clone());
        }
        self.kv
            .get(Cf::Quarantine, &quarantine::key(id))?
            .map(|raw| decode(Cf::Quarantine, &raw))
            .transpose()
    }

    fn put_held(&mut self, held: HeldMessage) {
        self.ops.push(WriteOp::Put {
            cf: Cf::Quarantine,
            key: quarantine::key(held.id),
            value: encode(&held),
        });
        self.local.held.insert(held.id, Some(held));
    }

    // ---- mailboxes ----

    /// Takes `count` modification sequences of mailbox `mailbox_id` (RFC 7162): its
    /// highest goes up by `count`; returns the first taken. A mailbox deleted meanwhile
    /// has none to give: 0, and nothing is written.
    fn next_modseqs(
        &mut self,
        account: u32,
        mailbox_id: u32,
        count: u64,
    ) -> Result<u64, StoreError> {
        let found = self
            .mailboxes_of(account)?
            .into_iter()
            .find(|(_, m)| m.id == mailbox_id);
        let Some((name, mut meta)) = found else {
            return Ok(0);
        };
        let first = take_modseqs(&mut meta, count);
        self.put_mailbox(account, &name, Some(meta));
        Ok(first)
    }

    fn mailbox(&self, account: u32, name: &str) -> Result<Option<MailboxMeta>, StoreError> {
        if let Some(m) = self.local.mailboxes.get(&(account, name.to_owned())) {
            return Ok(m.clone());
        }
        if let Some(m) = self.seq.mailboxes.get(&account).and_then(|a| a.get(name)) {
            return Ok(m.clone());
        }
        self.kv
            .get(Cf::Mailboxes, &keys::mailbox(account, name))?
            .map(|raw| decode(Cf::Mailboxes, &raw))
            .transpose()
    }

    /// The account's mailboxes by name, as this commit would see them.
    fn mailboxes_of(&self, account: u32) -> Result<Vec<(String, MailboxMeta)>, StoreError> {
        let prefix = keys::mailboxes_of(account);
        let mut found: std::collections::BTreeMap<String, Option<MailboxMeta>> = Default::default();
        let mut error = None;
        self.kv.scan_prefix(Cf::Mailboxes, &prefix, &mut |k, v| {
            match decode::<MailboxMeta>(Cf::Mailboxes, v) {
                Ok(meta) => {
                    let name = String::from_utf8_lossy(k.get(prefix.len()..).unwrap_or_default());
                    found.insert(name.into_owned(), Some(meta));
                }
                Err(e) => error = Some(e),
            }
            error.is_none()
        })?;
        if let Some(e) = error {
            return Err(e);
        }
        if let Some(cached) = self.seq.mailboxes.get(&account) {
            found.extend(cached.iter().map(|(n, m)| (n.clone(), m.clone())));
        }
        found.extend(
            self.local
                .mailboxes
                .iter()
                .filter(|((a, _), _)| *a == account)
                .map(|((_, n), m)| (n.clone(), m.clone())),
        );
        Ok(found
            .into_iter()
            .filter_map(|(name, m)| Some((name, m?)))
            .collect())
    }

    /// The mailbox a folder names.
    fn folder(&self, account: u32, folder: &Folder) -> Result<(String, MailboxMeta), StoreError> {
        match folder {
            Folder::Named(name) => {
                let meta = self
                    .mailbox(account, name)?
                    .ok_or_else(|| StoreError::NoSuchMailbox(name.clone()))?;
                Ok((name.clone(), meta))
            }
            Folder::SpecialUse(attribute) => {
                let all = self.mailboxes_of(account)?;
                let found = all
                    .iter()
                    .find(|(_, m)| m.special_use.as_deref() == Some(*attribute))
                    .or_else(|| all.iter().find(|(n, _)| n == "INBOX"))
                    .cloned();
                found.ok_or_else(|| StoreError::NoSuchMailbox((*attribute).to_owned()))
            }
        }
    }

    fn put_mailbox(&mut self, account: u32, name: &str, meta: Option<MailboxMeta>) {
        // The versions the listings in memory follow (by id: a rename keeps it). The
        // version before is needed once per group: at the mailbox's first write in it.
        let noted = |id: u32| {
            self.local.versions.contains_key(&(account, id))
                || self.seq.group.versions.contains_key(&(account, id))
        };
        if let Some(m) = meta.as_ref().filter(|m| noted(m.id)) {
            self.versions_written(account, m.id, None, Some(Version::of(m)));
            return self.write_mailbox(account, name, meta);
        }
        let before = self.mailbox(account, name).ok().flatten();
        if let Some(b) = &before {
            if meta.as_ref().map(|m| m.id) != Some(b.id) {
                self.versions_written(account, b.id, Some(Version::of(b)), None);
            }
        }
        if let Some(m) = &meta {
            let before = before.filter(|b| b.id == m.id).map(|b| Version::of(&b));
            self.versions_written(account, m.id, before, Some(Version::of(m)));
        }
        self.write_mailbox(account, name, meta);
    }

    /// Writes a mailbox record (`None`: deletes it), in the transaction's overlay too.
    fn write_mailbox(&mut self, account: u32, name: &str, meta: Option<MailboxMeta>) {
        let key = keys::mailbox(account, name);
        self.ops.push(match &meta {
            Some(m) => WriteOp::Put {
                cf: Cf::Mailboxes,
                key,
                value: encode(m),
            },
            None => WriteOp::Delete {
                cf: Cf::Mailboxes,
                key,
            },
        });
        self.local
            .mailboxes
            .insert((account, name.to_owned()), meta);
    }

    /// Notes a mailbox record written: its version before this transaction's first write
    /// (kept from that write) and after this one.
    fn versions_written(
        &mut self,
        account: u32,
        mailbox: u32,
        before: Option<Version>,
        after: Option<Version>,
    ) {
        self.local
            .versions
            .entry((account, mailbox))
            .or_insert((before, None))
            .1 = after;
    }

    /// A mailbox id the account has never used: past every id it has and every id handed
    /// out before (kept in the store, so a deleted mailbox's id is not given again).
    fn next_mailbox_id(&mut self, account: u32) -> Result<u32, StoreError> {
        let handed_out = match self
            .local
            .mailbox_ids
            .get(&account)
            .or_else(|| self.seq.group.mailbox_ids.get(&account))
        {
            Some(n) => *n,
            None => self
                .kv
                .get(Cf::Meta, &keys::last_mailbox_id(account))?
                .and_then(|raw| raw.try_into().ok().map(u32::from_be_bytes))
                .unwrap_or(0),
        };
        let highest = self
            .mailboxes_of(account)?
            .iter()
            .map(|(_, m)| m.id)
            .max()
            .unwrap_or(0);
        let id = handed_out.max(highest) + 1;
        self.ops.push(WriteOp::Put {
            cf: Cf::Meta,
            key: keys::last_mailbox_id(account),
            value: id.to_be_bytes().to_vec(),
        });
        self.local.mailbox_ids.insert(account, id);
        Ok(id)
    }

    /// Whether a record exists, counting the group's writes so far.
    fn exists(&self, cf: Cf, key: &[u8]) -> Result<bool, StoreError> {
        let pending = self
            .group_ops
            .iter()
            .chain(self.ops.iter())
            .rev()
            .find_map(|op| match op {
                WriteOp::Put { cf: c, key: k, .. } if *c == cf && k == key => Some(true),
                WriteOp::Delete { cf: c, key: k } if *c == cf && k == key => Some(false),
                _ => None,
            });
        match pending {
            Some(exists) => Ok(exists),
            None => Ok(self.kv.get(cf, key)?.is_some()),
        }
    }
}
