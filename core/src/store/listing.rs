//! One mailbox's messages in UID order (what [`super::listings`] keeps and every IMAP
//! session and POP3 maildrop holds), in chunks shared between copies.
//!
//! A mailbox of a million messages is about 100 MB as one vector: copying it for every
//! new state (a reader catching up with the mail that came) or for every session that
//! selects it costs that much each time. Held as chunks of [`CHUNK`] messages behind
//! reference counts, a copy shares every chunk, and a change copies only the chunks it
//! touches (new mail: the last one). Two listings that share chunks are compared chunk by
//! chunk ([`differences`]): a session catching up walks what changed, not the mailbox.

use std::collections::BTreeMap;
use std::ops::{Index, IndexMut, Range};
use std::sync::Arc;

use super::schema::MailEntry;

/// A message of a listing: its UID and entry.
pub type Message = (u32, MailEntry);

/// Messages per chunk when a listing is built or grows at its end (about 50 KB).
const CHUNK: usize = 512;

/// The messages of one mailbox in UID order, cheap to clone.
#[derive(Clone, Default)]
pub struct Listing(Arc<Chunks>);

#[derive(Clone, Default)]
struct Chunks {
    /// In UID order; none is empty.
    chunks: Vec<Arc<Vec<Message>>>,
    /// `ends[i]`: how many messages chunks `0..=i` hold.
    ends: Vec<usize>,
}

impl Chunks {
    fn recount(&mut self) {
        self.chunks.retain(|c| !c.is_empty());
        let mut total = 0;
        self.ends = self
            .chunks
            .iter()
            .map(|c| {
                total += c.len();
                total
            })
            .collect();
    }

    /// The chunk holding message `i` and `i`'s place in it.
    fn locate(&self, i: usize) -> Option<(usize, usize)> {
        let chunk = self.ends.partition_point(|&end| end <= i);
        let start = match chunk.checked_sub(1) {
            Some(before) => *self.ends.get(before)?,
            None => 0,
        };
        (chunk < self.chunks.len()).then_some((chunk, i - start))
    }

    /// The first chunk whose last UID is `uid` or more (the one `uid` belongs in), or
    /// the number of chunks when every UID is lower.
    fn chunk_for(&self, uid: u32) -> usize {
        self.chunks
            .partition_point(|c| c.last().is_some_and(|(last, _)| *last < uid))
    }
}

impl Listing {
    /// From messages in UID order.
    pub fn from_vec(messages: Vec<Message>) -> Listing {
        let mut chunks = Chunks::default();
        let mut rest = messages.into_iter().peekable();
        while rest.peek().is_some() {
            chunks
                .chunks
                .push(Arc::new(rest.by_ref().take(CHUNK).collect()));
        }
        chunks.recount();
        Listing(Arc::new(chunks))
    }

