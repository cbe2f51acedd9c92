//! Which messages of the selected mailbox are \Recent in this session (IMAP4rev1 clients;
//! a session that enabled IMAP4rev2 neither sees nor claims them). A read-write session
//! claims the messages it is the first to be told of, through the server's
//! [`RecentBook`](super::super::recent::RecentBook); EXAMINE only looks.

use super::super::response::RECENT;
use super::{Selected, Session, State};
use crate::store::schema::MailEntry;

impl Session {
    /// Whether this session deals in \Recent at all.
    pub(super) fn uses_recent(&self) -> bool {
        !self.rev2
    }

    /// The UIDs of mailbox `mailbox_id` (whose UIDNEXT is `uidnext`) that are recent in
    /// this session: claimed now when `read_only` is false, else those no session has
    /// claimed.
    pub(super) fn claim_recent(
        &self,
        mailbox_id: u32,
        uidnext: u32,
        read_only: bool,
    ) -> std::ops::Range<u32> {
        if !self.uses_recent() {
            return 0..0;
        }
        let book = &self.config.recent;
        let account = self.account();
        if read_only {
            book.first_unclaimed(account, mailbox_id)..uidnext
        } else {
            book.claim(account, mailbox_id, uidnext)
        }
    }

    /// After messages joined the view (new mail, or copies into the selected mailbox):
    /// claims those that are this session's, and tells the client the new count of
    /// messages and of recent ones (`* n EXISTS`, `* n RECENT`).
    pub(super) fn announce_new_messages(&mut self) {
        let State::Selected(sel) = &self.state else {
            return;
        };
        let claimed = self.claim_recent(sel.meta.id, sel.meta.uidnext, sel.read_only);
        let sel = self.selected_mut();
        sel.recent.add(claimed);
        let (exists, recent) = (sel.messages.len(), sel.recent.count_in(&sel.messages));
        self.line(&format!("* {exists} EXISTS"));
        if self.uses_recent() {
            self.line(&format!("* {recent} RECENT"));
        }
    }
}

