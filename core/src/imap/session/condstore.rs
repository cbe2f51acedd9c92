//! CONDSTORE and QRESYNC (RFC 7162): modification sequences shown to a session that
//! enabled them (`ENABLE`, or a command that uses them), the HIGHESTMODSEQ of SELECT, the
//! resynchronisation of `SELECT ... (QRESYNC (...))`, and VANISHED.
//!
//! Expunged messages leave no record behind, so VANISHED (EARLIER) names every UID of the
//! client's set, below UIDNEXT, that is not in the mailbox: RFC 7162 3.2.5.2 allows UIDs
//! expunged before the client's modification sequence to be reported again (the client
//! ignores those it no longer has).

use super::super::command::{Qresync, SeqSet};
use super::super::response::flag_list;
use super::response_code::{ResponseCode, Status};
use super::{Session, State};

impl Session {
    /// A command used modification sequences: they are shown from now on (RFC 7162 3.1).
    pub(super) fn enable_condstore(&mut self) {
        self.condstore = true;
    }

    /// SELECT's `* OK [HIGHESTMODSEQ n]`, once CONDSTORE is on.
    pub(super) fn highest_modseq_line(&mut self, highest: u64) {
        if self.condstore {
            let code = ResponseCode::HighestModSeq(highest);
            self.untagged(Status::Ok, code, "Highest");
        }
    }

    /// `* OK [CLOSED]` when a SELECT replaces a selected mailbox, for clients that ask to
    /// be told (QRESYNC, IMAP4rev2).
    pub(super) fn closed_line(&mut self) {
        if matches!(self.state, State::Selected(_)) && (self.qresync || self.rev2) {
            self.untagged(Status::Ok, ResponseCode::Closed, "Previous mailbox closed");
        }
    }

    /// After SELECT with QRESYNC (and the client's UIDVALIDITY still right): what it
    /// missed, as `* VANISHED (EARLIER)` and a FETCH (UID, FLAGS, MODSEQ) of every message
    /// changed since its modification sequence.
    pub(super) fn resync(&mut self, q: &Qresync) {
        let State::Selected(sel) = &self.state else {
            return;
        };
        if sel.meta.uidvalidity != q.uidvalidity {
            return;
        }
        let known = q.known_uids.clone().unwrap_or_else(|| vec![(1, u32::MAX)]);
        self.vanished_earlier(&known);
        let sel = self.selected_ref();
        let last = sel.meta.uidnext.saturating_sub(1);
        let mut out = Vec::new();
        for (i, (uid, entry)) in sel.messages.iter().enumerate() {
            if entry.modseq > q.modseq && super::sequence::in_set(*uid, &known, last) {
                out.extend_from_slice(format!("* {} FETCH (UID {uid} FLAGS ", i + 1).as_bytes());
                flag_list(&mut out, sel.shown_flags(*uid, entry), &entry.keywords);
                out.extend_from_slice(format!(" MODSEQ ({}))\r\n", entry.modseq).as_bytes());
            }
        }
        self.io.output.extend_from_slice(&out);
    }

    /// `* VANISHED (EARLIER) uids`: the UIDs of `set` below UIDNEXT that are not in the
    /// selected mailbox (nothing when there are none).
    pub(super) fn vanished_earlier(&mut self, set: &SeqSet) {
        let sel = self.selected_ref();
        let present: Vec<u32> = sel.messages.iter().map(|(u, _)| *u).collect();
        let gone = missing(set, sel.meta.uidnext.saturating_sub(1), &present);
        if !gone.is_empty() {
            self.line(&format!("* VANISHED (EARLIER) {gone}"));
        }
    }
}

