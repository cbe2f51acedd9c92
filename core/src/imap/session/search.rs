//! SEARCH (and ESEARCH's `RETURN (ALL)` answer): search keys tested against each
//! selected message, its bodies read a batch at a time when a key needs them.

use super::super::command::{days_from_civil, SearchKey, SearchReturn};
use super::super::structure;
use super::batch::{Bodies, Needs, Progress};
use super::sequence::{compress_set, in_set};
use super::{Flow, Session};
use crate::store::schema::MailEntry;

impl Session {
    pub(super) fn search(
        &mut self,
        tag: &str,
        uid: bool,
        key: &SearchKey,
        returns: Option<SearchReturn>,
    ) -> Flow {
        if key.uses_modseq() {
            self.enable_condstore();
        }
        let p = match self.take_progress() {
            Some(p) => p,
            None => Progress::new((0..self.selected_ref().messages.len()).collect()),
        };
        let p = match self.in_batches(p, needs(key), |s, p, end, bodies| {
            s.search_batch(p, end, key, uid, bodies)
        }) {
            Ok(p) => p,
            Err(flow) => return flow,
        };
        let hits = p.hits;
        let highest_modseq = if key.uses_modseq() {
            let sel = self.selected_ref();
            (hits.iter())
                .filter_map(|&hit| match uid {
                    true => (sel.messages.find(hit).ok()).and_then(|i| sel.messages.get(i)),
                    false => sel.messages.get((hit as usize).wrapping_sub(1)),
                })
                .map(|(_, e)| e.modseq)
                .max()
        } else {
            None
        };
        // IMAP4rev2 answers every SEARCH as ESEARCH with ALL (RFC 9051 6.4.4).
        let returns = returns.or(self.rev2.then_some(SearchReturn {
            all: true,
            ..SearchReturn::default()
        }));
        if let Some(returns) = returns {
            let mut l = format!("* ESEARCH (TAG \"{tag}\")");
            if uid {
                l.push_str(" UID");
            }
            // Hits come in ascending order (sequence numbers and UIDs both).
            if let (true, Some(min)) = (returns.min, hits.first()) {
                l.push_str(&format!(" MIN {min}"));
            }
            if let (true, Some(max)) = (returns.max, hits.last()) {
                l.push_str(&format!(" MAX {max}"));
            }
            if returns.all && !hits.is_empty() {
                l.push_str(" ALL ");
                l.push_str(&compress_set(&hits));
            }
            if returns.count {
                l.push_str(&format!(" COUNT {}", hits.len()));
            }
            if let Some(modseq) = highest_modseq {
                l.push_str(&format!(" MODSEQ {modseq}"));
            }
            self.line(&l);
        } else {
            let list: Vec<String> = hits.iter().map(u32::to_string).collect();
            let mut l = format!("* SEARCH {}", list.join(" "))
                .trim_end()
                .to_string();
            if let Some(modseq) = highest_modseq {
                l.push_str(&format!(" (MODSEQ {modseq})"));
            }
            self.line(&l);
        }
        self.ok(tag, "SEARCH completed");
        Flow::Done
    }

    /// Tests the messages `p.done..end` of a SEARCH.
    pub(super) fn search_batch(
        &self,
        p: &mut Progress,
        end: usize,
        key: &SearchKey,
        uid: bool,
        bodies: &Bodies,
    ) {
        let sel = self.selected_ref();
        let last_uid = sel.messages.last().map_or(0, |(u, _)| *u);
        let count = sel.messages.len() as u32;
        for &i in p.indexes.get(p.done..end).unwrap_or_default() {
            let Some((u, e)) = sel.messages.get(i) else {
                continue;
            };
            let ctx = MatchCtx {
                flags: sel.shown_flags(*u, e),
                seq: i as u32 + 1,
                uid: *u,
                entry: e,
                body: bodies.get(&e.blob).map(|b| b.as_slice()),
                last_uid,
                count,
            };
            if matches(key, &ctx) {
                p.hits.push(if uid { *u } else { i as u32 + 1 });
            }
        }
        p.done = end;
    }
}

/// What of each message `key` needs: header keys (HEADER, FROM, TO, CC, BCC, SUBJECT,
/// SENT*) are answered the same from the header block as from the whole message; BODY
/// and TEXT need the whole message.
pub(super) fn needs(key: &SearchKey) -> Needs {
    fn body(key: &SearchKey) -> bool {
        match key {
            SearchKey::And(v) => v.iter().any(body),
            SearchKey::Or(a, b) => body(a) || body(b),
            SearchKey::Not(a) => body(a),
            SearchKey::Body(_) | SearchKey::Text(_) => true,
            _ => false,
        }
    }
    if !key.needs_body() {
        Needs::Nothing
    } else if body(key) {
        Needs::Bodies
    } else {
        Needs::Headers
    }
}

