//! APPEND: a message from the client, added to a mailbox within the account's quota and
//! answered with its new UID (`[APPENDUID]`, RFC 4315).

use super::response_code::{ResponseCode, Status};
use super::store::parse_flags;
use super::{Flow, InProgress, Request, Session, State};
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
                    if let (State::Selected(sel), Some(state)) = (&mut self.state, state) {
                        if sel.name == mailbox && sel.messages.last().is_none_or(|(u, _)| *u < uid)
                        {
                            sel.messages.push((uid, state.entry));
                            let exists = sel.messages.len();
                            self.line(&format!("* {exists} EXISTS"));
                        }
                    }
                    let code = ResponseCode::AppendUid { validity, uid };
                    self.respond(tag, Status::Ok, Some(code), "APPEND completed");
                }
                Err(e) => self.commit_failed(tag, &e),
            }
            return Flow::Done;
        }
        let (used, limit) = match self.target_and_quota(tag, mailbox) {
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
        Flow::Need(Request::Write(changes))
    }
}
