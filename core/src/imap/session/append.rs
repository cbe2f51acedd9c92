//! APPEND: a message from the client, added to a mailbox within the account's quota and
//! answered with its new UID (`[APPENDUID]`, RFC 4315); one put into Junk is learned as
//! spam.

use super::response_code::{ResponseCode, Status};
use super::store::parse_flags;
use super::{Flow, InProgress, Learn, Request, Session, State};
use crate::store::schema::MailEntry;
use crate::store::{Changes, Folder, NewMail};

/// An APPEND waiting for its commit: the entry it writes, added to the client's view at
/// once if it went to the selected mailbox.
pub(super) struct AppendState {
    entry: MailEntry,
}

impl Session {
    pub(super) fn append(
        &mut self,
        tag: &str,
        mailbox: &str,
        flag_names: &[String],
        date: Option<i64>,
        message: &[u8],
    ) -> Flow {
        if let Some(result) = self.committed() {
            let state = match self.in_progress.take() {
                Some(InProgress::Append(state)) => Some(state),
                _ => None,
            };
            match result {
                Ok(applied) => {
                    let uid = applied.uids.first().copied().unwrap_or_default();
                    let validity = applied.uidvalidity.unwrap_or_default();
                    // Appended to the selected mailbox: the client learns of it now.
                    // Only the very next UID (else a message delivered meanwhile comes first,
                    // and the next poll shows both in UID order).
                    let here = matches!(&self.state, State::Selected(sel)
                        if sel.name == mailbox && uid == sel.meta.uidnext);
                    if let (true, Some(state)) = (here, state) {
                        self.announce_keywords([&state.entry]);
                        if let State::Selected(sel) = &mut self.state {
                            sel.messages.push((uid, state.entry));
                            sel.meta.uidnext = uid + 1;
                            self.announce_new_messages();
                        }
                    }
                    let code = ResponseCode::AppendUid { validity, uid };
                    self.respond(tag, Status::Ok, Some(code), "APPEND completed");
                }
                Err(e) => self.commit_failed(tag, &e),
            }
            return Flow::Done;
        }
        let (used, limit, target_use) = match self.target_with_quota(tag, mailbox) {
            Ok(q) => q,
            Err(flow) => return flow,
        };
        if used + message.len() as u64 > limit {
            self.no(tag, ResponseCode::OverQuota, "Mailbox is full");
            return Flow::Done;
        }
        let (bits, keywords) = parse_flags(flag_names);
        let mut changes = Changes::new();
        let blob = changes.store_blob(message.to_vec());
        let mail = NewMail {
            blob,
            size: message.len() as u64,
            internal_date: date.unwrap_or(self.now),
            flags: bits,
            keywords,
            spam_score: None,
        };
        let entry = MailEntry {
            blob,
            size: mail.size,
            internal_date: mail.internal_date,
            flags: mail.flags,
            keywords: mail.keywords.clone(),
            modseq: 0,
            spam_score: None,
        };
        self.in_progress = Some(InProgress::Append(AppendState { entry }));
        changes.append(self.account(), Folder::Named(mailbox.to_owned()), mail);
        // A message put into Junk is spam to the user: a client that moves messages by
        // APPEND and delete (mbsync, clients working offline) teaches as MOVE does.
        if target_use.as_deref() == Some("\\Junk") {
            let learn = Learn {
                account: self.account(),
                blobs: vec![blob],
                spam: true,
            };
            return Flow::Need(Request::WriteAndLearn(changes, learn));
        }
        Flow::Need(Request::Write(changes))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{delete_mailbox, Harness, MESSAGE};
    use crate::store::schema::flags;

    #[test]
    fn append_answers_appenduid_and_shows_the_message_in_the_selected_mailbox() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run(&format!(
            "a1 APPEND INBOX (\\Flagged $Work) {{{}+}}\r\n",
            MESSAGE.len()
        ));
        assert_eq!(out, "", "LITERAL+: no continuation request");
        let out = h.run(&[MESSAGE, b"\r\n"].concat());
        // Its new keyword is announced before the EXISTS that shows the message.
        assert_eq!(
            out,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted\r\n\
             * 3 EXISTS\r\n* 1 RECENT\r\na1 OK [APPENDUID 7 3] APPEND completed\r\n"
        );
        let stored = h.messages("INBOX");
        assert_eq!(stored.len(), 3);
        assert_eq!(stored[2].0, 3);
        assert_eq!(stored[2].1.flags, flags::FLAGGED);
        assert_eq!(stored[2].1.keywords, ["$Work"]);
        // The session's view has it: FETCH needs no NOOP first.
        let out = h.run("a2 FETCH 3 (UID FLAGS)\r\n");
        assert_eq!(
            out,
            "* 3 FETCH (UID 3 FLAGS (\\Flagged \\Recent $Work))\r\na2 OK FETCH completed\r\n"
        );
    }

