//! STORE: flags set, added or removed, answered with each message's flags as the store
//! now has them (UIDs too for UID STORE, nothing for .SILENT).

use super::super::command::{Cmd, StoreMode};
use super::super::response::{flag_list, system_flag};
use super::response_code::{ResponseCode, Status};
use super::{Flow, InProgress, Request, Session};
use crate::store::{Changes, FlagChange, FlagMode};

/// What a STORE waiting for its commit answers: UIDs (UID STORE), nothing (.SILENT)
/// unless the flags are not what `change` makes of those the client knows (another
/// session changed them meanwhile: RFC 9051 6.4.6 wants that told even then).
#[derive(Debug, Clone)]
pub(super) struct StoreReply {
    uid: bool,
    silent: bool,
    change: Option<FlagChange>,
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
    pub(super) fn store(&mut self, tag: &str, cmd: &Cmd) -> Flow {
        let Cmd::Store {
            uid,
            set,
            mode,
            silent,
            flags: names,
            unchanged_since,
        } = cmd
        else {
            return Flow::Done;
        };
        if unchanged_since.is_some() {
            self.enable_condstore();
        }
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
            self.resolve(*uid, set)
                .into_iter()
                .map(|i| sel.messages[i].0)
                .collect()
        };
        if uids.is_empty() {
            self.ok(tag, "STORE completed");
            return Flow::Done;
        }
        self.in_progress = Some(InProgress::Store(StoreReply {
            uid: *uid,
            silent: *silent,
            change: silent.then(|| change.clone()),
        }));
        let mut changes = Changes::new();
        let mailbox = self.selected_ref().meta.id;
        changes.set_flags_unchanged_since(self.account(), mailbox, uids, change, *unchanged_since);
        Flow::Need(Request::Write(changes))
    }

    /// STORE's answer: the flags of each message as the store now has them (a message
    /// expunged meanwhile is left out: the next poll reports its EXPUNGE). With CONDSTORE
    /// on, each response has the message's MODSEQ, and a silent STORE still names the new
    /// MODSEQ of each message it changed (RFC 7162 3.1.3); messages left alone by
    /// UNCHANGEDSINCE are listed in `[MODIFIED ...]`.
    fn store_done(&mut self, tag: &str) -> Option<Flow> {
        let result = self.committed()?;
        let reply = match self.in_progress.take() {
            Some(InProgress::Store(reply)) => reply,
            _ => StoreReply {
                uid: false,
                silent: true,
                change: None,
            },
        };
        let applied = match result {
            Ok(applied) => applied,
            Err(e) => {
                self.commit_failed(tag, &e);
                return Some(Flow::Done);
            }
        };
        self.announce_keywords(applied.entries.iter().map(|(_, e)| e));
        let condstore = self.condstore;
        for (msg_uid, entry) in applied.entries {
            let sel = self.selected_mut();
            let Ok(i) = sel.messages.find(msg_uid) else {
                continue;
            };
            let old = &sel.messages[i].1;
            let unexpected = reply.change.as_ref().is_some_and(|change| {
                let expected = change.apply(old);
                expected.flags != entry.flags || expected.keywords != entry.keywords
            });
            let show_flags = !reply.silent || unexpected;
            let show_modseq = condstore && (show_flags || old.modseq != entry.modseq);
            if show_flags || show_modseq {
                let mut l = format!("* {} FETCH (", i + 1).into_bytes();
                let mut items = Vec::new();
                if reply.uid {
                    items.push(format!("UID {msg_uid}").into_bytes());
                }
                if show_flags {
                    let mut f = b"FLAGS ".to_vec();
                    flag_list(&mut f, sel.shown_flags(msg_uid, &entry), &entry.keywords);
                    items.push(f);
                }
                if show_modseq {
                    items.push(format!("MODSEQ ({})", entry.modseq).into_bytes());
                }
                l.extend_from_slice(&items.join(&b' '));
                l.extend_from_slice(b")\r\n");
                self.io.output.extend_from_slice(&l);
            }
            self.selected_mut().messages[i].1 = entry;
        }
        if applied.modified.is_empty() {
            self.ok(tag, "STORE completed");
        } else {
            let sel = self.selected_ref();
            let modified: Vec<u32> = if reply.uid {
                applied.modified
            } else {
                (applied.modified.iter())
                    .filter_map(|u| sel.messages.find(*u).ok())
                    .map(|i| i as u32 + 1)
                    .collect()
            };
            let code = ResponseCode::Modified(modified);
            self.respond(tag, Status::Ok, Some(code), "Conditional STORE failed");
        }
        Some(Flow::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{expunge, Harness};
    use crate::store::schema::flags;

    #[test]
    fn store_answers_with_the_flags_now_stored() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 STORE 1:2 +FLAGS (\\Flagged $Work)\r\n");
        // A keyword new to the mailbox is announced (FLAGS, PERMANENTFLAGS) before any
        // FETCH shows it (RFC 9051 7.3.5).
        assert_eq!(
            out,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $Work \\*)] Flags permitted\r\n\
             * 1 FETCH (FLAGS (\\Flagged $Work))\r\n\
             * 2 FETCH (FLAGS (\\Seen \\Flagged $Work))\r\n\
             a1 OK STORE completed\r\n"
        );
        let out = h.run("a2 STORE 2 -FLAGS (\\Seen $Work)\r\n");
        assert_eq!(
            out,
            "* 2 FETCH (FLAGS (\\Flagged))\r\na2 OK STORE completed\r\n"
        );
        // Replacing; \Recent and unknown system flags are ignored.
        let out = h.run("a3 UID STORE 1 FLAGS (\\Answered \\Recent \\Bogus $A $A)\r\n");
        assert_eq!(
            out,
            "* FLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $A $Work)\r\n\
             * OK [PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft $A $Work \\*)] Flags permitted\r\n\
             * 1 FETCH (UID 1 FLAGS (\\Answered $A))\r\na3 OK STORE completed\r\n"
        );
        let stored = h.messages("INBOX");
        assert_eq!(stored[0].1.flags, flags::ANSWERED);
        assert_eq!(stored[0].1.keywords, ["$A"]);
        assert_eq!(stored[1].1.flags, flags::FLAGGED);
        assert_eq!(h.commits, 3);
    }

    #[test]
    fn store_silent_answers_only_the_tag() {
        let mut h = Harness::standard();
        h.login_select();
        let out =
            h.run("a1 STORE 1 +FLAGS.SILENT (\\Deleted)\r\na2 UID STORE 2 FLAGS.SILENT ()\r\n");
        assert_eq!(out, "a1 OK STORE completed\r\na2 OK STORE completed\r\n");
        let stored = h.messages("INBOX");
        assert_eq!([stored[0].1.flags, stored[1].1.flags], [flags::DELETED, 0]);
        // The session's view changed too: a NOOP reports nothing.
        assert_eq!(h.run("a3 NOOP\r\n"), "a3 OK NOOP completed\r\n");
    }

    #[test]
    fn store_of_nothing_commits_nothing() {
        let mut h = Harness::standard();
        h.login_select();
        let out = h.run("a1 STORE 5:9 +FLAGS (\\Seen)\r\na2 UID STORE 3 +FLAGS (\\Seen)\r\n");
        assert_eq!(
            out,
            "a1 BAD Message number beyond the mailbox\r\na2 OK STORE completed\r\n"
        );
        assert_eq!(h.commits, 0);
    }

    #[test]
    fn store_in_examine_is_refused() {
        let mut h = Harness::standard();
        h.login();
        h.run("a1 EXAMINE INBOX\r\n");
        let out = h.run("a2 STORE 1 +FLAGS (\\Seen)\r\n");
        assert_eq!(out, "a2 NO [READ-ONLY] Mailbox is read-only\r\n");
        assert_eq!(h.commits, 0);
    }

    #[test]
    fn store_leaves_out_a_message_expunged_meanwhile() {
        let mut h = Harness::standard();
        h.login_select();
        h.before_commit(|store| expunge(store, "INBOX", &[1]));
        let out = h.run("a1 STORE 1:2 +FLAGS (\\Flagged)\r\n");
        assert_eq!(
            out,
            "* 2 FETCH (FLAGS (\\Seen \\Flagged))\r\na1 OK STORE completed\r\n"
        );
        // The next poll tells of the expunge.
        assert_eq!(
            h.run("a2 NOOP\r\n"),
            "* 1 EXPUNGE\r\na2 OK NOOP completed\r\n"
        );
    }
}
