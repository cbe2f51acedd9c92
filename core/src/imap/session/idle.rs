//! Keeping the client's view of the selected mailbox up to date: NOOP and CHECK (a poll),
//! IDLE (polls until DONE), and the untagged EXPUNGE, FETCH FLAGS and EXISTS lines that
//! report what changed since the client was last told.

use super::super::response::flag_list;
use super::{Answer, Flow, Request, Session, State};
use crate::store::listing::{differences, Difference};
use crate::store::listings::{Listing, Version};
use crate::store::schema::MailboxMeta;

impl Session {
    /// During IDLE: look for changes to report.
    pub fn idle_poll(&mut self) {
        if self.idling && !self.awaiting {
            self.idle_refresh = true;
        }
    }

    /// NOOP and CHECK: with a mailbox selected, report its changes.
    pub(super) fn noop(&mut self, tag: &str) -> Flow {
        if matches!(self.state, State::Selected(_)) {
            return self.refresh(tag, "NOOP completed");
        }
        self.ok(tag, "NOOP completed");
        Flow::Done
    }

    pub(super) fn idle(&mut self) -> Flow {
        self.line("+ idling");
        Flow::Idle
    }

    /// Reloads the selected mailbox and reports what changed (EXPUNGE, FETCH FLAGS, EXISTS).
    fn refresh(&mut self, tag: &str, done: &str) -> Flow {
        let Some(Answer::Mailbox(found)) = self.answer.take() else {
            let name = self.selected_ref().name.clone();
            return Flow::Need(Request::Mailbox {
                account: self.account(),
                name,
            });
        };
        self.apply_changes(found);
        if !tag.is_empty() {
            self.ok(tag, done);
        }
        Flow::Done
    }

    /// Brings the selected mailbox's view up to `found` (as the store has it now), writing
    /// the lines that tell the client: expunges from the highest sequence number down (so
    /// that numbers stay right), changed flags, then the new count if messages came.
    fn apply_changes(&mut self, found: Option<(MailboxMeta, Listing)>) {
        let Some((meta, fresh)) = found else { return };
        // The same state as last told: nothing to say (the common answer to NOOP).
        if Version::of(&meta) == Version::of(&self.selected_ref().meta) {
            return;
        }
        // What changed since the view was last brought up to date: the two listings
        // share the chunks nothing changed in, and those are skipped whole, so a session
        // watching a large mailbox pays for the new mail, not for the mailbox.
        let before = self.selected_ref().messages.clone();
        let changes = differences(&before, &fresh);
        self.announce_keywords(changes.iter().filter_map(|d| match d {
            Difference::Changed { now, .. } => Some(*now),
            Difference::Added((_, entry)) => Some(entry),
            Difference::Gone(_) => None,
        }));
        let gone: Vec<u32> = (changes.iter())
            .filter_map(|d| match d {
                Difference::Gone(uid) => Some(*uid),
                _ => None,
            })
            .collect();
        let mut lines = if gone.is_empty() {
            Vec::new()
        } else {
            self.forget(&gone)
        };
        let condstore = self.condstore;
        let sel = self.selected_mut();
        let mut added = false;
        for change in &changes {
            let (uid, was, now) = match change {
                Difference::Changed { uid, was, now } => (*uid, *was, *now),
                Difference::Added(_) => {
                    added = true;
                    continue;
                }
                Difference::Gone(_) => continue,
            };
            let flags_changed = was.flags != now.flags || was.keywords != now.keywords;
            if flags_changed || (condstore && was.modseq != now.modseq) {
                // Numbered in the view as the client knows it: without the expunged, before
                // the new messages are announced.
                let Ok(i) = sel.messages.find(uid) else {
                    continue;
                };
                let mut l = format!("* {} FETCH (UID {uid} FLAGS ", i + 1).into_bytes();
                flag_list(&mut l, sel.shown_flags(uid, now), &now.keywords);
                if condstore {
                    l.extend_from_slice(format!(" MODSEQ ({})", now.modseq).as_bytes());
                }
                l.push(b')');
                lines.push(String::from_utf8_lossy(&l).into_owned());
            }
        }
        // The view is now the store's state: it shares the store's listing from here.
        drop(changes);
        sel.messages = fresh;
        sel.meta = meta;
        for l in lines {
            self.line(&l);
        }
        if added {
            self.announce_new_messages();
        }
    }