    #[test]
    fn append_into_junk_is_learned_as_spam() {
        use crate::filter::bayes::Totals;
        use crate::store::bayes::totals;
        let mut h = Harness::standard();
        h.create_mailbox_with_use("Junk", "\\Junk");
        h.login_select();
        let append = |h: &mut Harness, mailbox: &str| {
            h.run(&format!("a1 APPEND {mailbox} {{{}+}}\r\n", MESSAGE.len()));
            let out = h.run(&[MESSAGE, b"\r\n"].concat());
            assert!(out.contains("a1 OK [APPENDUID"), "{out}");
        };
        append(&mut h, "INBOX");
        assert_eq!(totals(h.store(), 0).unwrap(), Totals::default());
        append(&mut h, "Junk");
        assert_eq!(totals(h.store(), 0).unwrap(), Totals { spam: 1, ham: 0 });
    }

    #[test]
    fn append_to_another_mailbox_sends_no_exists() {
        let mut h = Harness::standard();
        h.create_mailbox("Sent");
        h.login_select();
        let out = h.run("a1 APPEND Sent (\\Seen) \"01-Jan-2024 00:00:00 +0000\" {5+}\r\nhello\r\n");
        assert_eq!(out, "a1 OK [APPENDUID 8 1] APPEND completed\r\n");
        let stored = h.messages("Sent");
        assert_eq!(stored.len(), 1);
        assert_eq!(stored[0].1.internal_date, 1_704_067_200);
        assert_eq!(stored[0].1.flags, flags::SEEN);
    }

    #[test]
    fn append_to_a_missing_mailbox_says_trycreate() {
        let mut h = Harness::standard();
        h.login();
        let out = h.run("a1 APPEND Nowhere {5+}\r\nhello\r\n");
        assert_eq!(out, "a1 NO [TRYCREATE] No such mailbox\r\n");
        assert_eq!(h.commits, 0);
    }

    #[test]
    fn append_over_quota_is_refused() {
        let mut h = Harness::standard();
        h.used = 1000;
        h.limit = 1004;
        h.login();
        let out = h.run("a1 APPEND INBOX {5+}\r\nhello\r\n");
        assert_eq!(out, "a1 NO [OVERQUOTA] Mailbox is full\r\n");
        assert_eq!(h.commits, 0);
        // Exactly at the limit is still fine.
        let out = h.run("a2 APPEND INBOX {4+}\r\nhell\r\n");
        assert_eq!(out, "a2 OK [APPENDUID 7 3] APPEND completed\r\n");
    }

    #[test]
    fn append_whose_mailbox_goes_before_the_commit_says_trycreate() {
        let mut h = Harness::standard();
        h.create_mailbox("Drafts2");
        h.login();
        h.before_commit(|store| delete_mailbox(store, "Drafts2"));
        let out = h.run("a1 APPEND Drafts2 {5+}\r\nhello\r\n");
        assert_eq!(out, "a1 NO [TRYCREATE] No such mailbox\r\n");
    }
}