/// What a search key is tested against.
struct MatchCtx<'a> {
    /// The flags as the session shows them (\Recent included).
    flags: u32,
    seq: u32,
    uid: u32,
    entry: &'a MailEntry,
    body: Option<&'a [u8]>,
    last_uid: u32,
    count: u32,
}

/// Whether `needle` is in `hay`, case-insensitively.
fn contains_ci(hay: &[u8], needle: &str) -> bool {
    let needle = needle.to_lowercase();
    if needle.is_empty() {
        return true;
    }
    String::from_utf8_lossy(hay)
        .to_lowercase()
        .contains(&needle)
}

fn matches(key: &SearchKey, m: &MatchCtx<'_>) -> bool {
    let day = m.entry.internal_date.div_euclid(86400);
    // The Date header's own calendar date, in its own zone (RFC 9051 6.4.4: "disregarding
    // time and timezone"), not converted to UTC.
    let sent_day = || {
        m.body
            .and_then(structure::parse)
            .and_then(|msg| {
                msg.date().map(|d| {
                    days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day))
                })
            })
            .unwrap_or(day)
    };
    match key {
        SearchKey::All => true,
        SearchKey::None => false,
        SearchKey::ModSeq(since) => m.entry.modseq >= *since,
        SearchKey::And(keys) => keys.iter().all(|k| matches(k, m)),
        SearchKey::Or(a, b) => matches(a, m) || matches(b, m),
        SearchKey::Not(a) => !matches(a, m),
        SearchKey::Seq(set) => in_set(m.seq, set, m.count),
        SearchKey::Uid(set) => in_set(m.uid, set, m.last_uid),
        SearchKey::Flag(bit, on) => (m.flags & bit != 0) == *on,
        SearchKey::Keyword(k, on) => {
            m.entry.keywords.iter().any(|x| x.eq_ignore_ascii_case(k)) == *on
        }
        SearchKey::Larger(n) => m.entry.size > *n,
        SearchKey::Smaller(n) => m.entry.size < *n,
        SearchKey::Before(d) => day < *d,
        SearchKey::On(d) => day == *d,
        SearchKey::Since(d) => day >= *d,
        SearchKey::SentBefore(d) => sent_day() < *d,
        SearchKey::SentOn(d) => sent_day() == *d,
        SearchKey::SentSince(d) => sent_day() >= *d,
        SearchKey::Header(field, value) => m.body.is_some_and(|body| {
            header_contains(body, field, value) || address_contains(body, field, value)
        }),
        SearchKey::Body(s) => m.body.is_some_and(|b| {
            let start = memchr::memmem::find(b, b"\r\n\r\n").map_or(b.len(), |i| i + 4);
            contains_ci(&b[start..], s)
        }),
        SearchKey::Text(s) => m.body.is_some_and(|b| contains_ci(b, s)),
    }
}

/// Whether an address of the field `field` (FROM, TO, CC, BCC) has `value` in its
/// decoded display name or its address, case-insensitively.
fn address_contains(body: &[u8], field: &str, value: &str) -> bool {
    if !matches!(field, "FROM" | "TO" | "CC" | "BCC") {
        return false;
    }
    let Some(msg) = structure::parse(body) else {
        return false;
    };
    let list = match field {
        "FROM" => msg.from(),
        "TO" => msg.to(),
        "CC" => msg.cc(),
        "BCC" => msg.bcc(),
        _ => return false,
    };
    let needle = value.to_lowercase();
    let hit = |name: Option<&str>, address: Option<&str>| {
        [name, address]
            .into_iter()
            .flatten()
            .any(|t| t.to_lowercase().contains(&needle))
    };
    match list {
        Some(mail_parser::Address::List(list)) => list
            .iter()
            .any(|a| hit(a.name.as_deref(), a.address.as_deref())),
        Some(mail_parser::Address::Group(groups)) => groups.iter().any(|g| {
            hit(g.name.as_deref(), None)
                || g.addresses
                    .iter()
                    .any(|a| hit(a.name.as_deref(), a.address.as_deref()))
        }),
        None => false,
    }
}

