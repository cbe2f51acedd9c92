//! STORE: flags set, added or removed, answered with each message's flags as the store
//! now has them (UIDs too for UID STORE, nothing for .SILENT).

use super::super::command::{SeqSet, StoreMode};
use super::super::response::{flag_list, system_flag};
use super::response_code::ResponseCode;
use super::{Flow, InProgress, Request, Session};
use crate::store::{Changes, FlagChange, FlagMode};

/// What a STORE waiting for its commit answers: UIDs (UID STORE), nothing (.SILENT).
#[derive(Debug, Clone, Copy)]
pub(super) struct StoreReply {
    uid: bool,
    silent: bool,
}

/// System flag bits and keywords from flag names (\Recent and unknown \ flags are ignored).
pub(super) fn parse_flags(names: &[String]) -> (u32, Vec<String>) {
    let mut bits = 0;
    let mut keywords = Vec::new();
    for n in names {
        if let Some(bit) = system_flag(n) {
            bits |= bit;
        } else if !n.starts_with('\\') && !keywords.contains(n) {
            keywords.push(n.clone());
        }
    }
    (bits, keywords)
}

impl Session {
    pub(super) fn store(
        &mut self,
        tag: &str,
        uid: bool,
        set: &SeqSet,
        mode: StoreMode,
        silent: bool,
        names: &[String],
    ) -> Flow {
        if let Some(flow) = self.store_done(tag) {
            return flow;
        }
        if self.selected_ref().read_only {
            self.no(tag, ResponseCode::ReadOnly, "Mailbox is read-only");
            return Flow::Done;
        }
        let (bits, keywords) = parse_flags(names);
        let change = FlagChange {
            mode: match mode {
                StoreMode::Replace => FlagMode::Replace,
                StoreMode::Add => FlagMode::Add,
                StoreMode::Remove => FlagMode::Remove,
            },
            flags: bits,
            keywords,
        };
        let uids: Vec<u32> = {
            let sel = self.selected_ref();
            self.resolve(uid, set)
                .into_iter()
                .map(|i| sel.messages[i].0)
                .collect()
        };
        if uids.is_empty() {
            self.ok(tag, "STORE completed");
            return Flow::Done;
        }
        self.in_progress = Some(InProgress::Store(StoreReply { uid, silent }));
        let mut changes = Changes::new();
        changes.set_flags(self.account(), self.selected_ref().meta.id, uids, change);
        Flow::Need(Request::Write(changes))
    }

    /// STORE's answer: the flags of each message as the store now has them (a message
    /// expunged meanwhile is left out: the next poll reports its EXPUNGE).
    fn store_done(&mut self, tag: &str) -> Option<Flow> {
        let result = self.committed()?;
        let reply = match self.in_progress.take() {
            Some(InProgress::Store(reply)) => reply,
            _ => StoreReply {
                uid: false,
                silent: true,
            },
        };
        match result {
            Ok(applied) => {
                for (msg_uid, entry) in applied.entries {
                    let sel = self.selected_mut();
                    let Ok(i) = sel.messages.binary_search_by_key(&msg_uid, |(u, _)| *u) else {
                        continue;
                    };
                    sel.messages[i].1 = entry.clone();
                    if reply.silent {
                        continue;
                    }
                    let mut l = format!("* {} FETCH (", i + 1).into_bytes();
                    if reply.uid {
                        l.extend_from_slice(format!("UID {msg_uid} ").as_bytes());
                    }
                    l.extend_from_slice(b"FLAGS ");
                    flag_list(&mut l, entry.flags, &entry.keywords);
                    l.extend_from_slice(b")\r\n");
                    self.output.extend_from_slice(&l);
                }
                self.ok(tag, "STORE completed");
            }
            Err(e) => self.commit_failed(tag, &e),
        }
        Some(Flow::Done)
    }
}