    /// One step of an IDLE: DONE (or anything else) ends it; else a poll asked for by
    /// [`Session::idle_poll`], or its answer. None when the IDLE is over without a tag to
    /// answer.
    pub(super) fn idle_step(&mut self) -> Option<Flow> {
        // DONE ends the IDLE.
        if let Some(lf) = memchr::memchr(b'\n', &self.io.input) {
            let line: Vec<u8> = self.io.input.drain(..=lf).collect();
            self.idling = false;
            let (tag, _) = self.current.take()?;
            if line.trim_ascii().eq_ignore_ascii_case(b"DONE") {
                self.ok(&tag, "IDLE terminated");
            } else {
                self.bad(&tag, "Expected DONE");
            }
            return Some(Flow::Done);
        }
        if self.io.input.len() > self.config.max_command_before_auth {
            // No DONE in sight: end the IDLE rather than keep the bytes.
            self.io.input.clear();
            self.skip_line = true;
            self.idling = false;
            let (tag, _) = self.current.take()?;
            self.bad(&tag, "Expected DONE");
            return Some(Flow::Done);
        }
        if let Some(Answer::Mailbox(found)) = self.answer.take() {
            self.apply_changes(found);
            return Some(Flow::Idle);
        }
        if self.idle_refresh && matches!(self.state, State::Selected(_)) {
            self.idle_refresh = false;
            let name = self.selected_ref().name.clone();
            return Some(Flow::Need(Request::Mailbox {
                account: self.account(),
                name,
            }));
        }
        Some(Flow::Idle)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{expunge, set_flags, Harness};
    use crate::store::schema::flags;

    #[test]
    fn idle_ends_with_done() {
        let mut h = Harness::standard();
        h.login_select();
        assert_eq!(h.run("a1 IDLE\r\n"), "+ idling\r\n");
        assert_eq!(h.run("DONE\r\n"), "a1 OK IDLE terminated\r\n");
        assert_eq!(h.run("a2 IDLE\r\n"), "+ idling\r\n");
        assert_eq!(
            h.run("done\r\na3 NOOP\r\n"),
            "a2 OK IDLE terminated\r\na3 OK NOOP completed\r\n"
        );
        assert_eq!(h.run("a4 IDLE\r\n"), "+ idling\r\n");
        assert_eq!(h.run("STOP\r\n"), "a4 BAD Expected DONE\r\n");
    }

    #[test]
    fn idle_reports_changes_when_polled() {
        let mut h = Harness::standard();
        h.login_select();
        assert_eq!(h.run("a1 IDLE\r\n"), "+ idling\r\n");
        // Nothing is reported before a poll.
        h.deliver("INBOX", b"Subject: new\r\n\r\nx\r\n", 0);
        assert_eq!(h.run(""), "");
        h.s.idle_poll();
        assert_eq!(h.run(""), "* 3 EXISTS\r\n* 1 RECENT\r\n");
        expunge(h.store(), "INBOX", &[1]);
        set_flags(h.store(), "INBOX", &[3], flags::FLAGGED);
        h.s.idle_poll();
        assert_eq!(
            h.run(""),
            "* 1 EXPUNGE\r\n* 2 FETCH (UID 3 FLAGS (\\Flagged \\Recent))\r\n"
        );
        assert_eq!(h.run("DONE\r\n"), "a1 OK IDLE terminated\r\n");
    }

    /// A mailbox of several listing chunks: what changed in the middle, at the start and
    /// at the end is told with the right numbers, and the view then shares the store's
    /// listing (it is not a copy of its own).
    #[test]
    fn a_large_mailbox_is_brought_up_to_date_across_its_chunks() {
        let mut h = Harness::standard();
        h.deliver_many("INBOX", 1200);
        h.forget_recent("INBOX");
        h.login_select();
        set_flags(h.store(), "INBOX", &[700], flags::FLAGGED);
        expunge(h.store(), "INBOX", &[5, 1100]);
        h.deliver("INBOX", b"Subject: new\r\n\r\nx\r\n", 0);
        assert_eq!(
            h.run("a1 NOOP\r\n"),
            "* 1100 EXPUNGE\r\n* 5 EXPUNGE\r\n* 699 FETCH (UID 700 FLAGS (\\Flagged))\r\n\
             * 1201 EXISTS\r\n* 1 RECENT\r\na1 OK NOOP completed\r\n"
        );
        assert_eq!(h.run("a2 NOOP\r\n"), "a2 OK NOOP completed\r\n");
        assert_eq!(
            h.run("a3 FETCH 699,1201 (UID FLAGS)\r\n"),
            "* 699 FETCH (UID 700 FLAGS (\\Flagged))\r\n* 1201 FETCH (UID 1203 FLAGS (\\Recent))\r\n\
             a3 OK FETCH completed\r\n"
        );
        let store = h.store();
        let meta = crate::store::mail::mailbox(store, 1, "INBOX")
            .unwrap()
            .unwrap();
        let held = crate::store::mail::listing(store, 1, &meta).unwrap();
        assert!(crate::store::listing::Listing::ptr_eq(
            &h.s.selected_ref().messages,
            &held
        ));
    }

    #[test]
    fn noop_reports_changes_since_the_client_was_last_told() {
        let mut h = Harness::standard();
        h.login_select();
        assert_eq!(h.run("a1 NOOP\r\n"), "a1 OK NOOP completed\r\n");
        h.deliver("INBOX", b"Subject: new\r\n\r\nx\r\n", 0);
        set_flags(h.store(), "INBOX", &[1], flags::ANSWERED);
        expunge(h.store(), "INBOX", &[2]);
        assert_eq!(
            h.run("a2 CHECK\r\n"),
            "* 2 EXPUNGE\r\n* 1 FETCH (UID 1 FLAGS (\\Answered))\r\n* 2 EXISTS\r\n* 1 RECENT\r\na2 OK NOOP completed\r\n"
        );
        assert_eq!(h.run("a3 NOOP\r\n"), "a3 OK NOOP completed\r\n");
    }

    #[test]
    fn a_keyword_set_by_another_session_is_announced_before_its_fetch() {
        let mut h = Harness::standard();
        h.login_select();
        let mut c = crate::store::Changes::new();
        let inbox = h.messages("INBOX");
        let mailbox = crate::store::mail::mailbox(h.store(), 1, "INBOX")
            .unwrap()
            .unwrap()
            .id;
        c.set_flags(
            1,
            mailbox,
            vec![inbox[0].0],
            crate::store::FlagChange {
                mode: crate::store::FlagMode::Add,
                flags: 0,
                keywords: vec!["$Label1".into()],
            },
        );
        h.store().commit_blocking(c).unwrap();
        let out = h.run("a1 NOOP\r\n");
        assert_eq!(
            out,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1 \\*)] Flags permitted\r\n\
             * 1 FETCH (UID 1 FLAGS ($Label1))\r\na1 OK NOOP completed\r\n"
        );
        // Known now: no second announcement; SELECT lists it.
        let out = h.run("a2 SELECT INBOX\r\n");
        assert!(
            out.starts_with("* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Label1)\r\n"),
            "{out}"
        );
    }
}
