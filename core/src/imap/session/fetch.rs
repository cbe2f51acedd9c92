//! FETCH: message data (flags, dates, sizes, ENVELOPE, BODYSTRUCTURE, body sections and
//! their BINARY decoding), read a batch of bodies at a time; a section fetched without
//! PEEK sets \Seen, committed once after the last batch.

use super::super::command::{FetchItem, SeqSet};
use std::sync::Arc;

use super::super::rendered::{fields_key, FieldsKey, RenderedMemo};
use super::super::response::{flag_list, internal_date, literal};
use super::super::structure::{self, SectionText};
use super::batch::{Bodies, Needs, Progress};
use super::{Flow, Request, Session};
use crate::store::schema::{flags, BlobId, MailEntry};
use crate::store::summary::header_block;
use crate::store::{Changes, FlagChange, FlagMode};

impl Session {
    pub(super) fn fetch(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        items: &[FetchItem],
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Flow {
        if let Some(flow) = self.commit_done(tag, "FETCH completed") {
            return flow;
        }
        // CHANGEDSINCE implies MODSEQ (RFC 7162 3.1.4.1); either turns CONDSTORE on.
        let with_modseq: Vec<FetchItem>;
        let items = if changed_since.is_some() && !items.contains(&FetchItem::ModSeq) {
            with_modseq = items.iter().cloned().chain([FetchItem::ModSeq]).collect();
            &with_modseq[..]
        } else {
            items
        };
        if items.contains(&FetchItem::ModSeq) {
            self.enable_condstore();
        }
        let p = match self.take_progress() {
            Some(p) => p,
            None => {
                if vanished && !self.qresync {
                    self.bad(tag, "VANISHED needs QRESYNC enabled");
                    return Flow::Done;
                }
                if vanished {
                    self.vanished_earlier(set);
                }
                let mut indexes = self.resolve(uid, set);
                if let Some(since) = changed_since {
                    let messages = &self.selected_ref().messages;
                    indexes.retain(|&i| messages.get(i).is_some_and(|(_, e)| e.modseq > since));
                }
                Progress::new(indexes)
            }
        };
        let p = match self.in_batches(p, needs(items), |s, p, end, bodies| {
            s.fetch_batch(p, end, uid, items, bodies)
        }) {
            Ok(p) => p,
            Err(flow) => return flow,
        };
        if !p.seen.is_empty() {
            let mut changes = Changes::new();
            changes.set_flags(
                self.account(),
                self.selected_ref().meta.id,
                p.seen,
                FlagChange {
                    mode: FlagMode::Add,
                    flags: flags::SEEN,
                    keywords: Vec::new(),
                },
            );
            return Flow::Need(Request::Write(changes));
        }
        self.ok(tag, "FETCH completed");
        Flow::Done
    }

    /// Writes the FETCH responses of the messages `p.done..end`, setting \Seen where the
    /// items do (committed once the last batch is written).
    fn fetch_batch(
        &mut self,
        p: &mut Progress,
        end: usize,
        uid: bool,
        items: &[FetchItem],
        bodies: &Bodies,
    ) {
        let read_only = self.selected_ref().read_only;
        let sets_seen = !read_only
            && items
                .iter()
                .any(|i| matches!(i, FetchItem::Section { peek: false, .. }));
        let mut out = std::mem::take(&mut self.io.output);
        let config = self.config.clone();
        let rendered = Rendered::new(&config.rendered, items);
        for &i in p.indexes.get(p.done..end).unwrap_or_default() {
            let Some((msg_uid, mut entry)) = self.selected_ref().messages.get(i).cloned() else {
                continue;
            };
            if sets_seen && entry.flags & flags::SEEN == 0 {
                entry.flags |= flags::SEEN;
                p.seen.push(msg_uid);
                self.selected_mut().messages[i].1.flags = entry.flags;
            }
            entry.flags = self.selected_ref().shown_flags(msg_uid, &entry);
            let body = bodies.get(&entry.blob).map(|b| b.as_slice());
            let message = FetchedMessage {
                seq: i as u32 + 1,
                uid: msg_uid,
                entry: &entry,
                body,
            };
            write_fetch(&mut out, &message, items, uid, sets_seen, &rendered);
        }
        self.io.output = out;
        p.done = end;
    }
}

/// What of each message the items need: the header block answers ENVELOPE and the
/// top-level HEADER, HEADER.FIELDS[.NOT] (RFC822.HEADER) exactly as the whole message
/// does; anything else (a body part, TEXT, BODYSTRUCTURE, BINARY) needs the whole message.
fn needs(items: &[FetchItem]) -> Needs {
    let header_only = |item: &FetchItem| match item {
        FetchItem::Envelope => true,
        FetchItem::Section {
            path, text, binary, ..
        } => {
            path.is_empty()
                && !binary
                && matches!(text, SectionText::Header | SectionText::HeaderFields { .. })
        }
        other => !other.needs_body(),
    };
    if !items.iter().any(FetchItem::needs_body) {
        Needs::Nothing
    } else if items.iter().all(header_only) {
        Needs::Headers
    } else {
        Needs::Bodies
    }
}

/// The answers of one FETCH command that the memo may hold: the field-list key of each
/// item (computed once per command, not per message).
struct Rendered<'a> {
    memo: &'a RenderedMemo,
    keys: Vec<Option<FieldsKey>>,
}

