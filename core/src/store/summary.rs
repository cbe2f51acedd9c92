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

use super::kv::{Cf, StoreError};

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
}
