//! Message summaries: what IMAP reads of a message without its body.
//!
//! A summary is the message's header block, the bytes up to and including the blank line
//! that ends the header, kept in [`Cf::Headers`] under the blob's id (a content hash:
//! copies of a message share it). [`Changes::store_blob`](super::Changes::store_blob)
//! writes it in the same commit as the blob, the commit thread deletes it in the write
//! that deletes the blob, and `gannet check` deletes a summary whose blob nothing uses.
//!
//! FETCH ENVELOPE, BODY[HEADER], BODY[HEADER.FIELDS (...)], RFC822.HEADER and SEARCH on
//! header keys give the same answer from the header block as from the whole message, so
//! they read only this. A message stored before summaries existed, one whose header is
//! larger than [`MAX_HEADER`] or whose header does not end in a plain CRLF blank line has
//! none: its reader falls back to the whole blob, as before.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::kv::{Cf, StoreError};
use super::schema::BlobId;

/// The largest header block kept; a larger header is read from the blob.
pub const MAX_HEADER: usize = 64 * 1024;

/// The first byte of a stored summary: the layout of what follows (today the header
/// block, as it is). Not postcard: a `Vec<u8>` decodes a byte at a time through serde,
/// which cost more than the rest of reading it.
const LAYOUT_HEADER_BLOCK: u8 = 1;

/// The record under a blob's id in [`Cf::Headers`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The header block, its blank line included.
    pub header: Vec<u8>,
}

impl Summary {
    /// The summary of a message, if it has one worth keeping.
    pub fn of(message: &[u8]) -> Option<Summary> {
        header_block(message).map(|h| Summary { header: h.to_vec() })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + self.header.len());
        out.push(LAYOUT_HEADER_BLOCK);
        out.extend_from_slice(&self.header);
        out
    }

    /// The summary in a stored value, taking it over (no copy of the header).
    pub fn from_stored(mut bytes: Vec<u8>) -> Result<Summary, StoreError> {
        if bytes.first() != Some(&LAYOUT_HEADER_BLOCK) {
            return Summary::decode(&bytes);
        }
        bytes.remove(0);
        Ok(Summary { header: bytes })
    }

    pub fn decode(bytes: &[u8]) -> Result<Summary, StoreError> {
        match bytes.split_first() {
            Some((&LAYOUT_HEADER_BLOCK, header)) => Ok(Summary {
                header: header.to_vec(),
            }),
            _ => Err(StoreError::Corrupt {
                cf: Cf::Headers.name(),
                detail: "unknown summary layout".into(),
            }),
        }
    }
}

/// The header block of `message`: everything up to and including the first `CRLF CRLF`,
/// when that is where every reader of the message (the MIME parser, which also ends a
/// header at a bare-LF blank line, and the IMAP searches, which look for `CRLF CRLF`)
/// agrees the header ends, and it is at most [`MAX_HEADER`] bytes. `None` otherwise (no
/// blank line, a bare LF blank line first, too large): such a message is read whole.
pub fn header_block(message: &[u8]) -> Option<&[u8]> {
    // A message that starts with its blank line has an empty header (and nothing to keep).
    if message.starts_with(b"\n") || message.starts_with(b"\r\n") {
        return None;
    }
    let window = message.get(..message.len().min(MAX_HEADER))?;
    let end = memchr::memmem::find(window, b"\r\n\r\n")? + 4;
    let block = window.get(..end)?;
    // A blank line ends the header for the MIME parser wherever a line feed is followed
    // by an empty line (LF or CR LF); the first such must be the CRLF CRLF found.
    let first_blank = memchr::memchr_iter(b'\n', block).find(|&i| {
        let rest = block.get(i + 1..).unwrap_or_default();
        rest.starts_with(b"\n") || rest.starts_with(b"\r\n")
    })?;
    (first_blank + 3 == end).then_some(block)
}

/// Bytes derived from messages, in memory, by a key that names the message by its blob id
/// (a hash of the message): an entry can never be stale, it may outlive its message,
/// never disagree with it. Bounded in bytes: two generations, each up to half the budget;
/// a hit in the older one moves to the newer, and when the newer is full the older is
/// dropped.
pub struct BytesMemo<K> {
    budget: usize,
    inner: Mutex<Generations<K>>,
}

/// Header blocks read recently, by blob id.
pub type HeaderMemo = BytesMemo<BlobId>;

struct Generations<K> {
    current: HashMap<K, Arc<Vec<u8>>>,
    current_bytes: usize,
    previous: HashMap<K, Arc<Vec<u8>>>,
}

impl<K: std::hash::Hash + Eq + Copy> BytesMemo<K> {
    pub fn new(budget_bytes: usize) -> BytesMemo<K> {
        BytesMemo {
            budget: budget_bytes,
            inner: Mutex::new(Generations {
                current: HashMap::new(),
                current_bytes: 0,
                previous: HashMap::new(),
            }),
        }
    }