impl<'a> Rendered<'a> {
    fn new(memo: &'a RenderedMemo, items: &[FetchItem]) -> Rendered<'a> {
        let keys = items
            .iter()
            .map(|item| match item {
                FetchItem::Section {
                    path,
                    text,
                    binary: false,
                    ..
                } if path.is_empty() => fields_key(text),
                _ => None,
            })
            .collect();
        Rendered { memo, keys }
    }

    fn key(&self, item: usize) -> Option<FieldsKey> {
        self.keys.get(item).copied().flatten()
    }

    /// What the memo holds for each of `items` of the message `blob`.
    fn known(&self, items: &[FetchItem], blob: BlobId) -> Vec<Option<Arc<Vec<u8>>>> {
        (items.iter().enumerate())
            .map(|(n, item)| match item {
                FetchItem::Envelope => self.memo.envelope(&blob),
                _ => self
                    .key(n)
                    .and_then(|key| self.memo.header_fields(&blob, &key)),
            })
            .collect()
    }
}

/// A message as FETCH writes it.
struct FetchedMessage<'a> {
    seq: u32,
    uid: u32,
    entry: &'a MailEntry,
    /// Its bytes, when an item needs them.
    body: Option<&'a [u8]>,
}

/// One `* n FETCH (...)` response: the UID first when asked for by UID FETCH, the FLAGS
/// last when the command set \Seen and FLAGS was not among the items.
fn write_fetch(
    out: &mut Vec<u8>,
    message: &FetchedMessage<'_>,
    items: &[FetchItem],
    by_uid: bool,
    seen_set: bool,
    rendered: &Rendered<'_>,
) {
    let FetchedMessage {
        seq,
        uid,
        entry,
        body,
    } = *message;
    out.extend_from_slice(format!("* {seq} FETCH (").as_bytes());
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !first {
            out.push(b' ');
        }
        first = false;
    };
    let wants_uid = by_uid || items.contains(&FetchItem::Uid);
    if wants_uid {
        sep(out);
        out.extend_from_slice(format!("UID {uid}").as_bytes());
    }
    // Answers rendered before for this message, by item.
    let known = rendered.known(items, entry.blob);
    // The top-level HEADER and HEADER.FIELDS come from the header block when there is
    // one, unparsed.
    let header_sections = items.iter().zip(&known).any(|(i, known)| {
        known.is_none() && matches!(i, FetchItem::Section { path, text: SectionText::Header | SectionText::HeaderFields { .. }, binary: false, .. } if path.is_empty())
    });
    let block = header_sections && body.and_then(header_block).is_some();
    let unparsed = |path: &[u32], text: &SectionText, binary: bool| {
        block
            && path.is_empty()
            && !binary
            && matches!(text, SectionText::Header | SectionText::HeaderFields { .. })
    };
    // Parse the MIME tree only when an item needs it (not for a whole BODY[]).
    let needs_tree = items.iter().zip(&known).any(|(i, known)| match i {
        _ if known.is_some() => false,
        FetchItem::Envelope | FetchItem::BodyStructure | FetchItem::Body => true,
        FetchItem::BinarySize { path, .. } => !path.is_empty(),
        FetchItem::Section {
            path, text, binary, ..
        } => (!path.is_empty() || *text != SectionText::Full) && !unparsed(path, text, *binary),
        _ => false,
    });
    // ENVELOPE alone needs only the header: parse no more than that.
    let header_only = items.iter().all(|i| {
        !matches!(
            i,
            FetchItem::BodyStructure
                | FetchItem::Body
                | FetchItem::Section { .. }
                | FetchItem::BinarySize { .. }
        )
    });
    // ... and of the header, only the fields ENVELOPE shows.
    let envelope_fields = body.filter(|_| needs_tree && header_only).map(|b| {
        let end = memchr::memmem::find(b, b"\r\n\r\n").map_or(b.len(), |i| i + 4);
        structure::envelope_header(&b[..end])
    });
    let parsed = match (&envelope_fields, body) {
        (Some(fields), _) => structure::parse(fields),
        (None, Some(b)) if needs_tree => structure::parse(b),
        _ => None,
    };
    let mut flags_written = false;
    for (n, item) in items.iter().enumerate() {
        let known = known.get(n).and_then(Option::as_ref);
        match item {
            FetchItem::Uid => {}
            FetchItem::ModSeq => {
                sep(out);
                out.extend_from_slice(format!("MODSEQ ({})", entry.modseq).as_bytes());
            }
            FetchItem::Flags => {
                sep(out);
                out.extend_from_slice(b"FLAGS ");
                flag_list(out, entry.flags, &entry.keywords);
                flags_written = true;
            }
            FetchItem::InternalDate => {
                sep(out);
                out.extend_from_slice(b"INTERNALDATE ");
                out.extend_from_slice(internal_date(entry.internal_date).as_bytes());
            }
            FetchItem::Size => {
                sep(out);
                out.extend_from_slice(format!("RFC822.SIZE {}", entry.size).as_bytes());
            }
            FetchItem::Envelope => {
                sep(out);
                out.extend_from_slice(b"ENVELOPE ");
                match (known, &parsed) {
                    (Some(known), _) => out.extend_from_slice(known),
                    (None, Some(m)) => {
                        let start = out.len();
                        structure::envelope(out, m);
                        if let Some(written) = out.get(start..) {
                            rendered.memo.keep_envelope(entry.blob, written.to_vec());
                        }
                    }
                    (None, None) => {
                        out.extend_from_slice(b"(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)")
                    }
                }
            }
            FetchItem::BodyStructure | FetchItem::Body => {
                sep(out);
                let extended = matches!(item, FetchItem::BodyStructure);
                out.extend_from_slice(if extended {
                    b"BODYSTRUCTURE "
                } else {
                    b"BODY "
                });
                match &parsed {
                    Some(m) => structure::bodystructure(out, m, extended),
                    None => out.extend_from_slice(b"(\"TEXT\" \"PLAIN\" NIL NIL NIL \"7BIT\" 0 0)"),
                }
            }
            FetchItem::BinarySize { name, path } => {
                sep(out);
                let decoded = match (body, &parsed) {
                    (Some(raw), _) if path.is_empty() => Some(raw.len()),
                    (Some(raw), Some(m)) => {
                        structure::binary_section(raw, m, path).map(|d| d.len())
                    }
                    _ => None,
                };
                out.extend_from_slice(format!("{name} {}", decoded.unwrap_or(0)).as_bytes());
            }
            FetchItem::Section {
                name,
                path,
                text,
                partial,
                binary,
                ..
            } => {
                sep(out);
                out.extend_from_slice(name.as_bytes());
                out.push(b' ');
                if *binary {
                    let decoded = match (body, &parsed) {
                        (Some(raw), _) if path.is_empty() => Some(raw.to_vec()),
                        (Some(raw), Some(m)) => structure::binary_section(raw, m, path),
                        _ => None,
                    };
                    let decoded = decoded.map(|d| match partial {
                        Some((start, len)) => partial_of(&d, *start, *len).to_vec(),
                        None => d,
                    });
                    match decoded {
                        // literal8 (RFC 3516) when the content has a NUL.
                        Some(d) if d.contains(&0) => {
                            out.extend_from_slice(format!("~{{{}}}\r\n", d.len()).as_bytes());
                            out.extend_from_slice(&d);
                        }
                        Some(d) => literal(out, &d),
                        None => out.extend_from_slice(b"NIL"),
                    }
                    continue;
                }
                let data = match (body, &parsed) {
                    _ if known.is_some() => known.map(|k| std::borrow::Cow::Borrowed(&k[..])),
                    (Some(raw), _) if unparsed(path, text, false) => {
                        let section = structure::top_header_section(raw, text);
                        if let (Some(s), Some(key)) = (&section, rendered.key(n)) {
                            rendered
                                .memo
                                .keep_header_fields(entry.blob, key, s.to_vec());
                        }
                        section
                    }
                    (Some(raw), Some(m)) => structure::section(raw, m, path, text),
                    (Some(raw), None) if path.is_empty() && *text == SectionText::Full => {
                        Some(std::borrow::Cow::Borrowed(raw))
                    }
                    _ => None,
                };
                match data {
                    Some(d) => {
                        let d: &[u8] = &d;
                        let d = match partial {
                            Some((start, len)) => partial_of(d, *start, *len),
                            None => d,
                        };
                        literal(out, d);
                    }
                    None => out.extend_from_slice(b"NIL"),
                }
            }
        }
    }
    if seen_set && !flags_written {
        sep(out);
        out.extend_from_slice(b"FLAGS ");
        flag_list(out, entry.flags, &entry.keywords);
    }
    out.extend_from_slice(b")\r\n");
}

