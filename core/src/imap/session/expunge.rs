//! Removing messages marked \Deleted, and leaving the mailbox: EXPUNGE, UID EXPUNGE
//! (RFC 4315), CLOSE (which expunges silently) and UNSELECT (which does not).

use super::super::command::SeqSet;
use super::response_code::ResponseCode;
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
    pub(super) fn forget(&mut self, uids: &[u32]) -> Vec<String> {
        let gone: std::collections::HashSet<u32> = uids.iter().copied().collect();
        let sel = self.selected_mut();
        let mut lines = Vec::new();
        for seq in (1..=sel.messages.len()).rev() {
            if gone.contains(&sel.messages[seq - 1].0) {
                sel.messages.remove(seq - 1);
                lines.push(format!("* {seq} EXPUNGE"));
            }
        }
        lines
    }
}