/// Whether a header field `field` of the message (unfolded) contains `value`. Works on
/// the bytes, decoding only the fields named `field` (splitting at ASCII bytes, so each
/// piece decodes as it would within the whole).
fn header_contains(body: &[u8], field: &str, value: &str) -> bool {
    let header_end = memchr::memmem::find(body, b"\r\n\r\n").map_or(body.len(), |i| i + 2);
    let header = &body[..header_end];
    let named = |name: &[u8]| {
        if name.is_ascii() {
            name.trim_ascii().eq_ignore_ascii_case(field.as_bytes())
        } else {
            String::from_utf8_lossy(name)
                .trim()
                .eq_ignore_ascii_case(field)
        }
    };
    // The value of the field being read, unfolded, when it is named `field`.
    let mut current: Option<Vec<u8>> = None;
    // Lines end at CRLF (a bare LF is part of its line). One pass over the line feeds:
    // a substring search per line cost more than the rest of the search.
    let mut ends = memchr::memchr_iter(b'\n', header)
        .filter(|&i| i > 0 && header.get(i - 1) == Some(&b'\r'))
        .map(|i| i - 1)
        .chain([header.len()]);
    let mut start = 0;
    while start <= header.len() {
        let Some(end) = ends.next() else { break };
        let line = header.get(start..end).unwrap_or_default();
        start = end + 2;
        if line.starts_with(b" ") || line.starts_with(b"\t") {
            if let Some(v) = current.as_mut() {
                v.extend_from_slice(line);
            }
            continue;
        }
        if let Some(v) = current.take() {
            if value_contains(&v, value) {
                return true;
            }
        }
        if let Some(colon) = memchr::memchr(b':', line) {
            if named(&line[..colon]) {
                current = Some(line[colon + 1..].to_vec());
            }
        }
    }
    current.is_some_and(|v| value_contains(&v, value))
}

