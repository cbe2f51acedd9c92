//! SORT and THREAD (RFC 5256): the messages a search finds, read a batch at a time like
//! SEARCH, summarised (base subject, dates, first addresses, Message-ID, References), then
//! ordered or threaded by `imap::thread`.

use mail_parser::HeaderValue;

use super::super::command::SearchKey;
use super::super::structure;
use super::super::thread::{self, base_subject, SortKey, Summary};
use super::batch::{Needs, Progress};
use super::search;
use super::{Flow, Session};

/// The References kept per message (the last, nearest ones).
const MAX_REFERENCES: usize = 64;

/// What the command makes of the messages found.
pub(super) enum Order<'a> {
    Sort(&'a [(SortKey, bool)]),
    /// THREAD: REFERENCES (true) or ORDEREDSUBJECT.
    Thread(bool),
}

impl Session {
    pub(super) fn sort(&mut self, tag: &str, uid: bool, order: Order<'_>, key: &SearchKey) -> Flow {
        let p = match self.take_progress() {
            Some(p) => p,
            None => Progress::new((0..self.selected_ref().messages.len()).collect()),
        };
        // ARRIVAL and SIZE are in the index; everything else is in the header.
        let reads_header = match order {
            Order::Sort(criteria) => criteria
                .iter()
                .any(|(k, _)| !matches!(k, SortKey::Arrival | SortKey::Size)),
            Order::Thread(_) => true,
        };
        let needs = match search::needs(key) {
            Needs::Nothing if reads_header => Needs::Headers,
            needs => needs,
        };
        let p = match self.in_batches(p, needs, |s, p, end, bodies| {
            let found = p.hits.len();
            s.search_batch(p, end, key, false, bodies);
            let sel = s.selected_ref();
            for &seq in &p.hits[found..] {
                if let Some((msg_uid, entry)) = sel.messages.get(seq as usize - 1) {
                    let body = bodies.get(&entry.blob).map(|b| b.as_slice());
                    p.summaries.push(summary(seq, *msg_uid, entry, body));
                }
            }
        }) {
            Ok(p) => p,
            Err(flow) => return flow,
        };
        let number = |m: &Summary| if uid { m.uid } else { m.seq };
        match order {
            Order::Sort(criteria) => {
                let sorted = thread::sort(p.summaries, criteria);
                let list: Vec<String> = sorted.iter().map(|m| number(m).to_string()).collect();
                self.line(format!("* SORT {}", list.join(" ")).trim_end());
                self.ok(tag, "SORT completed");
            }
            Order::Thread(references) => {
                let threads = if references {
                    thread::references(&p.summaries, number)
                } else {
                    thread::ordered_subject(&p.summaries, number)
                };
                let mut line = String::from("* THREAD ");
                thread::write_threads(&mut line, &threads);
                self.line(line.trim_end());
                self.ok(tag, "THREAD completed");
            }
        }
        Flow::Done
    }
}

/// What SORT and THREAD read of a message: its index entry, and its header when read.
fn summary(
    seq: u32,
    uid: u32,
    entry: &crate::store::schema::MailEntry,
    body: Option<&[u8]>,
) -> Summary {
    let mut s = Summary {
        seq,
        uid,
        arrival: entry.internal_date,
        size: entry.size,
        date: entry.internal_date,
        ..Summary::default()
    };
    let Some(body) = body else { return s };
    let header_end = memchr::memmem::find(body, b"\r\n\r\n").map_or(body.len(), |i| i + 4);
    let Some(msg) = structure::parse(body.get(..header_end).unwrap_or(body)) else {
        return s;
    };
    if let Some(date) = msg.date() {
        s.date = date.to_timestamp();
    }
    (s.subject, s.is_reply) = base_subject(msg.subject().unwrap_or_default());
    let mailbox = |list: Option<&mail_parser::Address<'_>>| -> String {
        (list.and_then(|a| a.first()))
            .and_then(|a| a.address.as_deref())
            .map(|a| a.split('@').next().unwrap_or_default().to_uppercase())
            .unwrap_or_default()
    };
    s.from = mailbox(msg.from());
    s.to = mailbox(msg.to());
    s.cc = mailbox(msg.cc());
    s.message_id = msg.message_id().unwrap_or_default().to_string();
    let ids = |value: &HeaderValue<'_>| -> Vec<String> {
        match value {
            HeaderValue::Text(t) => vec![t.to_string()],
            HeaderValue::TextList(list) => list.iter().map(|t| t.to_string()).collect(),
            _ => Vec::new(),
        }
    };
    s.references = ids(msg.references());
    if s.references.is_empty() {
        s.references = ids(msg.in_reply_to()).into_iter().take(1).collect();
    }
    // The nearest ancestors are the ones threading needs: a sender's list of thousands
    // is not kept for every message of a large mailbox.
    let keep = s.references.len().saturating_sub(MAX_REFERENCES);
    s.references.drain(..keep);
    s
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Harness;

    fn mailbox() -> Harness {
        let h = Harness::standard();
        let messages: [&[u8]; 4] = [
            b"Message-ID: <a@x>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\nFrom: zed@b.example\r\nSubject: plan\r\n\r\nx\r\n",
            b"Message-ID: <b@x>\r\nReferences: <a@x>\r\nDate: Mon, 2 Mar 2026 12:00:00 +0000\r\nFrom: amy@b.example\r\nSubject: Re: plan\r\n\r\nxx\r\n",
            b"Message-ID: <c@x>\r\nDate: Sun, 1 Mar 2026 09:00:00 +0000\r\nFrom: bob@b.example\r\nSubject: lunch\r\n\r\nxxx\r\n",
            b"Message-ID: <d@x>\r\nIn-Reply-To: <a@x>\r\nDate: Mon, 2 Mar 2026 11:00:00 -0200\r\nFrom: cy@b.example\r\nSubject: RE: [team] plan\r\n\r\nxxxx\r\n",
        ];
        for m in messages {
            h.deliver("INBOX", m, 0);
        }
        h
    }

    #[test]
    fn sort_orders_what_the_search_finds() {
        let mut h = mailbox();
        h.login_select();
        // Messages 1 and 2 (the harness's) have no Date: their internal date (0) is first.
        assert_eq!(
            h.run("a1 SORT (DATE) UTF-8 ALL\r\n"),
            "* SORT 1 2 5 3 4 6\r\na1 OK SORT completed\r\n"
        );
        assert_eq!(
            h.run("a2 UID SORT (REVERSE FROM) US-ASCII FROM b.example\r\n"),
            "* SORT 3 6 5 4 1 2\r\na2 OK SORT completed\r\n"
        );
        assert_eq!(
            h.run("a3 SORT (SUBJECT REVERSE SIZE) UTF-8 NOT SUBJECT hi\r\n"),
            "* SORT 5 6 4 3\r\na3 OK SORT completed\r\n"
        );
    }

    #[test]
    fn thread_by_references_and_by_subject() {
        let mut h = mailbox();
        h.login_select();
        assert_eq!(
            h.run("a1 THREAD REFERENCES UTF-8 NOT SUBJECT hi\r\n"),
            "* THREAD (5)(3 (4)(6))\r\na1 OK THREAD completed\r\n"
        );
        assert_eq!(
            h.run("a2 UID THREAD ORDEREDSUBJECT UTF-8 NOT SUBJECT hi\r\n"),
            "* THREAD (5)(3 (4)(6))\r\na2 OK THREAD completed\r\n"
        );
        let out = h.run("a3 THREAD BOGUS UTF-8 ALL\r\n");
        assert!(out.starts_with("a3 BAD"), "{out}");
    }
}
