//! The commands on mailboxes as a whole: SELECT and EXAMINE, CREATE, DELETE, RENAME,
//! SUBSCRIBE and UNSUBSCRIBE, LIST and LSUB (with LIST-STATUS), STATUS, NAMESPACE, and
//! GETQUOTA / GETQUOTAROOT; and the mailbox list with the account's quota that they (and
//! APPEND, COPY and MOVE) ask the runtime for.

use super::super::command::{Cmd, ListOptions, Qresync};
use super::super::recent::RecentUids;
use super::super::response::string;
use super::super::wildcard::wildcard_match;
use super::response_code::{ResponseCode, Status, SYSTEM_FLAGS};
use super::{Answer, Flow, MailboxSummary, Request, Selected, Session, State};
use crate::store::schema::MailEntry;
use crate::store::{Changes, Folder};

/// The account's mailboxes, and its storage use and limit in bytes.
pub(super) struct MailboxesAndQuota {
    pub(super) list: Vec<MailboxSummary>,
    pub(super) used: u64,
    pub(super) limit: u64,
    /// Subscriptions whose mailbox was deleted.
    pub(super) lost: Vec<String>,
}

impl Session {
    // ---- the mailbox list ----

    /// The account's mailboxes with its storage use and limit, or the request for them.
    pub(super) fn mailboxes_and_quota(&mut self) -> Result<MailboxesAndQuota, Flow> {
        match self.answer.take() {
            Some(Answer::Mailboxes {
                list,
                used,
                limit,
                lost,
            }) => Ok(MailboxesAndQuota {
                list,
                used,
                limit,
                lost,
            }),
            other => {
                self.answer = other;
                Err(Flow::Need(Request::Mailboxes {
                    account: self.account(),
                }))
            }
        }
    }

    /// The account's mailboxes, or the request for them.
    fn mailboxes(&mut self) -> Result<Vec<MailboxSummary>, Flow> {
        self.mailboxes_and_quota().map(|m| m.list)
    }

    /// For APPEND and COPY/MOVE: the account's quota use and limit, and the target's
    /// special-use attribute, once the target mailbox is known to exist; `NO [TRYCREATE]`
    /// when it does not.
    pub(super) fn target_with_quota(
        &mut self,
        tag: &str,
        target: &str,
    ) -> Result<(u64, u64, Option<String>), Flow> {
        let MailboxesAndQuota {
            list, used, limit, ..
        } = self.mailboxes_and_quota()?;
        if let Some(m) = list.iter().find(|m| m.name == target) {
            Ok((used, limit, m.meta.special_use.clone()))
        } else {
            self.no(tag, ResponseCode::TryCreate, "No such mailbox");
            Err(Flow::Done)
        }
    }

    // ---- the commands ----

    pub(super) fn namespace(&mut self, tag: &str) {
        self.line("* NAMESPACE ((\"\" \"/\")) NIL NIL");
        self.ok(tag, "NAMESPACE completed");
    }

    /// `* FLAGS` and `* OK [PERMANENTFLAGS ...]` with the system flags and `keywords`.
    pub(super) fn flags_lines(&mut self, keywords: &[String]) {
        let list = keywords.join(" ");
        if list.is_empty() {
            self.line(&format!("* FLAGS ({SYSTEM_FLAGS})"));
        } else {
            self.line(&format!("* FLAGS ({SYSTEM_FLAGS} {list})"));
        }
        self.untagged(
            Status::Ok,
            ResponseCode::PermanentFlags(list),
            "Flags permitted",
        );
    }