    /// The bytes of `ids` that are in memory; the others are left in `ids`.
    pub fn take_known(&self, ids: &mut Vec<K>) -> HashMap<K, Arc<Vec<u8>>> {
        let mut found = HashMap::with_capacity(ids.len());
        let Ok(mut g) = self.inner.lock() else {
            return found;
        };
        ids.retain(|id| match g.get(id, self.budget) {
            Some(h) => {
                found.insert(*id, h);
                false
            }
            None => true,
        });
        found
    }

    /// The bytes kept for `id`, if any.
    pub fn get(&self, id: &K) -> Option<Arc<Vec<u8>>> {
        self.inner.lock().ok()?.get(id, self.budget)
    }

    /// Keeps `bytes` for `id`.
    pub fn keep(&self, id: K, bytes: Arc<Vec<u8>>) {
        if bytes.len() > self.budget / 2 {
            return;
        }
        if let Ok(mut g) = self.inner.lock() {
            g.put(id, bytes, self.budget);
        }
    }
}

impl<K: std::hash::Hash + Eq + Copy> Generations<K> {
    fn get(&mut self, id: &K, budget: usize) -> Option<Arc<Vec<u8>>> {
        if let Some(h) = self.current.get(id) {
            return Some(h.clone());
        }
        let h = self.previous.remove(id)?;
        self.put(*id, h.clone(), budget);
        Some(h)
    }

    fn put(&mut self, id: K, bytes: Arc<Vec<u8>>, budget: usize) {
        if self.current_bytes + bytes.len() > budget / 2 {
            self.previous = std::mem::take(&mut self.current);
            self.current_bytes = 0;
        }
        self.current_bytes += bytes.len();
        if let Some(old) = self.current.insert(id, bytes) {
            self.current_bytes -= old.len();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_block_ends_at_the_first_blank_line() {
        let m = b"Subject: hi\r\nFrom: a@b.example\r\n\r\nbody\r\n\r\nmore\r\n";
        assert_eq!(
            header_block(m),
            Some(&b"Subject: hi\r\nFrom: a@b.example\r\n\r\n"[..])
        );
        // The whole message, when it is all header.
        assert_eq!(
            header_block(b"Subject: x\r\n\r\n"),
            Some(&b"Subject: x\r\n\r\n"[..])
        );
        // A message that starts with its blank line has an empty header.
        assert_eq!(header_block(b"\r\n\r\nbody"), None);
    }

    #[test]
    fn no_summary_where_readers_could_disagree() {
        // No blank line at all.
        assert_eq!(header_block(b"Subject: x\r\nbody"), None);
        // A bare-LF blank line before the CRLF one: the parser ends the header there.
        assert_eq!(header_block(b"Subject: x\n\nbody\r\n\r\nmore"), None);
        assert_eq!(header_block(b"Subject: x\n\r\nbody\r\n\r\nmore"), None);
        // Too large.
        let mut big = b"X-Big: ".to_vec();
        big.resize(MAX_HEADER, b'a');
        big.extend_from_slice(b"\r\n\r\nbody");
        assert_eq!(header_block(&big), None);
        let mut fits = b"X-Big: ".to_vec();
        fits.resize(MAX_HEADER - 4, b'a');
        fits.extend_from_slice(b"\r\n\r\nbody");
        assert_eq!(header_block(&fits).map(<[u8]>::len), Some(MAX_HEADER));
    }

    #[test]
    fn a_summary_encodes_and_decodes() {
        let s = Summary::of(b"Subject: x\r\n\r\nbody").unwrap();
        assert_eq!(s.header, b"Subject: x\r\n\r\n");
        assert_eq!(Summary::decode(&s.encode()).unwrap(), s);
        assert_eq!(Summary::from_stored(s.encode()).unwrap(), s);
        assert!(Summary::from_stored(vec![7]).is_err());
        assert!(Summary::decode(&[]).is_err());
        assert!(Summary::decode(&[2, b'x']).is_err());
    }

    #[test]
    fn the_memo_keeps_what_fits_and_the_recently_used() {
        let memo = HeaderMemo::new(40);
        let h = |n: u8| Arc::new(vec![n; 10]);
        memo.keep([1; 32], h(1));
        memo.keep([2; 32], h(2));
        let mut ids = vec![[1; 32], [3; 32]];
        let found = memo.take_known(&mut ids);
        assert_eq!(ids, [[3; 32]]);
        assert_eq!(found.get(&[1; 32]).map(|v| v[0]), Some(1));
        // 20 bytes make a generation: the third starts a new one, the first two are old.
        memo.keep([3; 32], h(3));
        let mut ids = vec![[2; 32]];
        assert_eq!(
            memo.take_known(&mut ids).len(),
            1,
            "found in the older generation"
        );
        // Two more generations: 1 was never used again and is gone; 2 was moved up once.
        memo.keep([4; 32], h(4));
        memo.keep([5; 32], h(5));
        let mut ids = vec![[1; 32], [2; 32], [4; 32], [5; 32]];
        let found = memo.take_known(&mut ids);
        assert!(ids.contains(&[1; 32]));
        assert!(found.contains_key(&[5; 32]));
        // Too large for a generation: not kept.
        memo.keep([6; 32], Arc::new(vec![0; 21]));
        let mut ids = vec![[6; 32]];
        assert!(memo.take_known(&mut ids).is_empty());
    }
}