    pub fn len(&self) -> usize {
        self.0.ends.last().copied().unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`th message (0-based: the message sequence number less one).
    pub fn get(&self, i: usize) -> Option<&Message> {
        let (chunk, at) = self.0.locate(i)?;
        self.0.chunks.get(chunk)?.get(at)
    }

    /// The `i`th message to change (the chunk holding it is copied if shared).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut Message> {
        let (chunk, at) = self.0.locate(i)?;
        let chunks = Arc::make_mut(&mut self.0);
        Arc::make_mut(chunks.chunks.get_mut(chunk)?).get_mut(at)
    }

    pub fn last(&self) -> Option<&Message> {
        self.0.chunks.last()?.last()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Message> + '_ {
        self.0.chunks.iter().flat_map(|c| c.iter())
    }

    /// The messages from the `i`th on.
    pub fn iter_from(&self, i: usize) -> impl Iterator<Item = &Message> + '_ {
        let (first, at) = self.0.locate(i).unwrap_or((self.0.chunks.len(), 0));
        let chunks = self.0.chunks.get(first..).unwrap_or_default();
        chunks
            .iter()
            .enumerate()
            .flat_map(move |(n, c)| c.get(if n == 0 { at } else { 0 }..).unwrap_or_default())
    }

    /// The messages at positions `range` (those of them that exist).
    pub fn range(&self, range: Range<usize>) -> impl Iterator<Item = &Message> + '_ {
        self.iter_from(range.start)
            .take(range.end.saturating_sub(range.start))
    }

    /// Where the message with `uid` is: `Ok(position)`, or `Err(position)` where it
    /// would go.
    pub fn find(&self, uid: u32) -> Result<usize, usize> {
        let chunk = self.0.chunk_for(uid);
        let start = match chunk.checked_sub(1) {
            Some(before) => self.0.ends.get(before).copied().unwrap_or(0),
            None => 0,
        };
        match self.0.chunks.get(chunk) {
            Some(c) => match c.binary_search_by_key(&uid, |(u, _)| *u) {
                Ok(at) => Ok(start + at),
                Err(at) => Err(start + at),
            },
            None => Err(self.len()),
        }
    }

    /// Adds a message after the others (its UID is higher than theirs).
    pub fn push(&mut self, message: Message) {
        let total = self.len() + 1;
        let chunks = Arc::make_mut(&mut self.0);
        match (chunks.chunks.last_mut(), chunks.ends.last_mut()) {
            (Some(last), Some(end)) if last.len() < CHUNK => {
                Arc::make_mut(last).push(message);
                *end = total;
            }
            _ => {
                chunks.chunks.push(Arc::new(vec![message]));
                chunks.ends.push(total);
            }
        }
    }

    pub fn extend(&mut self, messages: impl IntoIterator<Item = Message>) {
        for m in messages {
            self.push(m);
        }
    }

    /// Removes the messages whose UIDs are in `uids` (sorted): one pass over each chunk
    /// that holds any of them.
    pub fn remove_uids(&mut self, uids: &[u32]) {
        if uids.is_empty() {
            return;
        }
        let chunks = Arc::make_mut(&mut self.0);
        for chunk in &mut chunks.chunks {
            let (Some((first, _)), Some((last, _))) = (chunk.first(), chunk.last()) else {
                continue;
            };
            let from = uids.partition_point(|u| u < first);
            if uids.get(from).is_none_or(|u| u > last) {
                continue;
            }
            Arc::make_mut(chunk).retain(|(uid, _)| uids.binary_search(uid).is_err());
        }
        chunks.recount();
    }

    /// This listing with `changed` applied: each UID's entry now (`Some`) or its removal
    /// (`None`). Only the chunks that hold a changed UID are copied.
    pub fn apply(&self, changed: &BTreeMap<u32, Option<&MailEntry>>) -> Listing {
        let mut out = (*self.0).clone();
        let mut by_chunk: BTreeMap<usize, Vec<(u32, Option<&MailEntry>)>> = BTreeMap::new();
        let mut after = Vec::new();
        for (&uid, &entry) in changed {
            let chunk = self.0.chunk_for(uid);
            if chunk < self.0.chunks.len() {
                by_chunk.entry(chunk).or_default().push((uid, entry));
            } else if let Some(entry) = entry {
                after.push((uid, entry.clone()));
            }
        }
        for (chunk, changes) in by_chunk {
            let Some(slot) = out.chunks.get_mut(chunk) else {
                continue;
            };
            *slot = Arc::new(merge(slot, &changes));
        }
        out.recount();
        let mut listing = Listing(Arc::new(out));
        listing.extend(after);
        listing
    }

    /// The messages as one vector (for tests and small listings).
    pub fn to_vec(&self) -> Vec<Message> {
        self.iter().cloned().collect()
    }

    /// Whether both are the same copy (not only equal).
    pub fn ptr_eq(a: &Listing, b: &Listing) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

/// `base` (in UID order) with `changes` (in UID order) merged in.
fn merge(base: &[Message], changes: &[(u32, Option<&MailEntry>)]) -> Vec<Message> {
    let mut out = Vec::with_capacity(base.len() + changes.len());
    let mut changes = changes.iter().peekable();
    for (uid, entry) in base {
        while let Some((new_uid, new)) = changes.next_if(|(u, _)| u < uid) {
            if let Some(new) = new {
                out.push((*new_uid, (*new).clone()));
            }
        }
        match changes.next_if(|(u, _)| u == uid) {
            Some((_, Some(new))) => out.push((*uid, (*new).clone())),
            Some((_, None)) => {}
            None => out.push((*uid, entry.clone())),
        }
    }
    out.extend(changes.filter_map(|(uid, new)| Some((*uid, (*new)?.clone()))));
    out
}

impl Index<usize> for Listing {
    type Output = Message;

    fn index(&self, i: usize) -> &Message {
        match self.get(i) {
            Some(m) => m,
            None => panic!("listing index {i} out of range (len {})", self.len()),
        }
    }
}

impl IndexMut<usize> for Listing {
    fn index_mut(&mut self, i: usize) -> &mut Message {
        let len = self.len();
        match self.get_mut(i) {
            Some(m) => m,
            None => panic!("listing index {i} out of range (len {len})"),
        }
    }
}

impl From<Vec<Message>> for Listing {
    fn from(messages: Vec<Message>) -> Listing {
        Listing::from_vec(messages)
    }
}

impl std::fmt::Debug for Listing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// How one listing differs from another, message by message.
#[derive(Debug, PartialEq)]
pub enum Difference<'a> {
    /// In the old, not in the new.
    Gone(u32),
    /// In both, with another entry now.
    Changed {
        uid: u32,
        was: &'a MailEntry,
        now: &'a MailEntry,
    },
    /// In the new, not in the old.
    Added(&'a Message),
}

/// What changed from `old` to `new`, in UID order. Chunks the two share are skipped
/// whole: for a listing and a later state of it, the cost is the chunks that changed.
pub fn differences<'a>(old: &'a Listing, new: &'a Listing) -> Vec<Difference<'a>> {
    let (a, b) = (&old.0.chunks, &new.0.chunks);
    let mut out = Vec::new();
    let (mut ca, mut ia, mut cb, mut ib) = (0, 0, 0, 0);
    loop {
        if ia == 0 && ib == 0 {
            if let (Some(x), Some(y)) = (a.get(ca), b.get(cb)) {
                if Arc::ptr_eq(x, y) {
                    ca += 1;
                    cb += 1;
                    continue;
                }
            }
        }
        let here = |chunks: &'a [Arc<Vec<Message>>], c: usize, i: usize| {
            chunks.get(c).and_then(|chunk| chunk.get(i))
        };
        let step = |c: &mut usize, i: &mut usize, chunks: &[Arc<Vec<Message>>]| {
            *i += 1;
            if chunks.get(*c).is_none_or(|chunk| *i >= chunk.len()) {
                *c += 1;
                *i = 0;
            }
        };
        match (here(a, ca, ia), here(b, cb, ib)) {
            (None, None) => break,
            (Some((uid, _)), None) => {
                out.push(Difference::Gone(*uid));
                step(&mut ca, &mut ia, a);
            }
            (None, Some(m)) => {
                out.push(Difference::Added(m));
                step(&mut cb, &mut ib, b);
            }
            (Some((ua, ea)), Some(m @ (ub, eb))) => {
                if ua < ub {
                    out.push(Difference::Gone(*ua));
                    step(&mut ca, &mut ia, a);
                } else if ua > ub {
                    out.push(Difference::Added(m));
                    step(&mut cb, &mut ib, b);
                } else {
                    if ea != eb {
                        out.push(Difference::Changed {
                            uid: *ua,
                            was: ea,
                            now: eb,
                        });
                    }
                    step(&mut ca, &mut ia, a);
                    step(&mut cb, &mut ib, b);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(flags: u32) -> MailEntry {
        MailEntry::for_test(flags)
    }

    fn listing(uids: impl IntoIterator<Item = u32>) -> Listing {
        Listing::from_vec(uids.into_iter().map(|u| (u, entry(0))).collect())
    }

    fn uids(l: &Listing) -> Vec<u32> {
        l.iter().map(|(u, _)| *u).collect()
    }

    #[test]
    fn positions_and_uids_across_chunks() {
        let l = listing((1..=2000).map(|u| u * 2));
        assert_eq!(l.len(), 2000);
        assert_eq!(l.get(0).map(|m| m.0), Some(2));
        assert_eq!(l.get(1999).map(|m| m.0), Some(4000));
        assert!(l.get(2000).is_none());
        assert_eq!(l[CHUNK].0, (CHUNK as u32 + 1) * 2);
        assert_eq!(l.find(1026), Ok(512));
        assert_eq!(l.find(1025), Err(512));
        assert_eq!(l.find(1), Err(0));
        assert_eq!(l.find(5000), Err(2000));
        assert_eq!(l.last().map(|m| m.0), Some(4000));
        let from: Vec<u32> = l.iter_from(1998).map(|m| m.0).collect();
        assert_eq!(from, [3998, 4000]);
        assert_eq!(l.iter_from(2000).count(), 0);
        let some: Vec<u32> = l.range(510..514).map(|m| m.0).collect();
        assert_eq!(some, [1022, 1024, 1026, 1028]);
    }

    #[test]
    fn a_change_copies_only_its_chunk() {
        let a = listing(1..=2000);
        let mut b = a.clone();
        b[1000].1.flags = 1;
        assert_eq!(a[1000].1.flags, 0, "the original is unchanged");
        let shared =
            a.0.chunks
                .iter()
                .zip(&b.0.chunks)
                .filter(|(x, y)| Arc::ptr_eq(x, y))
                .count();
        assert_eq!(shared, a.0.chunks.len() - 1);
        let d = differences(&a, &b);
        assert_eq!(d.len(), 1);
        assert!(matches!(d[0], Difference::Changed { uid: 1001, .. }));
    }

    #[test]
    fn push_remove_and_apply_keep_uid_order() {
        let mut l = listing(1..=CHUNK as u32);
        l.push((600, entry(0)));
        assert_eq!(l.len(), CHUNK + 1);
        assert_eq!(l.0.chunks.len(), 2);
        l.remove_uids(&[1]);
        assert_eq!(l.find(600), Ok(CHUNK - 1));
        // Emptying a chunk drops it.
        l.remove_uids(&[600]);
        assert_eq!(l.0.chunks.len(), 1);
        l.push((700, entry(0)));
        assert_eq!(l.len(), CHUNK);
        let mut fewer = listing(1..=2000);
        fewer.remove_uids(&[1, 600, 601, 1999, 5000]);
        assert_eq!(fewer.len(), 1996);
        assert_eq!(fewer.find(602), Ok(598));
        assert_eq!(fewer.find(600), Err(598));

        let seen = entry(1);
        let changed: BTreeMap<u32, Option<&MailEntry>> =
            [(2, None), (3, Some(&seen)), (701, Some(&seen)), (702, None)].into();
        let after = l.apply(&changed);
        assert_eq!(after.len(), CHUNK);
        assert_eq!(after[0].0, 3);
        assert_eq!(after[0].1.flags, 1);
        assert_eq!(after.last().map(|m| m.0), Some(701));
        assert_eq!(uids(&l).len(), CHUNK, "the original is unchanged");
    }

    #[test]
    fn differences_find_gone_changed_and_added_even_when_chunks_do_not_line_up() {
        let old = listing(1..=1500);
        // Built apart: no chunk shared, and chunks of other bounds.
        let new = Listing::from_vec(
            (1..=1600)
                .filter(|u| u % 100 != 0)
                .map(|u| (u, entry(u32::from(u == 7))))
                .skip(3)
                .collect(),
        );
        let d = differences(&old, &new);
        let gone: Vec<u32> = d
            .iter()
            .filter_map(|x| match x {
                Difference::Gone(u) => Some(*u),
                _ => None,
            })
            .collect();
        let added: Vec<u32> = d
            .iter()
            .filter_map(|x| match x {
                Difference::Added(m) => Some(m.0),
                _ => None,
            })
            .collect();
        let mut want_gone = vec![1, 2, 3];
        want_gone.extend((1..=15).map(|n| n * 100));
        assert_eq!(gone, want_gone);
        assert_eq!(
            added,
            (1501..=1600).filter(|u| u % 100 != 0).collect::<Vec<_>>()
        );
        assert!(d.contains(&Difference::Changed {
            uid: 7,
            was: &entry(0),
            now: &entry(1)
        }));
        assert!(differences(&old, &old.clone()).is_empty());
    }
}