    /// Tells the client of keywords among `entries` that its selected mailbox did not have
    /// yet (FLAGS, PERMANENTFLAGS), before a FETCH or EXISTS shows them (RFC 9051 7.3.5).
    pub(super) fn announce_keywords<'e>(
        &mut self,
        entries: impl IntoIterator<Item = &'e MailEntry>,
    ) {
        let State::Selected(sel) = &mut self.state else {
            return;
        };
        let mut new = false;
        for entry in entries {
            for k in &entry.keywords {
                if let Err(at) = sel.keywords.binary_search(k) {
                    sel.keywords.insert(at, k.clone());
                    new = true;
                }
            }
        }
        if new {
            let keywords = sel.keywords.clone();
            self.flags_lines(&keywords);
        }
    }

    pub(super) fn select(
        &mut self,
        tag: &str,
        name: &str,
        read_only: bool,
        condstore: bool,
        qresync: Option<&Qresync>,
    ) -> Flow {
        if qresync.is_some() && !self.qresync {
            self.bad(tag, "QRESYNC is not enabled");
            return Flow::Done;
        }
        if condstore {
            self.enable_condstore();
        }
        let Some(Answer::Mailbox(found)) = self.answer.take() else {
            return Flow::Need(Request::Mailbox {
                account: self.account(),
                name: name.to_string(),
            });
        };
        self.closed_line();
        let Some((meta, messages)) = found else {
            self.state = State::Authenticated;
            self.no(tag, ResponseCode::Nonexistent, "No such mailbox");
            return Flow::Done;
        };
        let mut keywords: Vec<String> = messages
            .iter()
            .flat_map(|(_, e)| e.keywords.iter().cloned())
            .collect();
        keywords.sort();
        keywords.dedup();
        self.flags_lines(&keywords);
        let mut recent = RecentUids::default();
        recent.add(self.claim_recent(meta.id, meta.uidnext, read_only));
        self.line(&format!("* {} EXISTS", messages.len()));
        if self.uses_recent() {
            self.line(&format!("* {} RECENT", recent.count_in(&messages)));
        }
        let validity = ResponseCode::UidValidity(meta.uidvalidity);
        self.untagged(Status::Ok, validity, "UIDs valid");
        let next = ResponseCode::UidNext(meta.uidnext);
        self.untagged(Status::Ok, next, "Predicted next UID");
        self.highest_modseq_line(meta.shown_highest_modseq());
        if self.rev2 {
            let mut l = b"* LIST () \"/\" ".to_vec();
            string(&mut l, self.shown_name(name).as_bytes());
            self.io.output.extend_from_slice(&l);
            self.io.output.extend_from_slice(b"\r\n");
        }
        self.state = State::Selected(Selected {
            name: name.to_string(),
            meta,
            read_only,
            messages,
            keywords,
            recent,
        });
        if let Some(q) = qresync {
            self.resync(q);
        }
        let (code, text) = if read_only {
            (ResponseCode::ReadOnly, "EXAMINE completed")
        } else {
            (ResponseCode::ReadWrite, "SELECT completed")
        };
        self.respond(tag, Status::Ok, Some(code), text);
        Flow::Done
    }

    pub(super) fn create(&mut self, tag: &str, name: &str, special_use: Option<&str>) -> Flow {
        if let Some(flow) = self.commit_done(tag, "CREATE completed") {
            return flow;
        }
        // Real folders only: \All and \Flagged name virtual views Gannet does not keep.
        const USES: [&str; 5] = ["\\Archive", "\\Drafts", "\\Junk", "\\Sent", "\\Trash"];
        let special_use = match special_use {
            None => None,
            Some(asked) => match USES.iter().find(|u| u.eq_ignore_ascii_case(asked)) {
                Some(attribute) => Some((*attribute).to_string()),
                None => {
                    let text = "Special-use attribute not supported";
                    self.no(tag, ResponseCode::UseAttr, text);
                    return Flow::Done;
                }
            },
        };
        let (list, lost) = match self.mailboxes_and_quota() {
            Ok(m) => (m.list, m.lost),
            Err(flow) => return flow,
        };
        if name.is_empty()
            || name.eq_ignore_ascii_case("INBOX")
            || list.iter().any(|m| m.name == name)
        {
            self.no(tag, ResponseCode::AlreadyExists, "Mailbox exists");
            return Flow::Done;
        }
        let mut changes = Changes::new();
        // The levels above it too, as RFC 9051 6.3.4 suggests (`a/b/c` makes `a` and
        // `a/b`), none of them subscribed (CREATE does not subscribe: RFC 9051 6.3.7),
        // unless a subscription outlived an earlier mailbox of the name.
        let account = self.account();
        let unsubscribe = |changes: &mut Changes, name: &str| {
            if !lost.iter().any(|l| l == name) {
                changes.subscribe(account, name, false);
            }
        };
        for (at, _) in name.match_indices('/') {
            let parent = name.split_at(at).0;
            if !parent.is_empty() && !list.iter().any(|m| m.name == parent) {
                changes.create_mailbox(account, parent, None, self.now);
                unsubscribe(&mut changes, parent);
            }
        }
        changes.create_mailbox(account, name, special_use.as_deref(), self.now);
        unsubscribe(&mut changes, name);
        Flow::Need(Request::Write(changes))
    }

    pub(super) fn delete(&mut self, tag: &str, name: &str) -> Flow {
        if let Some(flow) = self.commit_done(tag, "DELETE completed") {
            return flow;
        }
        if name == "INBOX" {
            self.no(tag, ResponseCode::Cannot, "INBOX cannot be deleted");
            return Flow::Done;
        }
        let list = match self.mailboxes() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        let Some(found) = list.iter().find(|m| m.name == name) else {
            self.no(tag, ResponseCode::Nonexistent, "No such mailbox");
            return Flow::Done;
        };
        if found.meta.special_use.is_some() {
            let text = "Special-use mailboxes (Drafts, Sent, Trash, Junk) cannot be deleted";
            self.no(tag, ResponseCode::Cannot, text);
            return Flow::Done;
        }
        // Gannet keeps no \Noselect names: a mailbox with children stays (RFC 9051 6.3.5
        // lets the server refuse).
        let children = format!("{name}/");
        if list.iter().any(|m| m.name.starts_with(&children)) {
            let text = "Delete the mailboxes inside it first";
            self.no(tag, ResponseCode::Cannot, text);
            return Flow::Done;
        }
        if matches!(&self.state, State::Selected(s) if s.name == name) {
            self.state = State::Authenticated;
        }
        // Its \Recent claims go with it (ids are never given twice: the book would only
        // grow).
        self.config.recent.forget(self.account(), found.meta.id);
        let mut changes = Changes::new();
        changes.delete_mailbox(self.account(), name);
        Flow::Need(Request::Write(changes))
    }

    pub(super) fn rename(&mut self, tag: &str, from: &str, to: &str) -> Flow {
        if let Some(flow) = self.commit_done(tag, "RENAME completed") {
            return flow;
        }
        let list = match self.mailboxes() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        let Some(source) = list.iter().find(|m| m.name == from) else {
            self.no(tag, ResponseCode::Nonexistent, "No such mailbox");
            return Flow::Done;
        };
        if list.iter().any(|m| m.name == to) || to.eq_ignore_ascii_case("INBOX") {
            self.no(tag, ResponseCode::AlreadyExists, "Target mailbox exists");
            return Flow::Done;
        }
        let mut changes = Changes::new();
        if from == "INBOX" {
            // RFC 9051 6.3.6: INBOX's messages go to a new mailbox; INBOX stays, empty.
            changes.create_mailbox(self.account(), to, None, self.now);
            changes.move_all(
                self.account(),
                source.meta.id,
                Folder::Named(to.to_string()),
            );
        } else {
            // Its inferior names move with it (RFC 9051 6.3.6): `a/c` becomes `z/c`.
            let children = format!("{from}/");
            let mut moving: Vec<(String, String)> = vec![(from.to_string(), to.to_string())];
            for m in list.iter() {
                if let Some(rest) = m.name.strip_prefix(&children) {
                    moving.push((m.name.clone(), format!("{to}/{rest}")));
                }
            }
            if moving
                .iter()
                .skip(1)
                .any(|(_, new)| list.iter().any(|m| &m.name == new))
            {
                self.no(tag, ResponseCode::AlreadyExists, "Target mailbox exists");
                return Flow::Done;
            }
            for (old, new) in moving {
                changes.rename_mailbox(self.account(), &old, &new);
            }
        }
        Flow::Need(Request::Write(changes))
    }

    pub(super) fn subscribe(&mut self, tag: &str, name: &str, on: bool) -> Flow {
        if let Some(flow) = self.commit_done(tag, "Subscription changed") {
            return flow;
        }
        let (list, lost) = match self.mailboxes_and_quota() {
            Ok(m) => (m.list, m.lost),
            Err(flow) => return flow,
        };
        // A name whose mailbox is gone can still be unsubscribed.
        let unsubscribing_lost = !on && lost.iter().any(|l| l == name);
        if !list.iter().any(|m| m.name == name) && !unsubscribing_lost {
            self.no(tag, ResponseCode::Nonexistent, "No such mailbox");
            return Flow::Done;
        }
        let mut changes = Changes::new();
        changes.subscribe(self.account(), name, on);
        Flow::Need(Request::Write(changes))
    }

    pub(super) fn list(
        &mut self,
        tag: &str,
        reference: &str,
        patterns: &[String],
        lsub: bool,
        options: &ListOptions,
    ) -> Flow {
        let (mut list, lost) = match self.mailboxes_and_quota() {
            Ok(m) => (m.list, m.lost),
            Err(flow) => return flow,
        };
        // A subscription that outlived its mailbox applies to a new one of that name.
        for m in &mut list {
            if lost.contains(&m.name) {
                m.meta.subscribed = true;
            }
        }
        let gone: Vec<&String> = (lost.iter())
            .filter(|l| !list.iter().any(|m| &m.name == *l))
            .collect();
        let verb = if lsub { "LSUB" } else { "LIST" };
        if patterns.len() == 1 && patterns[0].is_empty() {
            self.line(&format!("* {verb} (\\Noselect) \"/\" \"\""));
            self.ok(tag, &format!("{verb} completed"));
            return Flow::Done;
        }
        let matches = |name: &str| {
            patterns
                .iter()
                .any(|p| wildcard_match(&format!("{reference}{p}"), name))
        };
        if lsub {
            self.lsub(&list, &gone, &matches);
            self.ok(tag, "LSUB completed");
            return Flow::Done;
        }
        for m in &list {
            // RFC 5258 RECURSIVEMATCH: a parent of a subscribed mailbox is listed too.
            let subscribed_child = options.subscribed_only
                && options.recursive_match
                && list.iter().any(|o| {
                    o.meta.subscribed
                        && o.name
                            .strip_prefix(&m.name)
                            .is_some_and(|r| r.starts_with('/'))
                });
            let selected = matches(&m.name)
                && (!options.subscribed_only || m.meta.subscribed || subscribed_child)
                && (!options.special_use_only || m.meta.special_use.is_some());
            if !selected {
                continue;
            }
            let has_children = list
                .iter()
                .any(|o| o.name.starts_with(&format!("{}/", m.name)));
            let mut attrs = vec![if has_children {
                "\\HasChildren"
            } else {
                "\\HasNoChildren"
            }];
            if let Some(su) = &m.meta.special_use {
                attrs.push(su);
            }
            if m.meta.subscribed && (options.subscribed_only || options.return_subscribed) {
                attrs.push("\\Subscribed");
            }
            let mut l = format!("* LIST ({}) \"/\" ", attrs.join(" ")).into_bytes();
            string(&mut l, self.shown_name(&m.name).as_bytes());
            if subscribed_child {
                l.extend_from_slice(b" (\"CHILDINFO\" (\"SUBSCRIBED\"))");
            }
            l.extend_from_slice(b"\r\n");
            self.io.output.extend_from_slice(&l);
            if !options.status.is_empty() {
                self.status_line(m, &options.status);
            }
        }
        // RFC 5258 3 / RFC 9051 6.3.9: subscribed names without a mailbox, when the
        // subscriptions are asked for.
        if options.subscribed_only {
            for name in gone.iter().filter(|n| matches(n)) {
                let mut l = b"* LIST (\\NonExistent \\Subscribed) \"/\" ".to_vec();
                string(&mut l, self.shown_name(name).as_bytes());
                l.extend_from_slice(b"\r\n");
                self.io.output.extend_from_slice(&l);
            }
        }
        self.ok(tag, "LIST completed");
        Flow::Done
    }

    /// LSUB's lines (RFC 3501 6.3.9): the subscribed mailboxes whose names match; and a
    /// parent that does not match as such but whose subscribed child would, were the
    /// pattern's `%` not stopped by the hierarchy delimiter, listed `\Noselect` (unless
    /// it is subscribed itself).
    /// Subscribed names whose mailbox is gone (`gone`) are listed `\Noselect`.
    fn lsub(&mut self, list: &[MailboxSummary], gone: &[&String], matches: &dyn Fn(&str) -> bool) {
        let subscribed: Vec<&str> = (list.iter())
            .filter(|m| m.meta.subscribed)
            .map(|m| m.name.as_str())
            .chain(gone.iter().map(|g| g.as_str()))
            .collect();
        let mut shown: Vec<(&str, bool)> = Vec::new();
        for &name in &subscribed {
            if matches(name) {
                shown.push((name, gone.iter().any(|g| g.as_str() == name)));
                continue;
            }
            let parents = name.match_indices('/').map(|(at, _)| name.split_at(at).0);
            for parent in parents {
                let listed = shown.iter().any(|(n, _)| *n == parent);
                if matches(parent) && !listed && !subscribed.contains(&parent) {
                    shown.push((parent, true));
                }
            }
        }
        for (name, noselect) in shown {
            let attrs = if noselect { "\\Noselect" } else { "" };
            let mut l = format!("* LSUB ({attrs}) \"/\" ").into_bytes();
            string(&mut l, name.as_bytes());
            l.extend_from_slice(b"\r\n");
            self.io.output.extend_from_slice(&l);
        }
    }

    /// `* STATUS name (ITEM value ...)`, the items that are known in the order asked.
    fn status_line(&mut self, m: &MailboxSummary, items: &[String]) {
        let mut parts = Vec::new();
        for item in items {
            let value = match item.to_ascii_uppercase().as_str() {
                "MESSAGES" => m.messages as u64,
                "UIDNEXT" => m.meta.uidnext as u64,
                "UIDVALIDITY" => m.meta.uidvalidity as u64,
                "UNSEEN" => m.unseen as u64,
                "DELETED" => m.deleted as u64,
                "SIZE" => m.size,
                "RECENT" => m.recent as u64,
                "HIGHESTMODSEQ" => m.meta.shown_highest_modseq(),
                _ => continue,
            };
            parts.push(format!("{} {value}", item.to_ascii_uppercase()));
        }
        let mut l = b"* STATUS ".to_vec();
        string(&mut l, self.shown_name(&m.name).as_bytes());
        l.extend_from_slice(format!(" ({})\r\n", parts.join(" ")).as_bytes());
        self.io.output.extend_from_slice(&l);
    }

    pub(super) fn status(&mut self, tag: &str, name: &str, items: &[String]) -> Flow {
        let list = match self.mailboxes() {
            Ok(l) => l,
            Err(flow) => return flow,
        };
        match list.iter().find(|m| m.name == name) {
            Some(m) => {
                self.status_line(m, items);
                self.ok(tag, "STATUS completed");
            }
            None => self.no(tag, ResponseCode::Nonexistent, "No such mailbox"),
        }
        Flow::Done
    }

    /// GETQUOTA and GETQUOTAROOT: one quota root, "", for the whole account.
    pub(super) fn quota(&mut self, tag: &str, cmd: &Cmd) -> Flow {
        let MailboxesAndQuota { used, limit, .. } = match self.mailboxes_and_quota() {
            Ok(q) => q,
            Err(flow) => return flow,
        };
        if let Cmd::GetQuotaRoot(mailbox) = cmd {
            let mut l = b"* QUOTAROOT ".to_vec();
            string(&mut l, self.shown_name(mailbox).as_bytes());
            l.extend_from_slice(b" \"\"\r\n");
            self.io.output.extend_from_slice(&l);
        } else if let Cmd::GetQuota(root) = cmd {
            if !root.is_empty() {
                self.no(tag, ResponseCode::Nonexistent, "No such quota root");
                return Flow::Done;
            }
        }
        self.line(&format!(
            "* QUOTA \"\" (STORAGE {} {})",
            used.div_ceil(1024),
            limit / 1024
        ));
        self.ok(tag, "GETQUOTA completed");
        Flow::Done
    }
}