/// The numbers of `set` (`*` being `last`), from 1 to `last`, that are not in `present`
/// (sorted), as a set: ranges, so that a large set costs no more than `present`.
fn missing(set: &SeqSet, last: u32, present: &[u32]) -> String {
    let star = |n: u32| if n == u32::MAX { last } else { n };
    let mut ranges: Vec<(u32, u32)> = set
        .iter()
        .map(|&(a, b)| (star(a), star(b)))
        .map(|(a, b)| (a.min(b).max(1), a.max(b).min(last)))
        .filter(|(lo, hi)| lo <= hi)
        .collect();
    ranges.sort_unstable();
    let mut merged: Vec<(u32, u32)> = Vec::new();
    for (lo, hi) in ranges {
        match merged.last_mut() {
            Some((_, end)) if lo <= end.saturating_add(1) => *end = (*end).max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    let mut out = Vec::new();
    for (lo, hi) in merged {
        let mut next = lo;
        let from = present.partition_point(|u| *u < lo);
        for &uid in &present[from..] {
            if uid > hi {
                break;
            }
            if uid > next {
                out.push((next, uid - 1));
            }
            next = uid.saturating_add(1);
        }
        if next <= hi {
            out.push((next, hi));
        }
    }
    let parts: Vec<String> = (out.into_iter())
        .map(|(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}:{b}")
            }
        })
        .collect();
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::missing;

    #[test]
    fn missing_numbers_are_written_as_ranges() {
        assert_eq!(missing(&vec![(1, u32::MAX)], 10, &[2, 3, 7]), "1,4:6,8:10");
        assert_eq!(missing(&vec![(1, u32::MAX)], 3, &[1, 2, 3]), "");
        assert_eq!(missing(&vec![(5, 2), (9, 9)], 8, &[3]), "2,4:5");
        assert_eq!(missing(&vec![(1, 4), (3, 6)], 100, &[]), "1:6");
        assert_eq!(
            missing(&vec![(1, u32::MAX)], 4_000_000_000, &[1]),
            "2:4000000000"
        );
        assert_eq!(missing(&vec![(1, 5)], 0, &[]), "");
    }
}

#[cfg(test)]
mod session_tests {
    use super::super::test_support::{expunge, set_flags, Harness};
    use crate::store::schema::flags;

    /// INBOX as the harness makes it: created (1), two messages appended (2, 3).
    fn condstore_session() -> Harness {
        let mut h = Harness::standard();
        h.login();
        assert_eq!(
            h.run("e ENABLE CONDSTORE\r\n"),
            "* ENABLED CONDSTORE\r\ne OK ENABLE completed\r\n"
        );
        let out = h.run("s SELECT INBOX\r\n");
        assert!(out.contains("* OK [HIGHESTMODSEQ 3] Highest\r\n"), "{out}");
        h
    }

    #[test]
    fn modification_sequences_are_fetched_stored_and_searched() {
        let mut h = condstore_session();
        assert_eq!(
            h.run("a1 FETCH 1:* (FLAGS MODSEQ)\r\n"),
            "* 1 FETCH (FLAGS () MODSEQ (2))\r\n* 2 FETCH (FLAGS (\\Seen) MODSEQ (3))\r\n\
             a1 OK FETCH completed\r\n"
        );
        assert_eq!(
            h.run("a2 STORE 1 +FLAGS (\\Flagged)\r\n"),
            "* 1 FETCH (FLAGS (\\Flagged) MODSEQ (4))\r\na2 OK STORE completed\r\n"
        );
        assert_eq!(
            h.run("a3 FETCH 1:* (FLAGS) (CHANGEDSINCE 3)\r\n"),
            "* 1 FETCH (FLAGS (\\Flagged) MODSEQ (4))\r\na3 OK FETCH completed\r\n"
        );
        // Message 1 changed after 3: left alone, and said so.
        assert_eq!(
            h.run("a4 UID STORE 1,2 (UNCHANGEDSINCE 3) +FLAGS (\\Answered)\r\n"),
            "* 2 FETCH (UID 2 FLAGS (\\Seen \\Answered) MODSEQ (5))\r\n\
             a4 OK [MODIFIED 1] Conditional STORE failed\r\n"
        );
        assert_eq!(
            h.run("a5 STORE 1 (UNCHANGEDSINCE 2) -FLAGS (\\Flagged)\r\n"),
            "a5 OK [MODIFIED 1] Conditional STORE failed\r\n"
        );
        assert_eq!(
            h.run("a6 SEARCH MODSEQ 5\r\n"),
            "* SEARCH 2 (MODSEQ 5)\r\na6 OK SEARCH completed\r\n"
        );
        assert_eq!(
            h.run("a7 SEARCH RETURN (COUNT) MODSEQ \"/flags/\\\\seen\" all 4\r\n"),
            "* ESEARCH (TAG \"a7\") COUNT 2 MODSEQ 5\r\na7 OK SEARCH completed\r\n"
        );
        // Silent: only the new MODSEQ.
        assert_eq!(
            h.run("a8 STORE 2 -FLAGS.SILENT (\\Answered)\r\n"),
            "* 2 FETCH (MODSEQ (6))\r\na8 OK STORE completed\r\n"
        );
        // Another session's change arrives with its MODSEQ.
        set_flags(h.store(), "INBOX", &[1], flags::DRAFT);
        assert_eq!(
            h.run("a9 NOOP\r\n"),
            "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Draft) MODSEQ (7))\r\na9 OK NOOP completed\r\n"
        );
        let out = h.run("b1 STATUS INBOX (HIGHESTMODSEQ)\r\n");
        assert!(
            out.starts_with("* STATUS \"INBOX\" (HIGHESTMODSEQ 7)\r\n"),
            "{out}"
        );
    }

