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