impl Selected {
    /// A message's flags as this session shows them: the stored ones, with the
    /// session-only [`RECENT`] bit when it is recent here.
    pub(super) fn shown_flags(&self, uid: u32, entry: &MailEntry) -> u32 {
        if self.recent.contains(uid) {
            entry.flags | RECENT
        } else {
            entry.flags
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Harness;

    const NEW: &[u8] = b"Subject: new\r\n\r\nx\r\n";

    /// A session logged in, not selecting.
    fn logged_in(h: &Harness) -> Harness {
        let mut other = h.another();
        other.login();
        other
    }

    #[test]
    fn a_new_message_is_recent_in_the_first_session_that_selects_only() {
        let mut h = Harness::standard();
        h.deliver("INBOX", NEW, 0);
        h.login();
        // Nobody has claimed it: STATUS counts it (and claims nothing).
        let out = h.run("a0 STATUS INBOX (MESSAGES RECENT)\r\n");
        assert_eq!(
            out,
            "* STATUS \"INBOX\" (MESSAGES 3 RECENT 1)\r\na0 OK STATUS completed\r\n"
        );
        let out = h.run("a1 SELECT INBOX\r\n");
        assert!(out.contains("* 3 EXISTS\r\n* 1 RECENT\r\n"), "{out}");
        let out = h.run("a2 FETCH 1:3 FLAGS\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (FLAGS ())\r\n* 2 FETCH (FLAGS (\\Seen))\r\n\
             * 3 FETCH (FLAGS (\\Recent))\r\na2 OK FETCH completed\r\n"
        );
        assert_eq!(
            h.run("a3 SEARCH RECENT\r\n"),
            "* SEARCH 3\r\na3 OK SEARCH completed\r\n"
        );
        assert_eq!(
            h.run("a4 SEARCH NEW\r\n"),
            "* SEARCH 3\r\na4 OK SEARCH completed\r\n"
        );
        assert_eq!(
            h.run("a5 SEARCH OLD\r\n"),
            "* SEARCH 1 2\r\na5 OK SEARCH completed\r\n"
        );
        // Seen, it is no longer NEW but still RECENT.
        h.run("a6 STORE 3 +FLAGS.SILENT (\\Seen)\r\n");
        assert_eq!(
            h.run("a7 SEARCH NEW\r\n"),
            "* SEARCH\r\na7 OK SEARCH completed\r\n"
        );
        let out = h.run("a8 FETCH 3 FLAGS\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (FLAGS (\\Seen \\Recent))\r\na8 OK FETCH completed\r\n"
        );

        // A second session: not recent there, and STATUS counts none.
        let mut b = logged_in(&h);
        let out = b.run("b0 STATUS INBOX (RECENT)\r\n");
        assert!(
            out.starts_with("* STATUS \"INBOX\" (RECENT 0)\r\n"),
            "{out}"
        );
        let out = b.run("b1 SELECT INBOX\r\n");
        assert!(out.contains("* 3 EXISTS\r\n* 0 RECENT\r\n"), "{out}");
        let out = b.run("b2 FETCH 3 FLAGS\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (FLAGS (\\Seen))\r\nb2 OK FETCH completed\r\n"
        );
        assert_eq!(
            b.run("b3 SEARCH RECENT\r\n"),
            "* SEARCH\r\nb3 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn mail_arriving_while_selected_is_recent_in_the_session_told_first() {
        let mut a = Harness::standard();
        a.login_select();
        let mut b = logged_in(&a);
        b.run("b1 SELECT INBOX\r\n");
        a.deliver("INBOX", NEW, 0);
        assert_eq!(
            a.run("a1 NOOP\r\n"),
            "* 3 EXISTS\r\n* 1 RECENT\r\na1 OK NOOP completed\r\n"
        );
        assert_eq!(
            b.run("b2 NOOP\r\n"),
            "* 3 EXISTS\r\n* 0 RECENT\r\nb2 OK NOOP completed\r\n"
        );
        let out = a.run("a2 FETCH 3 FLAGS\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (FLAGS (\\Recent))\r\na2 OK FETCH completed\r\n"
        );
        let out = b.run("b3 FETCH 3 FLAGS\r\n");
        assert_eq!(out, "* 3 FETCH (FLAGS ())\r\nb3 OK FETCH completed\r\n");
        // Once expunged, it is not counted any more.
        a.run("a3 STORE 3 +FLAGS.SILENT (\\Deleted)\r\n");
        assert_eq!(
            a.run("a4 EXPUNGE\r\n"),
            "* 3 EXPUNGE\r\na4 OK EXPUNGE completed\r\n"
        );
        a.deliver("INBOX", NEW, 0);
        assert_eq!(
            a.run("a5 NOOP\r\n"),
            "* 3 EXISTS\r\n* 1 RECENT\r\na5 OK NOOP completed\r\n"
        );
    }

    #[test]
    fn examine_looks_without_claiming() {
        let mut a = Harness::standard();
        a.deliver("INBOX", NEW, 0);
        let mut b = logged_in(&a);
        let out = b.run("b1 EXAMINE INBOX\r\n");
        assert!(out.contains("* 3 EXISTS\r\n* 1 RECENT\r\n"), "{out}");
        let out = b.run("b2 FETCH 3 FLAGS\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (FLAGS (\\Recent))\r\nb2 OK FETCH completed\r\n"
        );
        a.login();
        let out = a.run("a1 SELECT INBOX\r\n");
        assert!(out.contains("* 3 EXISTS\r\n* 1 RECENT\r\n"), "{out}");
    }

    #[test]
    fn imap4rev2_sessions_neither_see_nor_claim_recent() {
        let mut a = Harness::standard();
        a.deliver("INBOX", NEW, 0);
        a.login();
        a.run("a0 ENABLE IMAP4rev2\r\n");
        let out = a.run("a1 SELECT INBOX\r\n");
        assert!(!out.contains("RECENT"), "{out}");
        let out = a.run("a2 FETCH 3 FLAGS\r\n");
        assert_eq!(out, "* 3 FETCH (FLAGS ())\r\na2 OK FETCH completed\r\n");
        let mut b = logged_in(&a);
        let out = b.run("b1 SELECT INBOX\r\n");
        assert!(out.contains("* 1 RECENT\r\n"), "{out}");
    }

    #[test]
    fn copies_into_the_selected_mailbox_are_recent_here() {
        let mut h = Harness::standard();
        h.login_select();
        assert_eq!(
            h.run("a1 COPY 1 INBOX\r\n"),
            "* 3 EXISTS\r\n* 1 RECENT\r\na1 OK [COPYUID 7 1 3] COPY completed\r\n"
        );
        let out = h.run("a2 FETCH 3 FLAGS\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (FLAGS (\\Recent))\r\na2 OK FETCH completed\r\n"
        );
        let out = h.run("a3 APPEND INBOX {8+}\r\nA: b\r\n\r\n\r\n");
        assert_eq!(
            out,
            "* 4 EXISTS\r\n* 2 RECENT\r\na3 OK [APPENDUID 7 4] APPEND completed\r\n"
        );
    }
}
