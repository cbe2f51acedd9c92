//! FETCH answers rendered once per message: the ENVELOPE, and the top-level
//! `BODY[HEADER.FIELDS (...)]` of a field list (mail clients ask for the same list on
//! every resync: Thunderbird's has fifteen fields). Parsing a header for them costs more
//! than the rest of a FETCH; Dovecot keeps the same answers in its index cache.
//!
//! Kept in memory, bounded in bytes, by blob id (a hash of the message: an answer kept
//! can never disagree with the message it came from).

use std::sync::Arc;

use super::structure::SectionText;
use crate::store::schema::BlobId;
use crate::store::summary::BytesMemo;

/// How much memory each kind of answer may take (about 100,000 envelopes).
const BUDGET_BYTES: usize = 32 << 20;

/// Which field list a header-fields answer is of: a hash of the list as asked.
pub type FieldsKey = [u8; 16];

pub struct RenderedMemo {
    envelopes: BytesMemo<BlobId>,
    header_fields: BytesMemo<(BlobId, FieldsKey)>,
}

impl std::fmt::Debug for RenderedMemo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RenderedMemo").finish_non_exhaustive()
    }
}

impl Default for RenderedMemo {
    fn default() -> Self {
        RenderedMemo::new(BUDGET_BYTES)
    }
}

impl RenderedMemo {
    pub fn new(budget_bytes: usize) -> RenderedMemo {
        RenderedMemo {
            envelopes: BytesMemo::new(budget_bytes),
            header_fields: BytesMemo::new(budget_bytes),
        }
    }

    /// The ENVELOPE of `blob` as written before (the parenthesized list).
    pub fn envelope(&self, blob: &BlobId) -> Option<Arc<Vec<u8>>> {
        self.envelopes.get(blob)
    }

    pub fn keep_envelope(&self, blob: BlobId, rendered: Vec<u8>) {
        self.envelopes.keep(blob, Arc::new(rendered));
    }

    /// The top-level header fields of `blob` for the list `key` names, as written before
    /// (the bytes of the section, without the literal's framing).
    pub fn header_fields(&self, blob: &BlobId, key: &FieldsKey) -> Option<Arc<Vec<u8>>> {
        self.header_fields.get(&(*blob, *key))
    }

    pub fn keep_header_fields(&self, blob: BlobId, key: FieldsKey, section: Vec<u8>) {
        self.header_fields.keep((blob, key), Arc::new(section));
    }
}

/// The key of a `HEADER.FIELDS` or `HEADER.FIELDS.NOT` list: field names compare without
/// case, so `(from SUBJECT)` and `(From Subject)` share answers. None for other sections.
pub fn fields_key(text: &SectionText) -> Option<FieldsKey> {
    let SectionText::HeaderFields { names, not } = text else {
        return None;
    };
    let mut hasher = blake3::Hasher::new();
    hasher.update(if *not { b"NOT" } else { b"IN " });
    for name in names {
        hasher.update(b"\0");
        hasher.update(name.to_ascii_lowercase().as_bytes());
    }
    let mut key = [0; 16];
    key.copy_from_slice(&hasher.finalize().as_bytes()[..16]);
    Some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(names: &[&str], not: bool) -> SectionText {
        SectionText::HeaderFields {
            names: names.iter().map(|n| n.to_string()).collect(),
            not,
        }
    }

    #[test]
    fn field_lists_are_told_apart_but_not_by_case() {
        let key = |names: &[&str], not| fields_key(&fields(names, not)).unwrap();
        assert_eq!(
            key(&["From", "Subject"], false),
            key(&["from", "SUBJECT"], false)
        );
        assert_ne!(
            key(&["From", "Subject"], false),
            key(&["From", "Subject"], true)
        );
        assert_ne!(
            key(&["From", "Subject"], false),
            key(&["Subject", "From"], false)
        );
        // Names are separated: "ab" is not "a" then "b".
        assert_ne!(key(&["ab"], false), key(&["a", "b"], false));
        assert_eq!(fields_key(&SectionText::Header), None);
    }

    #[test]
    fn answers_are_kept_by_message_and_list() {
        let memo = RenderedMemo::default();
        let list = fields_key(&fields(&["From"], false)).unwrap();
        memo.keep_envelope([1; 32], b"(NIL)".to_vec());
        memo.keep_header_fields([1; 32], list, b"From: a\r\n\r\n".to_vec());
        assert_eq!(
            memo.envelope(&[1; 32]).as_deref().map(Vec::as_slice),
            Some(&b"(NIL)"[..])
        );
        assert!(memo.envelope(&[2; 32]).is_none());
        let other = fields_key(&fields(&["To"], false)).unwrap();
        assert!(memo.header_fields(&[1; 32], &other).is_none());
        assert!(memo.header_fields(&[1; 32], &list).is_some());
    }
}