/// Whether a header field's raw value has `value` in it, as written or with its RFC 2047
/// encoded words decoded (RFC 9051 6.4.4 searches the decoded text).
fn value_contains(raw: &[u8], value: &str) -> bool {
    contains_ci(raw, value)
        || (memchr::memmem::find(raw, b"=?").is_some()
            && contains_ci(crate::mime::decode_encoded_words(raw).as_bytes(), value))
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Harness;
    use crate::store::schema::flags;

    /// `header_contains` as it was, on the whole header decoded: the reference.
    fn header_contains_reference(body: &[u8], field: &str, value: &str) -> bool {
        let header_end = memchr::memmem::find(body, b"\r\n\r\n").map_or(body.len(), |i| i + 2);
        let header = &body[..header_end];
        let mut found = false;
        let text = String::from_utf8_lossy(header);
        let mut current: Option<(String, String)> = None;
        let mut check = |name: &str, val: &str| {
            if name.eq_ignore_ascii_case(field) && super::contains_ci(val.as_bytes(), value) {
                found = true;
            }
        };
        for line in text.split("\r\n") {
            if line.starts_with(' ') || line.starts_with('\t') {
                if let Some((_, v)) = current.as_mut() {
                    v.push_str(line);
                }
                continue;
            }
            if let Some((n, v)) = current.take() {
                check(&n, &v);
            }
            if let Some((n, v)) = line.split_once(':') {
                current = Some((n.trim().to_string(), v.to_string()));
            }
        }
        if let Some((n, v)) = current.take() {
            check(&n, &v);
        }
        found
    }

    #[test]
    fn header_contains_answers_as_before() {
        let odd: &[&[u8]] = &[
            b"Subject: caf\xc3\xa9 \xff\r\n au lait\r\nX: y\r\n\r\nbody",
            b"\xc2\xa0Subject : spaced\r\nno colon line\r\n continued\r\nSubject:second\r\n\r\n",
            b"Subject: the end",
        ];
        let mut messages: Vec<Vec<u8>> = odd.iter().map(|m| m.to_vec()).collect();
        messages.extend(crate::mime::fixtures::sample_messages());
        let probes = [
            ("SUBJECT", "the"),
            ("SUBJECT", "caf\u{e9} \u{fffd} au"),
            ("SUBJECT", "spaced"),
            ("SUBJECT", "second"),
            ("SUBJECT", "continued"),
            ("SUBJECT", "end"),
            ("RECEIVED", "by"),
            ("FROM", "@"),
            ("X-MAILER", ""),
            ("MESSAGE-ID", "<"),
            ("CONTENT-TYPE", "text/plain"),
        ];
        for m in &messages {
            for (field, value) in probes {
                assert_eq!(
                    super::header_contains(m, field, value),
                    header_contains_reference(m, field, value),
                    "{field} {value} {}",
                    String::from_utf8_lossy(m)
                );
            }
        }
    }

    /// The standard INBOX (two short messages, the second \Seen) and a third, larger one,
    /// \Flagged, with a folded Subject, sent on 2 January 2024.
    fn three() -> Harness {
        let h = Harness::standard();
        let uid = h.deliver(
            "INBOX",
            b"Date: Tue, 2 Jan 2024 10:00:00 +0000\r\nSubject: quarterly\r\n report\r\n\
              From: Zed <z@b.example>\r\n\r\nthe numbers are in\r\n",
            flags::FLAGGED,
        );
        assert_eq!(uid, 3);
        h
    }

    #[test]
    fn search_by_flags_sizes_and_numbers() {
        let mut h = three();
        h.login_select();
        let out = h.run(
            "a1 SEARCH UNSEEN\r\na2 SEARCH SEEN\r\na3 SEARCH FLAGGED NOT SEEN\r\n\
             a4 SEARCH LARGER 50\r\na5 SEARCH SMALLER 50\r\na6 SEARCH OR 1 3\r\n\
             a7 SEARCH 2:*\r\na8 UID SEARCH UID 2:3\r\na9 SEARCH ALL\r\n",
        );
        assert_eq!(
            out,
            "* SEARCH 1 3\r\na1 OK SEARCH completed\r\n\
             * SEARCH 2\r\na2 OK SEARCH completed\r\n\
             * SEARCH 3\r\na3 OK SEARCH completed\r\n\
             * SEARCH 3\r\na4 OK SEARCH completed\r\n\
             * SEARCH 1 2\r\na5 OK SEARCH completed\r\n\
             * SEARCH 1 3\r\na6 OK SEARCH completed\r\n\
             * SEARCH 2 3\r\na7 OK SEARCH completed\r\n\
             * SEARCH 2 3\r\na8 OK SEARCH completed\r\n\
             * SEARCH 1 2 3\r\na9 OK SEARCH completed\r\n"
        );
        assert!(h.blob_requests.is_empty(), "no key here needs a body");
    }

    #[test]
    fn search_by_header_text_and_date() {
        let mut h = three();
        h.login_select();
        let out = h.run(
            "a1 SEARCH SUBJECT REPORT\r\na2 SEARCH FROM zed\r\na3 SEARCH BODY numbers\r\n\
             a4 SEARCH BODY subject\r\na5 SEARCH TEXT subject\r\na6 SEARCH SENTON 2-Jan-2024\r\n\
             a7 SEARCH SENTBEFORE 2-Jan-2024\r\na8 SEARCH SINCE 1-Jan-1970\r\n",
        );
        assert_eq!(
            out,
            "* SEARCH 3\r\na1 OK SEARCH completed\r\n\
             * SEARCH 3\r\na2 OK SEARCH completed\r\n\
             * SEARCH 3\r\na3 OK SEARCH completed\r\n\
             * SEARCH\r\na4 OK SEARCH completed\r\n\
             * SEARCH 1 2 3\r\na5 OK SEARCH completed\r\n\
             * SEARCH 3\r\na6 OK SEARCH completed\r\n\
             * SEARCH 1 2\r\na7 OK SEARCH completed\r\n\
             * SEARCH 1 2 3\r\na8 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn esearch_answers_with_a_set() {
        let mut h = three();
        h.login_select();
        let out = h.run(
            "a1 SEARCH RETURN (ALL) NOT FLAGGED\r\na2 UID SEARCH RETURN () KEYWORD $Nothing\r\n",
        );
        assert_eq!(
            out,
            "* ESEARCH (TAG \"a1\") ALL 1:2\r\na1 OK SEARCH completed\r\n\
             * ESEARCH (TAG \"a2\") UID\r\na2 OK SEARCH completed\r\n"
        );
        // Once IMAP4rev2 is enabled, every SEARCH answers so.
        let out = h.run("a3 ENABLE IMAP4rev2\r\na4 UID SEARCH 1,3\r\n");
        assert_eq!(
            out,
            "* ENABLED IMAP4rev2\r\na3 OK ENABLE completed\r\n\
             * ESEARCH (TAG \"a4\") UID ALL 1,3\r\na4 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn search_return_gives_what_was_asked() {
        let mut h = three();
        h.login_select();
        let out = h.run(
            "a1 SEARCH RETURN (MIN MAX COUNT) ALL\r\n\
             a2 UID SEARCH RETURN (COUNT) KEYWORD $Nothing\r\n\
             a3 SEARCH RETURN (MIN ALL) 2:*\r\n",
        );
        assert_eq!(
            out,
            "* ESEARCH (TAG \"a1\") MIN 1 MAX 3 COUNT 3\r\na1 OK SEARCH completed\r\n\
             * ESEARCH (TAG \"a2\") UID COUNT 0\r\na2 OK SEARCH completed\r\n\
             * ESEARCH (TAG \"a3\") MIN 2 ALL 2:3\r\na3 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn search_uid_takes_sets_with_a_star() {
        let mut h = three();
        h.login_select();
        let out = h.run("a1 UID SEARCH UID 2:*\r\na2 SEARCH UID *\r\n");
        assert_eq!(
            out,
            "* SEARCH 2 3\r\na1 OK SEARCH completed\r\n\
             * SEARCH 3\r\na2 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn sent_dates_are_the_date_header_in_its_own_zone_and_from_matches_names() {
        let h = Harness::standard();
        // 23:30 on 1 December in California is already 2 December in UTC.
        h.deliver(
            "INBOX",
            b"Date: Tue, 1 Dec 2026 23:30:00 -0800\r\nFrom: =?utf-8?q?J=C3=BCrgen_M?= <jm@c.example>\r\n\
              To: list: a@d.example;\r\nSubject: late\r\n\r\nx\r\n",
            0,
        );
        let mut h = h;
        h.login_select();
        let out = h.run(
            "a1 SEARCH SENTON 1-Dec-2026\r\na2 SEARCH SENTBEFORE 2-Dec-2026 SENTSINCE 1-Dec-2026\r\n\
             a3 SEARCH FROM \"rgen m\"\r\na4 SEARCH FROM C.EXAMPLE\r\na5 SEARCH TO a@d\r\n",
        );
        assert_eq!(
            out,
            "* SEARCH 3\r\na1 OK SEARCH completed\r\n\
             * SEARCH 3\r\na2 OK SEARCH completed\r\n\
             * SEARCH 3\r\na3 OK SEARCH completed\r\n\
             * SEARCH 3\r\na4 OK SEARCH completed\r\n\
             * SEARCH 3\r\na5 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn header_keys_are_the_same_from_the_header_block() {
        use super::super::super::command::SearchKey;
        use super::{matches, needs, MatchCtx, Needs};
        use crate::store::schema::MailEntry;
        use crate::store::summary::header_block;
        let day = |y, m, d| super::days_from_civil(y, m, d);
        let keys = [
            SearchKey::Header("SUBJECT".into(), "the".into()),
            SearchKey::Header("SUBJECT".into(), "e".into()),
            SearchKey::Header("FROM".into(), "a".into()),
            SearchKey::Header("FROM".into(), ".com".into()),
            SearchKey::Header("TO".into(), "e".into()),
            SearchKey::Header("CC".into(), "x".into()),
            SearchKey::Header("BCC".into(), "b".into()),
            SearchKey::Header("RECEIVED".into(), "by".into()),
            SearchKey::Header("X-MAILER".into(), "".into()),
            SearchKey::SentBefore(day(2003, 1, 1)),
            SearchKey::SentOn(day(2002, 8, 22)),
            SearchKey::SentSince(day(2002, 9, 1)),
        ];
        for k in &keys {
            assert_eq!(needs(k), Needs::Headers);
        }
        assert_eq!(
            needs(&SearchKey::Or(
                Box::new(keys[0].clone()),
                Box::new(SearchKey::Text("x".into()))
            )),
            Needs::Bodies
        );
        assert_eq!(needs(&SearchKey::All), Needs::Nothing);
        let entry = MailEntry {
            blob: [0; 32],
            size: 1,
            internal_date: 1_030_000_000,
            flags: 0,
            keywords: Vec::new(),
            modseq: 1,
            spam_score: None,
        };
        let mut hits = 0;
        for raw in crate::mime::fixtures::sample_messages() {
            let Some(block) = header_block(&raw) else {
                continue;
            };
            for k in &keys {
                let test = |body: &[u8]| {
                    let ctx = MatchCtx {
                        flags: 0,
                        seq: 1,
                        uid: 1,
                        entry: &entry,
                        body: Some(body),
                        last_uid: 1,
                        count: 1,
                    };
                    matches(k, &ctx)
                };
                let whole = test(&raw);
                assert_eq!(
                    test(block),
                    whole,
                    "{k:?} {}",
                    String::from_utf8_lossy(block)
                );
                hits += usize::from(whole);
            }
        }
        assert!(hits > 0);
    }
}
