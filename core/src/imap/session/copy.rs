//! COPY and MOVE (RFC 6851): messages to another mailbox within the account's quota,
//! answered with the UIDs they got (`[COPYUID]`, RFC 4315); MOVE then reports the
//! messages gone from the selected mailbox (EXPUNGE).

use super::super::command::SeqSet;
use super::response_code::{ResponseCode, Status};
use super::{Flow, Learn, Request, Session, State};
use crate::store::schema::MailEntry;
use crate::store::{Changes, Folder};

impl Session {
    pub(super) fn copy(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        target: &str,
        remove: bool,
    ) -> Flow {
        let verb = if remove { "MOVE" } else { "COPY" };
        if let Some(result) = self.committed() {
            match result {
                Ok(applied) => {
                    let code = (!applied.uids.is_empty()).then(|| ResponseCode::CopyUid {
                        validity: applied.uidvalidity.unwrap_or_default(),
                        sources: applied.sources.clone(),
                        uids: applied.uids.clone(),
                    });
                    // Copies into the selected mailbox are in the client's view at once:
                    // EXISTS now (and, for MOVE, before the EXPUNGE of the originals).
                    let pairs: Vec<(u32, u32)> = applied
                        .sources
                        .iter()
                        .copied()
                        .zip(applied.uids.iter().copied())
                        .collect();
                    if remove {
                        self.respond("*", Status::Ok, code, "Moved");
                        self.show_copies(target, &pairs);
                        for l in self.forget(&applied.removed) {
                            self.line(&l);
                        }
                        self.ok(tag, "MOVE completed");
                    } else {
                        self.show_copies(target, &pairs);
                        self.respond(tag, Status::Ok, code, "COPY completed");
                    }
                }
                Err(e) => self.commit_failed(tag, &e),
            }
            return Flow::Done;
        }
        let (used, limit, target_use) = match self.target_with_quota(tag, target) {
            Ok(q) => q,
            Err(flow) => return flow,
        };
        let indexes = self.resolve(uid, set);
        let sel = self.selected_ref();
        let chosen: Vec<&(u32, MailEntry)> = indexes.iter().map(|&i| &sel.messages[i]).collect();
        let added: u64 = chosen.iter().map(|(_, e)| e.size).sum();
        if !remove && used + added > limit {
            self.no(tag, ResponseCode::OverQuota, "Mailbox is full");
            return Flow::Done;
        }
        if chosen.is_empty() {
            self.ok(tag, &format!("{verb} completed"));
            return Flow::Done;
        }
        let uids: Vec<u32> = chosen.iter().map(|(u, _)| *u).collect();
        let learn =
            junk_learning(sel.meta.special_use.as_deref(), target_use.as_deref()).map(|spam| {
                Learn {
                    account: self.account(),
                    blobs: chosen.iter().map(|(_, e)| e.blob).collect(),
                    spam,
                }
            });
        let (account, from) = (self.account(), sel.meta.id);
        let to = Folder::Named(target.to_owned());
        let mut changes = Changes::new();
        if remove {
            changes.move_to(account, from, uids, to);
        } else {
            changes.copy(account, from, uids, to);
        }
        match learn {
            Some(learn) => Flow::Need(Request::WriteAndLearn(changes, learn)),
            None => Flow::Need(Request::Write(changes)),
        }
    }

    /// Adds the copies (source UID, new UID) made into `target` to the view when it is
    /// the selected mailbox, and tells the client (EXISTS).
    fn show_copies(&mut self, target: &str, pairs: &[(u32, u32)]) {
        let State::Selected(sel) = &mut self.state else {
            return;
        };
        if sel.name != target {
            return;
        }
        let mut added = false;
        for &(source, uid) in pairs {
            let Ok(i) = sel.messages.find(source) else {
                continue;
            };
            // Only the very next UID: a message delivered meanwhile (a lower UID the
            // client has not been told of) must come first, so the next poll shows them all
            // in UID order instead.
            if uid != sel.meta.uidnext {
                break;
            }
            let entry = sel.messages[i].1.clone();
            sel.messages.push((uid, entry));
            sel.meta.uidnext = uid + 1;
            added = true;
        }
        if added {
            self.announce_new_messages();
        }
    }
}

