//! COPY and MOVE (RFC 6851): messages to another mailbox within the account's quota,
//! answered with the UIDs they got (`[COPYUID]`, RFC 4315); MOVE then reports the
//! messages gone from the selected mailbox (EXPUNGE).

use super::super::command::SeqSet;
use super::response_code::{ResponseCode, Status};
use super::{Flow, Request, Session};
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
                        sources: applied.sources,
                        uids: applied.uids,
                    });
                    if remove {
                        self.respond("*", Status::Ok, code, "Moved");
                        for l in self.forget(&applied.removed) {
                            self.line(&l);
                        }
                        self.ok(tag, "MOVE completed");
                    } else {
                        self.respond(tag, Status::Ok, code, "COPY completed");
                    }
                }
                Err(e) => self.commit_failed(tag, &e),
            }
            return Flow::Done;
        }
        let (used, limit) = match self.target_and_quota(tag, target) {
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
        let (account, from) = (self.account(), sel.meta.id);
        let to = Folder::Named(target.to_owned());
        let mut changes = Changes::new();
        if remove {
            changes.move_to(account, from, uids, to);
        } else {
            changes.copy(account, from, uids, to);
        }
        Flow::Need(Request::Write(changes))
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
        assert_eq!(out, "a1 OK COPY completed\r\na2 OK MOVE completed\r\n");
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
}