    #[test]
    fn condstore_is_off_until_asked_for() {
        let mut h = Harness::standard();
        h.login();
        let out = h.run("s SELECT INBOX\r\n");
        assert!(!out.contains("HIGHESTMODSEQ"), "{out}");
        assert_eq!(
            h.run("a1 STORE 1 +FLAGS (\\Flagged)\r\n"),
            "* 1 FETCH (FLAGS (\\Flagged))\r\na1 OK STORE completed\r\n"
        );
        // SELECT ... (CONDSTORE) turns it on.
        let out = h.run("s2 SELECT INBOX (CONDSTORE)\r\n");
        assert!(out.contains("* OK [HIGHESTMODSEQ 4] Highest\r\n"), "{out}");
        // QRESYNC must be enabled before SELECT uses it.
        let out = h.run("s3 SELECT INBOX (QRESYNC (7 1))\r\n");
        assert!(out.starts_with("s3 BAD"), "{out}");
    }

    #[test]
    fn qresync_tells_what_was_missed_and_expunges_as_vanished() {
        let mut a = Harness::standard();
        a.login();
        a.run("e ENABLE QRESYNC IMAP4rev2\r\n");
        a.run("s SELECT INBOX\r\n");
        // Meanwhile, elsewhere: UID 2 flagged (4), UID 1 expunged (5), UID 3 came (6).
        set_flags(a.store(), "INBOX", &[2], flags::FLAGGED);
        expunge(a.store(), "INBOX", &[1]);
        a.deliver("INBOX", b"Subject: new\r\n\r\nx\r\n", 0);

        let mut b = a.another();
        b.login();
        assert_eq!(
            b.run("e ENABLE QRESYNC IMAP4rev2\r\n"),
            "* ENABLED QRESYNC IMAP4rev2\r\ne OK ENABLE completed\r\n"
        );
        let out = b.run("s SELECT INBOX (QRESYNC (7 3))\r\n");
        assert!(out.contains("* OK [HIGHESTMODSEQ 6] Highest\r\n"), "{out}");
        let resync = "* VANISHED (EARLIER) 1\r\n\
             * 1 FETCH (UID 2 FLAGS (\\Seen \\Flagged) MODSEQ (4))\r\n\
             * 2 FETCH (UID 3 FLAGS () MODSEQ (6))\r\n\
             s OK [READ-WRITE] SELECT completed\r\n";
        assert!(out.ends_with(resync), "{out}");
        // Known UIDs limit it; another UIDVALIDITY means a full resync: nothing here.
        let out = b.run("s2 SELECT INBOX (QRESYNC (7 5 3:9))\r\n");
        assert!(
            out.starts_with("* OK [CLOSED] Previous mailbox closed\r\n"),
            "{out}"
        );
        assert!(!out.contains("VANISHED"), "{out}");
        assert!(
            out.contains("* 2 FETCH (UID 3 FLAGS () MODSEQ (6))\r\n"),
            "{out}"
        );
        assert!(!out.contains("UID 2 FLAGS"), "{out}");
        let out = b.run("s3 SELECT INBOX (QRESYNC (8 1))\r\n");
        assert!(!out.contains("VANISHED") && !out.contains("FETCH"), "{out}");

        // The session that was there learns it as VANISHED, not EXPUNGE.
        let out = a.run("a1 NOOP\r\n");
        assert!(out.starts_with("* VANISHED 1\r\n"), "{out}");
        assert!(!out.contains("EXPUNGE"), "{out}");
        assert_eq!(
            a.run("a2 UID FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)\r\n"),
            "* VANISHED (EARLIER) 1\r\n* 2 FETCH (UID 3 FLAGS () MODSEQ (6))\r\n\
             a2 OK FETCH completed\r\n"
        );
        a.run("a3 STORE 1 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            a.run("a4 EXPUNGE\r\n"),
            "* VANISHED 2\r\na4 OK EXPUNGE completed\r\n"
        );
        // VANISHED needs UID FETCH and CHANGEDSINCE.
        let out = a.run("a5 FETCH 1:* (FLAGS) (CHANGEDSINCE 4 VANISHED)\r\n");
        assert!(out.starts_with("a5 BAD"), "{out}");
    }
}
