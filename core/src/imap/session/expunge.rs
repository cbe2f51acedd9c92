//! Removing messages marked \Deleted, and leaving the mailbox: EXPUNGE, UID EXPUNGE
//! (RFC 4315), CLOSE (which expunges silently) and UNSELECT (which does not).

use super::super::command::SeqSet;
use super::response_code::ResponseCode;
use super::sequence::compress_set;
use super::{Flow, Request, Session, State};
use crate::store::schema::flags;
use crate::store::Changes;

impl Session {
    /// EXPUNGE, or UID EXPUNGE with `uids`.
    pub(super) fn expunge_command(&mut self, tag: &str, uids: Option<&SeqSet>) -> Flow {
        if self.selected_ref().read_only {
            self.no(tag, ResponseCode::ReadOnly, "Mailbox is read-only");
            return Flow::Done;
        }
        self.expunge(tag, uids, false).unwrap_or(Flow::Done)
    }

    /// CLOSE: expunges (read-write only, telling the client nothing), then unselects.
    pub(super) fn close(&mut self, tag: &str) -> Flow {
        if !self.selected_ref().read_only {
            if let Some(flow) = self.expunge(tag, None, true) {
                return flow;
            }
        }
        self.state = State::Authenticated;
        self.ok(tag, "CLOSE completed");
        Flow::Done
    }

    pub(super) fn unselect(&mut self, tag: &str) {
        self.state = State::Authenticated;
        self.ok(tag, "UNSELECT completed");
    }

    /// Removes the messages (of `uids`, or all) marked \Deleted. Silent (for CLOSE), it
    /// writes nothing on success and returns None once done; else the tagged answer.
    fn expunge(&mut self, tag: &str, uids: Option<&SeqSet>, silent: bool) -> Option<Flow> {
        if let Some(result) = self.committed() {
            let removed = match result {
                Ok(applied) => applied.removed,
                Err(e) => {
                    self.commit_failed(tag, &e);
                    return Some(Flow::Done);
                }
            };
            let lines = self.forget(&removed);
            if silent {
                return None;
            }
            for l in lines {
                self.line(&l);
            }
            self.ok(tag, "EXPUNGE completed");
            return Some(Flow::Done);
        }
        let sel = self.selected_ref();
        let in_set: Vec<usize> = match uids {
            Some(set) => self.resolve(true, set),
            None => (0..sel.messages.len()).collect(),
        };
        let doomed: Vec<u32> = in_set
            .into_iter()
            .map(|i| &sel.messages[i])
            .filter(|(_, e)| e.flags & flags::DELETED != 0)
            .map(|(u, _)| *u)
            .collect();
        if doomed.is_empty() {
            if silent {
                return None;
            }
            self.ok(tag, "EXPUNGE completed");
            return Some(Flow::Done);
        }
        // The store removes those still marked \Deleted when it commits.
        let mut changes = Changes::new();
        changes.expunge(self.account(), sel.meta.id, doomed, true);
        Some(Flow::Need(Request::Write(changes)))
    }

    /// Drops the messages `uids` from the selected mailbox's view; the untagged EXPUNGE
    /// lines that tell the client, highest sequence number first.
    /// With QRESYNC on, one `* VANISHED uids` line instead (RFC 7162 3.2.10).
    pub(super) fn forget(&mut self, uids: &[u32]) -> Vec<String> {
        let mut gone = uids.to_vec();
        gone.sort_unstable_by(|a, b| b.cmp(a));
        gone.dedup();
        let qresync = self.qresync;
        let sel = self.selected_mut();
        let mut lines = Vec::new();
        let mut vanished = Vec::new();
        // Highest first: each number told is then right when the lines are read in
        // turn (removing a message does not move those before it).
        for uid in gone {
            let Ok(i) = sel.messages.find(uid) else {
                continue;
            };
            lines.push(format!("* {} EXPUNGE", i + 1));
            vanished.push(uid);
        }
        let mut removed = vanished.clone();
        removed.reverse();
        sel.messages.remove_uids(&removed);
        if qresync && !vanished.is_empty() {
            return vec![format!("* VANISHED {}", compress_set(&vanished))];
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{set_flags, Harness};
    use crate::store::schema::flags;

    /// The standard INBOX with three more messages: UIDs 1 to 5, 2 and 4 and 5 \Deleted.
    fn five() -> Harness {
        let h = Harness::standard();
        for _ in 3..=5 {
            h.deliver("INBOX", b"Subject: more\r\n\r\nx\r\n", 0);
        }
        set_flags(h.store(), "INBOX", &[2, 4, 5], flags::DELETED);
        h
    }

    #[test]
    fn expunge_reports_each_message_highest_first() {
        let mut h = five();
        h.login_select();
        let out = h.run("a1 EXPUNGE\r\n");
        assert_eq!(
            out,
            "* 5 EXPUNGE\r\n* 4 EXPUNGE\r\n* 2 EXPUNGE\r\na1 OK EXPUNGE completed\r\n"
        );
        let left: Vec<u32> = h.messages("INBOX").iter().map(|(u, _)| *u).collect();
        assert_eq!(left, [1, 3]);
        // Nothing left to expunge: no commit.
        let out = h.run("a2 EXPUNGE\r\n");
        assert_eq!(out, "a2 OK EXPUNGE completed\r\n");
        assert_eq!(h.commits, 1);
    }

    #[test]
    fn uid_expunge_removes_only_the_uids_named() {
        let mut h = five();
        h.login_select();
        let out = h.run("a1 UID EXPUNGE 1:4\r\n");
        assert_eq!(
            out,
            "* 4 EXPUNGE\r\n* 2 EXPUNGE\r\na1 OK EXPUNGE completed\r\n"
        );
        let left: Vec<u32> = h.messages("INBOX").iter().map(|(u, _)| *u).collect();
        assert_eq!(left, [1, 3, 5]);
    }

    #[test]
    fn expunge_in_examine_is_refused() {
        let mut h = five();
        h.login();
        h.run("a1 EXAMINE INBOX\r\n");
        let out = h.run("a2 EXPUNGE\r\n");
        assert_eq!(out, "a2 NO [READ-ONLY] Mailbox is read-only\r\n");
        assert_eq!(h.messages("INBOX").len(), 5);
    }

    #[test]
    fn close_expunges_silently_and_unselect_does_not_expunge() {
        let mut h = five();
        h.login_select();
        let out = h.run("a1 UNSELECT\r\na2 FETCH 1 UID\r\n");
        assert_eq!(
            out,
            "a1 OK UNSELECT completed\r\na2 BAD No mailbox selected\r\n"
        );
        assert_eq!(h.messages("INBOX").len(), 5);
        h.run("a3 EXAMINE INBOX\r\n");
        let out = h.run("a4 CLOSE\r\n");
        assert_eq!(out, "a4 OK CLOSE completed\r\n");
        assert_eq!(
            h.messages("INBOX").len(),
            5,
            "EXAMINE: CLOSE expunges nothing"
        );
        h.run("a5 SELECT INBOX\r\n");
        let out = h.run("a6 CLOSE\r\n");
        assert_eq!(out, "a6 OK CLOSE completed\r\n");
        assert_eq!(h.messages("INBOX").len(), 2);
    }
}