/// What a copy or move from a mailbox of special use `from` to one of special use `to`
/// teaches the Bayes classifier, as Dovecot's antispam plugin does: into Junk is spam;
/// out of Junk into anything but Trash is ham (deleting is no verdict).
fn junk_learning(from: Option<&str>, to: Option<&str>) -> Option<bool> {
    let junk = |u: Option<&str>| u == Some("\\Junk");
    match (junk(from), junk(to)) {
        (false, true) => Some(true),
        (true, false) if to != Some("\\Trash") => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{expunge, Harness};

    #[test]
    fn copy_answers_copyuid() {
        let mut h = Harness::standard();
        h.create_mailbox("Work");
        h.login_select();
        let out = h.run("a1 COPY 1:2 Work\r\na2 UID COPY 2 Work\r\n");
        assert_eq!(
            out,
            "a1 OK [COPYUID 8 1:2 1:2] COPY completed\r\n\
             a2 OK [COPYUID 8 2 3] COPY completed\r\n"
        );
        assert_eq!(h.messages("Work").len(), 3);
        assert_eq!(h.messages("INBOX").len(), 2);
    }

    #[test]
    fn move_answers_copyuid_then_expunge_lines() {
        let mut h = Harness::standard();
        h.create_mailbox("Work");
        h.deliver("INBOX", b"Subject: three\r\n\r\nx\r\n", 0);
        h.login_select();
        let out = h.run("a1 MOVE 1,3 Work\r\n");
        assert_eq!(
            out,
            "* OK [COPYUID 8 1,3 1:2] Moved\r\n\
             * 3 EXPUNGE\r\n\
             * 1 EXPUNGE\r\n\
             a1 OK MOVE completed\r\n"
        );
        let left: Vec<u32> = h.messages("INBOX").iter().map(|(u, _)| *u).collect();
        assert_eq!(left, [2]);
        // The session's view follows: UID 2 is message 1 now.
        let out = h.run("a2 FETCH 1 UID\r\n");
        assert_eq!(out, "* 1 FETCH (UID 2)\r\na2 OK FETCH completed\r\n");
    }

    #[test]
    fn copy_or_move_of_nothing_commits_nothing() {
        let mut h = Harness::standard();
        h.create_mailbox("Work");
        h.login_select();
        let out = h.run("a1 COPY 7 Work\r\na2 UID MOVE 9 Work\r\n");
        assert_eq!(
            out,
            "a1 BAD Message number beyond the mailbox\r\na2 OK MOVE completed\r\n"
        );
        assert_eq!(h.commits, 0);
    }

    #[test]
    fn copy_to_a_missing_mailbox_says_trycreate() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 COPY 1 Nowhere\r\na2 MOVE 1 Nowhere\r\n");
        assert_eq!(
            out,
            "a1 NO [TRYCREATE] No such mailbox\r\na2 NO [TRYCREATE] No such mailbox\r\n"
        );
        assert_eq!(h.commits, 0);
    }

    #[test]
    fn copy_over_quota_is_refused_but_move_is_not() {
        let mut h = Harness::standard();
        h.create_mailbox("Work");
        h.used = 100;
        h.limit = 100;
        h.login_select();
        let out = h.run("a1 COPY 1 Work\r\n");
        assert_eq!(out, "a1 NO [OVERQUOTA] Mailbox is full\r\n");
        assert_eq!(h.commits, 0);
        let out = h.run("a2 MOVE 1 Work\r\n");
        assert_eq!(
            out,
            "* OK [COPYUID 8 1 1] Moved\r\n* 1 EXPUNGE\r\na2 OK MOVE completed\r\n"
        );
    }

    #[test]
    fn move_of_messages_gone_meanwhile_has_no_copyuid() {
        let mut h = Harness::standard();
        h.create_mailbox("Work");
        h.login_select();
        h.before_commit(|store| expunge(store, "INBOX", &[1, 2]));
        let out = h.run("a1 MOVE 1:2 Work\r\n");
        assert_eq!(out, "* OK Moved\r\na1 OK MOVE completed\r\n");
        let out = h.run("a2 NOOP\r\n");
        assert_eq!(
            out,
            "* 2 EXPUNGE\r\n* 1 EXPUNGE\r\na2 OK NOOP completed\r\n"
        );
    }

    #[test]
    fn copy_and_move_into_the_selected_mailbox_announce_the_new_messages() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 COPY 1 INBOX\r\n");
        assert_eq!(
            out,
            "* 3 EXISTS\r\n* 1 RECENT\r\na1 OK [COPYUID 7 1 3] COPY completed\r\n"
        );
        // MOVE: the copy's EXISTS first, then the EXPUNGE of the original.
        let out = h.run("a2 MOVE 2 INBOX\r\n");
        assert_eq!(
            out,
            "* OK [COPYUID 7 2 4] Moved\r\n* 4 EXISTS\r\n* 2 RECENT\r\n* 2 EXPUNGE\r\na2 OK MOVE completed\r\n"
        );
        let out = h.run("a3 UID FETCH 1:* (FLAGS)\r\n");
        assert_eq!(
            out,
            "* 1 FETCH (UID 1 FLAGS ())\r\n* 2 FETCH (UID 3 FLAGS (\\Recent))\r\n\
             * 3 FETCH (UID 4 FLAGS (\\Seen \\Recent))\r\na3 OK FETCH completed\r\n"
        );
    }

    #[test]
    fn a_copy_after_unseen_mail_waits_for_the_poll_to_keep_uid_order() {
        let mut h = Harness::standard();
        h.login_select();
        // Mail arrives that this session has not been told of (UID 3).
        h.deliver("INBOX", b"Subject: new\r\n\r\nnew\r\n", 0);
        let out = h.run("a1 COPY 1 INBOX\r\n");
        assert_eq!(out, "a1 OK [COPYUID 7 1 4] COPY completed\r\n");
        let out = h.run("a2 NOOP\r\na3 UID SEARCH ALL\r\n");
        assert_eq!(
            out,
            "* 4 EXISTS\r\n* 2 RECENT\r\na2 OK NOOP completed\r\n* SEARCH 1 2 3 4\r\na3 OK SEARCH completed\r\n"
        );
    }

    #[test]
    fn moves_into_and_out_of_junk_teach_the_classifier() {
        use crate::filter::bayes::Totals;
        use crate::store::bayes::totals;
        let mut h = Harness::standard();
        h.create_mailbox_with_use("Junk", "\\Junk");
        h.create_mailbox_with_use("Trash", "\\Trash");
        h.create_mailbox("Archive");
        h.login_select();
        let learned = |h: &Harness| totals(h.store(), 0).unwrap();
        // A copy to an ordinary folder teaches nothing.
        h.run("a1 COPY 1 Archive\r\n");
        assert_eq!(learned(&h), Totals::default());
        // Into Junk: spam.
        let out = h.run("a2 MOVE 1 Junk\r\n");
        assert!(out.ends_with("a2 OK MOVE completed\r\n"), "{out}");
        assert_eq!(learned(&h), Totals { spam: 1, ham: 0 });
        // Out of Junk into INBOX: ham (the same message: moved, not added).
        h.run("a3 SELECT Junk\r\n");
        h.run("a4 MOVE 1 INBOX\r\n");
        assert_eq!(learned(&h), Totals { spam: 0, ham: 1 });
        // Out of Junk into Trash: no verdict.
        h.run("a5 SELECT INBOX\r\n");
        h.run("a6 MOVE 1 Junk\r\n");
        assert_eq!(learned(&h), Totals { spam: 1, ham: 0 });
        h.run("a7 SELECT Junk\r\n");
        h.run("a8 MOVE 1 Trash\r\n");
        assert_eq!(learned(&h), Totals { spam: 1, ham: 0 });
    }
}