/// The octets `<start.len>` of a section (RFC 9051 6.4.5): fewer at its end, none
/// past it.
fn partial_of(data: &[u8], start: u32, len: u32) -> &[u8] {
    let from = (start as usize).min(data.len());
    let to = from.saturating_add(len as usize).min(data.len());
    &data[from..to]
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{Harness, MESSAGE};
    use crate::store::schema::flags;

    const MULTIPART: &[u8] = b"Subject: parts\r\nMIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=XX\r\n\r\n\
        --XX\r\nContent-Type: text/plain\r\n\r\npart one\r\n\
        --XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n\
        AAEC\r\n--XX--\r\n";

    #[test]
    fn fetch_writes_the_items_asked_for() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 FETCH 1:2 (UID FLAGS RFC822.SIZE INTERNALDATE)\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (UID 1 FLAGS () RFC822.SIZE 47 INTERNALDATE \"01-Jan-1970 00:00:00 +0000\")\r\n\
             * 2 FETCH (UID 2 FLAGS (\\Seen) RFC822.SIZE 47 INTERNALDATE \"01-Jan-1970 00:00:00 +0000\")\r\n\
             a1 OK FETCH completed\r\n"
        );
        // UID FETCH puts the UID first, even when not asked for.
        let out = h.run("a2 UID FETCH 2 FLAGS\r\n");
        assert_eq!(
            out,
            "* 2 FETCH (UID 2 FLAGS (\\Seen))\r\na2 OK FETCH completed\r\n"
        );
        // A message number past the end is an error (RFC 9051 9); a UID names nothing.
        let out = h.run("a3 FETCH 9 FLAGS\r\na4 UID FETCH 9:10 FLAGS\r\n");
        assert_eq!(
            out,
            "a3 BAD Message number beyond the mailbox\r\na4 OK FETCH completed\r\n"
        );
        assert_eq!(h.commits, 0);
    }

    #[test]
    fn fetch_sections_and_partial() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run(
            "a1 FETCH 1 (BODY.PEEK[HEADER.FIELDS (FROM)] BODY.PEEK[TEXT]<0.5> BODY.PEEK[]<40.100>)\r\n",
        );
        assert_eq!(
            out,
            "* 1 FETCH (BODY[HEADER.FIELDS (FROM)] {21}\r\nFrom: a@b.example\r\n\r\n \
             BODY[TEXT]<0> {5}\r\nhello \
             BODY[]<40> {7}\r\nthere\r\n)\r\n\
             a1 OK FETCH completed\r\n"
        );
        assert_eq!(h.commits, 0, "PEEK sets no flag");
    }

    #[test]
    fn fetch_of_a_part_and_its_binary_decoding() {
        let mut h = Harness::standard();
        h.deliver("INBOX", MULTIPART, 0);
        h.login_select();
        let out = h.run("a1 FETCH 3 (BODY.PEEK[1] BINARY.PEEK[2] BODY.PEEK[2] BODY.PEEK[3])\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (BODY[1] {8}\r\npart one \
             BINARY[2] ~{3}\r\n\x00\x01\x02 \
             BODY[2] {4}\r\nAAEC \
             BODY[3] NIL)\r\n\
             a1 OK FETCH completed\r\n"
        );
    }

    #[test]
    fn fetch_without_peek_sets_seen_once() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 FETCH 1:2 BODY[TEXT]\r\n");
        // Message 2 was \Seen already: its FLAGS are written all the same, as the command
        // sets \Seen; only message 1 is changed.
        assert_eq!(
            out,
            "* 1 FETCH (BODY[TEXT] {13}\r\nhello there\r\n FLAGS (\\Seen))\r\n\
             * 2 FETCH (BODY[TEXT] {13}\r\nhello there\r\n FLAGS (\\Seen))\r\n\
             a1 OK FETCH completed\r\n"
        );
        assert_eq!(h.commits, 1);
        assert!(h
            .messages("INBOX")
            .iter()
            .all(|(_, e)| e.flags == flags::SEEN));
        // Again: nothing left to set, nothing committed; FLAGS asked for comes once.
        let out = h.run("a2 FETCH 1 (FLAGS BODY[TEXT])\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (FLAGS (\\Seen) BODY[TEXT] {13}\r\nhello there\r\n)\r\na2 OK FETCH completed\r\n"
        );
        assert_eq!(h.commits, 1);
    }

    #[test]
    fn fetch_in_examine_sets_no_flag() {
        let mut h = Harness::standard();
        h.login();
        h.run("a1 EXAMINE INBOX\r\n");
        let out = h.run("a2 FETCH 1 BODY[TEXT]\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (BODY[TEXT] {13}\r\nhello there\r\n)\r\na2 OK FETCH completed\r\n"
        );
        assert_eq!(h.commits, 0);
        assert_eq!(h.messages("INBOX")[0].1.flags, 0);
    }

    #[test]
    fn fetch_envelope_of_the_test_message() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 FETCH 1 ENVELOPE\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (ENVELOPE (NIL \"hi\" ((NIL NIL \"a\" \"b.example\")) \
             ((NIL NIL \"a\" \"b.example\")) ((NIL NIL \"a\" \"b.example\")) \
             NIL NIL NIL NIL NIL))\r\na1 OK FETCH completed\r\n"
        );
        assert_eq!(MESSAGE.len(), 47);
    }

    #[test]
    fn header_items_are_the_same_from_the_header_block() {
        use super::super::super::command::FetchItem;
        use super::super::super::structure::{self, SectionText};
        use super::{needs, write_fetch, FetchedMessage, Needs, Rendered, RenderedMemo};
        use crate::store::schema::MailEntry;
        use crate::store::summary::header_block;

        let section = |name: &str, text: SectionText, partial| FetchItem::Section {
            name: name.into(),
            peek: true,
            path: vec![],
            text,
            partial,
            binary: false,
        };
        let fields = |not| SectionText::HeaderFields {
            names: "From To Cc Bcc Subject Date Message-ID Priority X-Priority References \
                    Newsgroups In-Reply-To Content-Type Reply-To"
                .split_whitespace()
                .map(str::to_ascii_uppercase)
                .collect(),
            not,
        };
        let item_sets = [
            vec![FetchItem::Flags, FetchItem::Size, FetchItem::Envelope],
            vec![
                FetchItem::Uid,
                FetchItem::Size,
                FetchItem::Flags,
                section("BODY[HEADER.FIELDS (...)]", fields(false), None),
            ],
            vec![
                section("BODY[HEADER]", SectionText::Header, None),
                section(
                    "BODY[HEADER.FIELDS.NOT (...)]<5>",
                    fields(true),
                    Some((5, 100)),
                ),
                FetchItem::Envelope,
            ],
        ];
        for items in &item_sets {
            assert_eq!(needs(items), Needs::Headers);
        }
        let entry = MailEntry::for_test(0);
        let mut compared = 0;
        for raw in crate::mime::fixtures::sample_messages() {
            let Some(block) = header_block(&raw) else {
                continue;
            };
            compared += 1;
            // Unparsed, the header sections are the parsed ones.
            let parsed = structure::parse(&raw).unwrap();
            for text in [SectionText::Header, fields(false), fields(true)] {
                assert_eq!(
                    structure::top_header_section(&raw, &text),
                    structure::section(&raw, &parsed, &[], &text),
                    "{}",
                    String::from_utf8_lossy(block)
                );
            }
            for items in &item_sets {
                let fetch = |body: &[u8], memo: &RenderedMemo| {
                    let mut out = Vec::new();
                    let m = FetchedMessage {
                        seq: 1,
                        uid: 1,
                        entry: &entry,
                        body: Some(body),
                    };
                    write_fetch(
                        &mut out,
                        &m,
                        items,
                        true,
                        false,
                        &Rendered::new(memo, items),
                    );
                    String::from_utf8_lossy(&out).into_owned()
                };
                let memo = RenderedMemo::default();
                let from_block = fetch(block, &memo);
                let why = String::from_utf8_lossy(block);
                assert_eq!(from_block, fetch(&raw, &RenderedMemo::default()), "{why}");
                // Asked again: the answers rendered the first time, the same bytes.
                assert_eq!(fetch(block, &memo), from_block, "{why}");
            }
        }
        assert!(compared >= 4);
        let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/corpus");
        assert!(!corpus.exists() || compared > 3000, "{compared}");
    }

    #[test]
    fn only_header_items_read_header_blocks() {
        use super::super::super::command::FetchItem;
        use super::super::super::structure::SectionText;
        use super::{needs, Needs};
        let section = |path: Vec<u32>, text, binary| FetchItem::Section {
            name: "X".into(),
            peek: true,
            path,
            text,
            partial: None,
            binary,
        };
        assert_eq!(needs(&[FetchItem::Flags, FetchItem::Uid]), Needs::Nothing);
        assert_eq!(needs(&[FetchItem::Envelope]), Needs::Headers);
        for items in [
            vec![FetchItem::Envelope, FetchItem::BodyStructure],
            vec![FetchItem::Body],
            vec![section(vec![], SectionText::Full, false)],
            vec![section(vec![], SectionText::Text, false)],
            vec![section(vec![1], SectionText::Header, false)],
            vec![section(vec![], SectionText::Header, true)],
            vec![section(vec![1], SectionText::Mime, false)],
        ] {
            assert_eq!(needs(&items), Needs::Bodies, "{items:?}");
        }
    }

    #[test]
    fn header_fetches_ask_for_header_blocks() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 FETCH 1:2 (ENVELOPE BODY.PEEK[HEADER.FIELDS (SUBJECT)])\r\n");
        assert!(
            out.contains("BODY[HEADER.FIELDS (SUBJECT)] {15}\r\nSubject: hi\r\n\r\n)"),
            "{out}"
        );
        assert_eq!(h.header_requests, [1], "the two messages share a blob");
        assert!(h.blob_requests.is_empty());
    }
}
