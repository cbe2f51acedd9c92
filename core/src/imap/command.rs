//! IMAP commands as owned values, parsed from one framed command.

use super::parse::{sequence_set, Bad, Reader, Value, MAX_DEPTH};
use super::response::RECENT;
use super::structure::SectionText;
use super::thread::SortKey;

pub type SeqSet = Vec<(u32, u32)>;

/// What an ESEARCH answer carries (RFC 4731 `RETURN`): `RETURN ()` means ALL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SearchReturn {
    pub min: bool,
    pub max: bool,
    pub all: bool,
    pub count: bool,
}

/// The options of `SEARCH RETURN (...)`.
fn search_return(options: &Value) -> Result<SearchReturn, Bad> {
    let Value::List(items) = options else {
        return Err(Bad("RETURN takes a list".into()));
    };
    let mut out = SearchReturn::default();
    for item in items {
        match item.text().map(|t| t.to_ascii_uppercase()).as_deref() {
            Some("MIN") => out.min = true,
            Some("MAX") => out.max = true,
            Some("ALL") => out.all = true,
            Some("COUNT") => out.count = true,
            // SAVE (RFC 5182) and the like are not offered.
            _ => return Err(Bad("unknown RETURN option".into())),
        }
    }
    if !(out.min || out.max || out.all || out.count) {
        out.all = true;
    }
    Ok(out)
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: String,
        pass: String,
    },
    Authenticate {
        mechanism: String,
        initial: Option<Vec<u8>>,
    },
    Enable(Vec<String>),
    Id,
    Namespace,
    Select {
        mailbox: String,
        read_only: bool,
        /// `(CONDSTORE)`: enables CONDSTORE (RFC 7162 3.1.8).
        condstore: bool,
        /// `(QRESYNC (...))`: what the client knew of the mailbox (RFC 7162 3.2.5).
        qresync: Option<Qresync>,
    },
    /// CREATE, with the special-use attribute asked for (RFC 6154 `(USE (\\Junk))`).
    Create(String, Option<String>),
    Delete(String),
    Rename(String, String),
    Subscribe(String, bool),
    List {
        reference: String,
        patterns: Vec<String>,
        lsub: bool,
        options: ListOptions,
    },
    Status {
        mailbox: String,
        items: Vec<String>,
    },
    Append {
        mailbox: String,
        flags: Vec<String>,
        date: Option<i64>,
        message: Vec<u8>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SeqSet>,
    },
    Search {
        uid: bool,
        key: SearchKey,
        /// `SEARCH RETURN (...)` (RFC 4731): what the ESEARCH answer carries; None for a
        /// plain SEARCH.
        returns: Option<SearchReturn>,
    },
    /// SORT (RFC 5256): the messages matching `key`, in the order of `criteria` (each
    /// with REVERSE or not).
    Sort {
        uid: bool,
        criteria: Vec<(SortKey, bool)>,
        key: SearchKey,
    },
    /// THREAD (RFC 5256): REFERENCES (true) or ORDEREDSUBJECT.
    Thread {
        uid: bool,
        references: bool,
        key: SearchKey,
    },
    Fetch {
        uid: bool,
        set: SeqSet,
        items: Vec<FetchItem>,
        /// `(CHANGEDSINCE n)`: only messages changed since (RFC 7162 3.1.4.1).
        changed_since: Option<u64>,
        /// `(VANISHED)` with CHANGEDSINCE on UID FETCH: the expunged UIDs of the set too.
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SeqSet,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
        /// `(UNCHANGEDSINCE n)`: only on messages not changed since (RFC 7162 3.1.3).
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: SeqSet,
        mailbox: String,
        remove: bool,
    },
    GetQuota(String),
    GetQuotaRoot(String),
    /// A well-formed SEARCH, SORT or THREAD in a charset Gannet does not read.
    BadCharset,
}

/// LIST-EXTENDED's selection and return options (RFC 5258, RFC 6154, RFC 5819).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListOptions {
    /// `(SUBSCRIBED)` (and LSUB): subscribed mailboxes only, marked `\Subscribed`.
    pub subscribed_only: bool,
    /// `(SPECIAL-USE)`: mailboxes with a special-use attribute only.
    pub special_use_only: bool,
    /// `(RECURSIVEMATCH)` with SUBSCRIBED: also a mailbox that is not subscribed but has
    /// a subscribed child, with `CHILDINFO ("SUBSCRIBED")`.
    pub recursive_match: bool,
    /// `RETURN (SUBSCRIBED)`: `\Subscribed` on those that are.
    pub return_subscribed: bool,
    /// `RETURN (STATUS (...))`: a STATUS line per mailbox with these items.
    pub status: Vec<String>,
}

/// The QRESYNC select parameter: the UIDVALIDITY and highest modification sequence the
/// client last saw, and optionally the UIDs it knows of (its message sequence match data
/// is read and not used: without it the answer is only longer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    pub known_uids: Option<SeqSet>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchItem {
    Uid,
    /// MODSEQ (RFC 7162).
    ModSeq,
    Flags,
    InternalDate,
    Size,
    Envelope,
    BodyStructure,
    Body,
    Section {
        /// The item's name as it is echoed back (`BODY[HEADER]<0>`).
        name: String,
        peek: bool,
        path: Vec<u32>,
        text: SectionText,
        partial: Option<(u32, u32)>,
        /// BINARY[...]: the part's content with its transfer encoding undone (RFC 3516).
        binary: bool,
    },
    /// BINARY.SIZE[part]: the size of the part's content once decoded (RFC 3516).
    BinarySize {
        /// The item's name as it is echoed back (`BINARY.SIZE[1]`).
        name: String,
        path: Vec<u32>,
    },
}

impl FetchItem {
    /// True when the message bytes are needed to answer.
    pub fn needs_body(&self) -> bool {
        matches!(
            self,
            FetchItem::Envelope
                | FetchItem::BodyStructure
                | FetchItem::Body
                | FetchItem::Section { .. }
                | FetchItem::BinarySize { .. }
        )
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum SearchKey {
    All,
    And(Vec<SearchKey>),
    Or(Box<SearchKey>, Box<SearchKey>),
    Not(Box<SearchKey>),
    Seq(SeqSet),
    Uid(SeqSet),
    /// Flag bit set (true) or not set (false).
    Flag(u32, bool),
    Keyword(String, bool),
    Larger(u64),
    Smaller(u64),
    /// Internal date: before, on, since (day numbers since the epoch).
    Before(i64),
    On(i64),
    Since(i64),
    SentBefore(i64),
    SentOn(i64),
    SentSince(i64),
    Header(String, String),
    Body(String),
    Text(String),
    /// MODSEQ n: changed at or after modification sequence n (RFC 7162 3.1.5).
    ModSeq(u64),
    None,
}

impl SearchKey {
    /// Whether the key tests modification sequences (the answer then names the highest
    /// of the messages found: RFC 7162 3.1.5).
    pub fn uses_modseq(&self) -> bool {
        match self {
            SearchKey::And(v) => v.iter().any(SearchKey::uses_modseq),
            SearchKey::Or(a, b) => a.uses_modseq() || b.uses_modseq(),
            SearchKey::Not(a) => a.uses_modseq(),
            SearchKey::ModSeq(_) => true,
            _ => false,
        }
    }

    pub fn needs_body(&self) -> bool {
        match self {
            SearchKey::And(v) => v.iter().any(SearchKey::needs_body),
            SearchKey::Or(a, b) => a.needs_body() || b.needs_body(),
            SearchKey::Not(a) => a.needs_body(),
            SearchKey::Header(..)
            | SearchKey::Body(_)
            | SearchKey::Text(_)
            | SearchKey::SentBefore(_)
            | SearchKey::SentOn(_)
            | SearchKey::SentSince(_) => true,
            _ => false,
        }
    }
}

/// Mailbox names: INBOX is case-insensitive.
pub fn mailbox_name(raw: String) -> String {
    if raw.eq_ignore_ascii_case("INBOX") {
        "INBOX".into()
    } else {
        raw
    }
}

impl Cmd {
    /// The command with every mailbox name (and LIST reference and pattern) passed
    /// through `f`; None when `f` refuses one.
    pub fn map_names(self, f: impl Fn(&str) -> Option<String>) -> Option<Cmd> {
        let cmd = match self {
            Cmd::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            } => Cmd::Select {
                mailbox: f(&mailbox)?,
                read_only,
                condstore,
                qresync,
            },
            Cmd::Create(name, special_use) => Cmd::Create(f(&name)?, special_use),
            Cmd::Delete(name) => Cmd::Delete(f(&name)?),
            Cmd::Rename(from, to) => Cmd::Rename(f(&from)?, f(&to)?),
            Cmd::Subscribe(name, on) => Cmd::Subscribe(f(&name)?, on),
            Cmd::List {
                reference,
                patterns,
                lsub,
                options,
            } => Cmd::List {
                reference: f(&reference)?,
                patterns: (patterns.iter()).map(|p| f(p)).collect::<Option<_>>()?,
                lsub,
                options,
            },
            Cmd::Status { mailbox, items } => Cmd::Status {
                mailbox: f(&mailbox)?,
                items,
            },
            Cmd::Append {
                mailbox,
                flags,
                date,
                message,
            } => Cmd::Append {
                mailbox: f(&mailbox)?,
                flags,
                date,
                message,
            },
            Cmd::Copy {
                uid,
                set,
                mailbox,
                remove,
            } => Cmd::Copy {
                uid,
                set,
                mailbox: f(&mailbox)?,
                remove,
            },
            Cmd::GetQuotaRoot(mailbox) => Cmd::GetQuotaRoot(f(&mailbox)?),
            other => other,
        };
        Some(cmd)
    }
}

/// The state a command needs, known from its name alone: the session refuses a command
/// its state does not allow before parsing the arguments, so an unauthenticated client
/// gets no further than the names of LOGIN, AUTHENTICATE and the like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Any state (and names the parser will refuse).
    Any,
    Authenticated,
    Selected,
}

/// What state the command `name` (after `UID` when `uid`) needs.
pub fn needs(name: &str, uid: bool) -> Needs {
    match (name, uid) {
        (
            "CAPABILITY" | "NOOP" | "LOGOUT" | "STARTTLS" | "LOGIN" | "AUTHENTICATE" | "ID"
            | "CHECK",
            false,
        ) => Needs::Any,
        (
            "CLOSE" | "UNSELECT" | "EXPUNGE" | "SEARCH" | "SORT" | "THREAD" | "FETCH" | "STORE"
            | "COPY" | "MOVE",
            _,
        ) => Needs::Selected,
        (_, true) => Needs::Any,
        (
            "ENABLE" | "NAMESPACE" | "SELECT" | "EXAMINE" | "CREATE" | "DELETE" | "RENAME"
            | "SUBSCRIBE" | "UNSUBSCRIBE" | "LIST" | "LSUB" | "STATUS" | "APPEND" | "IDLE"
            | "GETQUOTA" | "GETQUOTAROOT",
            false,
        ) => Needs::Authenticated,
        _ => Needs::Any,
    }
}

/// Parses the command after its tag.
pub fn parse(r: &mut Reader<'_>) -> Result<Cmd, Bad> {
    let (name, uid) = command_name(r)?;
    parse_args(r, &name, uid)
}

/// The command's name, upper-cased, and whether it came after `UID`.
pub fn command_name(r: &mut Reader<'_>) -> Result<(String, bool), Bad> {
    let name = r.atom()?.to_ascii_uppercase();
    if name == "UID" {
        r.space()?;
        return Ok((r.atom()?.to_ascii_uppercase(), true));
    }
    Ok((name, false))
}

/// The arguments of the command `name`, up to the end of the command.
pub fn parse_args(r: &mut Reader<'_>, name: &str, uid: bool) -> Result<Cmd, Bad> {
    let mailbox = |r: &mut Reader<'_>| -> Result<String, Bad> {
        r.space()?;
        Ok(mailbox_name(r.astring_text()?))
    };
    let cmd = match (name, uid) {
        ("CAPABILITY", false) => Cmd::Capability,
        ("NOOP", false) => Cmd::Noop,
        ("LOGOUT", false) => Cmd::Logout,
        ("STARTTLS", false) => Cmd::StartTls,
        ("LOGIN", false) => {
            r.space()?;
            let user = r.astring_text()?;
            r.space()?;
            let pass = r.astring_text()?;
            Cmd::Login { user, pass }
        }
        ("AUTHENTICATE", false) => {
            r.space()?;
            let mechanism = r.atom()?.to_ascii_uppercase();
            let initial = if r.maybe_space() {
                Some(r.atom_with(b"=+/")?.into_bytes())
            } else {
                None
            };
            Cmd::Authenticate { mechanism, initial }
        }
        ("ENABLE", false) => {
            let mut caps = Vec::new();
            while r.maybe_space() {
                caps.push(r.atom()?);
            }
            Cmd::Enable(caps)
        }
        ("ID", false) => {
            r.space()?;
            r.value()?;
            Cmd::Id
        }
        ("NAMESPACE", false) => Cmd::Namespace,
        ("SELECT", false) | ("EXAMINE", false) => {
            let mailbox = mailbox(r)?;
            let (condstore, qresync) = if r.maybe_space() {
                select_params(r.value()?)?
            } else {
                (false, None)
            };
            Cmd::Select {
                mailbox,
                read_only: name == "EXAMINE",
                condstore,
                qresync,
            }
        }
        ("CREATE", false) => {
            let m = mailbox(r)?;
            let mut special_use = None;
            if r.maybe_space() {
                let Value::List(params) = r.value()? else {
                    return Err(Bad("expected CREATE parameters".into()));
                };
                let mut it = params.into_iter();
                while let Some(p) = it.next() {
                    match (
                        p.text().map(|t| t.to_ascii_uppercase()).as_deref(),
                        it.next(),
                    ) {
                        (Some("USE"), Some(Value::List(uses))) if uses.len() <= 1 => {
                            special_use = uses.first().and_then(Value::text);
                        }
                        _ => return Err(Bad("unknown CREATE parameter".into())),
                    }
                }
            }
            Cmd::Create(m.trim_end_matches('/').to_string(), special_use)
        }
        ("DELETE", false) => Cmd::Delete(mailbox(r)?),
        ("RENAME", false) => {
            let from = mailbox(r)?;
            Cmd::Rename(from, mailbox(r)?)
        }
        ("SUBSCRIBE", false) => Cmd::Subscribe(mailbox(r)?, true),
        ("UNSUBSCRIBE", false) => Cmd::Subscribe(mailbox(r)?, false),
        ("LIST", false) | ("LSUB", false) => parse_list(r, name == "LSUB")?,
        ("STATUS", false) => {
            let mailbox = mailbox(r)?;
            r.space()?;
            let items = atoms(r.value()?)?;
            Cmd::Status { mailbox, items }
        }
        ("APPEND", false) => parse_append(r)?,
        ("IDLE", false) => Cmd::Idle,
        ("CHECK", false) => Cmd::Check,
        ("CLOSE", false) => Cmd::Close,
        ("UNSELECT", false) => Cmd::Unselect,
        ("EXPUNGE", false) => Cmd::Expunge { uids: None },
        ("EXPUNGE", true) => {
            r.space()?;
            Cmd::Expunge {
                uids: Some(sequence_set(&r.atom_with(b"*")?)?),
            }
        }
        ("SEARCH", _) => {
            let mut returns = None;
            r.space()?;
            if r.rest_starts_with_ci(b"RETURN") {
                r.atom()?;
                r.space()?;
                returns = Some(search_return(&r.value()?)?);
                r.space()?;
            }
            let mut charset_known = true;
            if r.rest_starts_with_ci(b"CHARSET ") {
                r.atom()?;
                r.space()?;
                charset_known = known_charset(&r.astring()?);
                r.space()?;
            }
            let key = search_keys(r)?;
            if !charset_known {
                return Ok(Cmd::BadCharset);
            }
            Cmd::Search { uid, key, returns }
        }
        ("SORT", _) => {
            r.space()?;
            let Value::List(items) = r.value()? else {
                return Err(Bad("SORT takes a list of criteria".into()));
            };
            let mut criteria = Vec::new();
            let mut reverse = false;
            for item in &items {
                let word = item
                    .text()
                    .map(|t| t.to_ascii_uppercase())
                    .unwrap_or_default();
                let key = match word.as_str() {
                    "REVERSE" if !reverse => {
                        reverse = true;
                        continue;
                    }
                    "ARRIVAL" => SortKey::Arrival,
                    "CC" => SortKey::Cc,
                    "DATE" => SortKey::Date,
                    "FROM" => SortKey::From,
                    "SIZE" => SortKey::Size,
                    "SUBJECT" => SortKey::Subject,
                    "TO" => SortKey::To,
                    _ => return Err(Bad("unknown sort criterion".into())),
                };
                criteria.push((key, reverse));
                reverse = false;
            }
            if criteria.is_empty() || reverse {
                return Err(Bad("SORT needs a criterion".into()));
            }
            r.space()?;
            let charset_known = known_charset(&r.astring()?);
            r.space()?;
            let key = search_keys(r)?;
            if !charset_known {
                return Ok(Cmd::BadCharset);
            }
            Cmd::Sort { uid, criteria, key }
        }
        ("THREAD", _) => {
            r.space()?;
            let references = match r.atom()?.to_ascii_uppercase().as_str() {
                "REFERENCES" => true,
                "ORDEREDSUBJECT" => false,
                _ => return Err(Bad("unknown threading algorithm".into())),
            };
            r.space()?;
            let charset_known = known_charset(&r.astring()?);
            r.space()?;
            let key = search_keys(r)?;
            if !charset_known {
                return Ok(Cmd::BadCharset);
            }
            Cmd::Thread {
                uid,
                references,
                key,
            }
        }
        ("FETCH", _) => {
            r.space()?;
            let set = sequence_set(&r.atom_with(b"*")?)?;
            r.space()?;
            let items = fetch_items(r)?;
            let (mut changed_since, mut vanished) = (None, false);
            if r.maybe_space() {
                let modifiers = r.value()?;
                let Value::List(modifiers) = modifiers else {
                    return Err(Bad("expected FETCH modifiers".into()));
                };
                let mut it = modifiers.iter();
                while let Some(m) = it.next() {
                    match m.text().map(|t| t.to_ascii_uppercase()).as_deref() {
                        Some("CHANGEDSINCE") => changed_since = Some(number64(it.next())?),
                        Some("VANISHED") => vanished = true,
                        _ => return Err(Bad("unknown FETCH modifier".into())),
                    }
                }
                // VANISHED only with CHANGEDSINCE, on UID FETCH (RFC 7162 3.2.6).
                if vanished && (changed_since.is_none() || !uid) {
                    return Err(Bad("VANISHED needs UID FETCH and CHANGEDSINCE".into()));
                }
            }
            Cmd::Fetch {
                uid,
                set,
                items,
                changed_since,
                vanished,
            }
        }
        ("STORE", _) => {
            r.space()?;
            let set = sequence_set(&r.atom_with(b"*")?)?;
            r.space()?;
            let mut unchanged_since = None;
            if r.peek_is(b'(') {
                let Value::List(modifiers) = r.value()? else {
                    return Err(Bad("expected STORE modifiers".into()));
                };
                let mut it = modifiers.iter();
                while let Some(m) = it.next() {
                    match m.text().map(|t| t.to_ascii_uppercase()).as_deref() {
                        Some("UNCHANGEDSINCE") => unchanged_since = Some(number64(it.next())?),
                        _ => return Err(Bad("unknown STORE modifier".into())),
                    }
                }
                r.space()?;
            }
            let what = r.atom_with(b".+-")?.to_ascii_uppercase();
            let (mode, rest) = if let Some(rest) = what.strip_prefix('+') {
                (StoreMode::Add, rest)
            } else if let Some(rest) = what.strip_prefix('-') {
                (StoreMode::Remove, rest)
            } else {
                (StoreMode::Replace, what.as_str())
            };
            let silent = match rest {
                "FLAGS" => false,
                "FLAGS.SILENT" => true,
                _ => return Err(Bad("unknown STORE item".into())),
            };
            r.space()?;
            let flags = if r.peek_is(b'(') {
                r.flag_list()?
            } else {
                let mut flags = vec![r.flag()?];
                while r.maybe_space() {
                    flags.push(r.flag()?);
                }
                flags
            };
            Cmd::Store {
                uid,
                set,
                mode,
                silent,
                flags,
                unchanged_since,
            }
        }
        ("COPY", _) | ("MOVE", _) => {
            r.space()?;
            let set = sequence_set(&r.atom_with(b"*")?)?;
            let mailbox = mailbox(r)?;
            Cmd::Copy {
                uid,
                set,
                mailbox,
                remove: name == "MOVE",
            }
        }
        ("GETQUOTA", false) => {
            r.space()?;
            Cmd::GetQuota(r.astring_text()?)
        }
        ("GETQUOTAROOT", false) => Cmd::GetQuotaRoot(mailbox(r)?),
        _ => return Err(Bad(format!("unknown command {name}"))),
    };
    r.expect_end()?;
    Ok(cmd)
}

/// Whether a search's charset is one Gannet reads its strings in (RFC 9051 6.4.4:
/// US-ASCII and UTF-8, which contains it).
fn known_charset(name: &[u8]) -> bool {
    name.eq_ignore_ascii_case(b"UTF-8") || name.eq_ignore_ascii_case(b"US-ASCII")
}

/// The search keys up to the end of the command (all must match).
fn search_keys(r: &mut Reader<'_>) -> Result<SearchKey, Bad> {
    let mut keys = vec![search_key(r, 0)?];
    while r.maybe_space() {
        keys.push(search_key(r, 0)?);
    }
    Ok(if keys.len() == 1 {
        keys.pop().unwrap_or(SearchKey::All)
    } else {
        SearchKey::And(keys)
    })
}

/// A modification sequence or other 63-bit number given as an atom.
fn number64(v: Option<&Value>) -> Result<u64, Bad> {
    v.and_then(Value::text)
        .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|n| *n <= i64::MAX as u64)
        .ok_or_else(|| Bad("expected a number".into()))
}

/// SELECT's parameters: `(CONDSTORE)`, `(QRESYNC (uidvalidity modseq [known-uids
/// [(seqs uids)]]))`.
fn select_params(v: Value) -> Result<(bool, Option<Qresync>), Bad> {
    let Value::List(params) = v else {
        return Err(Bad("expected SELECT parameters".into()));
    };
    let (mut condstore, mut qresync) = (false, None);
    let mut it = params.iter();
    while let Some(p) = it.next() {
        match p.text().map(|t| t.to_ascii_uppercase()).as_deref() {
            Some("CONDSTORE") => condstore = true,
            Some("QRESYNC") => {
                let Some(Value::List(args)) = it.next() else {
                    return Err(Bad("QRESYNC takes a list".into()));
                };
                let uidvalidity = u32::try_from(number64(args.first())?)
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or_else(|| Bad("bad UIDVALIDITY".into()))?;
                let modseq = number64(args.get(1))?;
                let known_uids = match args.get(2) {
                    Some(Value::Atom(set)) => Some(sequence_set(set)?),
                    _ => None,
                };
                qresync = Some(Qresync {
                    uidvalidity,
                    modseq,
                    known_uids,
                });
            }
            _ => return Err(Bad("unknown SELECT parameter".into())),
        }
    }
    Ok((condstore, qresync))
}

fn atoms(v: Value) -> Result<Vec<String>, Bad> {
    match v {
        Value::List(items) => items
            .into_iter()
            .map(|i| i.text().ok_or(Bad("expected atoms".into())))
            .collect(),
        other => Ok(vec![other.text().ok_or(Bad("expected atoms".into()))?]),
    }
}

/// Most patterns one LIST may give (each is matched against every mailbox).
const MAX_PATTERNS: usize = 64;

fn parse_list(r: &mut Reader<'_>, lsub: bool) -> Result<Cmd, Bad> {
    r.space()?;
    let mut options = ListOptions {
        subscribed_only: lsub,
        ..ListOptions::default()
    };
    if r.peek_is(b'(') {
        let selection = atoms(r.value()?)?;
        let has = |name: &str| selection.iter().any(|o| o.eq_ignore_ascii_case(name));
        options.subscribed_only |= has("SUBSCRIBED");
        options.special_use_only = has("SPECIAL-USE");
        options.recursive_match = has("RECURSIVEMATCH");
        r.space()?;
    }
    let reference = r.astring_text()?;
    r.space()?;
    // LIST-EXTENDED (RFC 5258): several patterns in parentheses.
    let patterns = if r.peek_is(b'(') {
        r.open_paren()?;
        let mut patterns = vec![r.pattern()?];
        while !r.close_paren() {
            if patterns.len() >= MAX_PATTERNS {
                return Err(Bad("too many patterns".into()));
            }
            r.space()?;
            patterns.push(r.pattern()?);
        }
        patterns
    } else {
        vec![r.pattern()?]
    };
    if r.maybe_space() {
        let word = r.atom()?;
        if !word.eq_ignore_ascii_case("RETURN") {
            return Err(Bad("expected RETURN".into()));
        }
        r.space()?;
        if let Value::List(opts) = r.value()? {
            let mut it = opts.into_iter();
            while let Some(o) = it.next() {
                match &o {
                    Value::Atom(a) if a.eq_ignore_ascii_case("STATUS") => {
                        if let Some(items) = it.next() {
                            options.status = atoms(items)?;
                        }
                    }
                    Value::Atom(a) if a.eq_ignore_ascii_case("SUBSCRIBED") => {
                        options.return_subscribed = true;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(Cmd::List {
        reference,
        patterns,
        lsub,
        options,
    })
}

fn parse_append(r: &mut Reader<'_>) -> Result<Cmd, Bad> {
    r.space()?;
    let mailbox = mailbox_name(r.astring_text()?);
    r.space()?;
    let mut flags = Vec::new();
    let mut date = None;
    if r.peek_is(b'(') {
        flags = r.flag_list()?;
        r.space()?;
    }
    if r.peek_is(b'"') {
        let text = r.astring_text()?;
        date = Some(parse_date_time(&text).ok_or(Bad("bad date-time".into()))?);
        r.space()?;
    }
    // A literal8 (`~{n}`, RFC 3516 BINARY) may carry any octets.
    let message = if r.peek_is(b'~') {
        r.literal8()?
    } else {
        r.astring()?
    };
    Ok(Cmd::Append {
        mailbox,
        flags,
        date,
        message,
    })
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

/// Days since the epoch of a civil date.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// "1-Feb-2024" → days since the epoch.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut it = text.trim().split('-');
    let d: u32 = it.next()?.trim().parse().ok()?;
    let month = it.next()?.get(..3)?;
    let m = MONTHS.iter().position(|m| m.eq_ignore_ascii_case(month))? as u32 + 1;
    let y: i64 = it.next()?.trim().parse().ok()?;
    Some(days_from_civil(y, m, d))
}

/// "17-Jul-1996 02:44:25 -0700" → Unix time.
pub fn parse_date_time(text: &str) -> Option<i64> {
    let mut parts = text.split_whitespace();
    let days = parse_date(parts.next()?)?;
    let hms: Vec<i64> = parts
        .next()?
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let zone = parts.next()?;
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    let z: i64 = zone.get(1..)?.parse().ok()?;
    let offset = sign * ((z / 100) * 3600 + (z % 100) * 60);
    Some(days * 86400 + hms.first()? * 3600 + hms.get(1)? * 60 + hms.get(2)? - offset)
}

/// One search key, inside `depth` groups, NOTs and ORs: at most [`MAX_DEPTH`], so the
/// recursion here (and over the parsed key when it is matched) stays bounded.
fn search_key(r: &mut Reader<'_>, depth: usize) -> Result<SearchKey, Bad> {
    if depth >= MAX_DEPTH {
        return Err(Bad("search keys nested too deeply".into()));
    }
    if r.peek_is(b'(') {
        // A parenthesized group.
        let mut keys = Vec::new();
        r.open_paren()?;
        loop {
            keys.push(search_key(r, depth + 1)?);
            if r.close_paren() {
                break;
            }
            r.space()?;
        }
        return Ok(if keys.len() == 1 {
            keys.remove(0)
        } else {
            SearchKey::And(keys)
        });
    }
    let word = r.atom_with(b"*:,")?;
    let upper = word.to_ascii_uppercase();
    let arg = |r: &mut Reader<'_>| -> Result<String, Bad> {
        r.space()?;
        r.astring_text()
    };
    let date = |s: String| parse_date(&s).ok_or(Bad("bad date".into()));
    use super::response::system_flag;
    use crate::store::schema::flags as f;
    Ok(match upper.as_str() {
        "ALL" => SearchKey::All,
        "ANSWERED" => SearchKey::Flag(f::ANSWERED, true),
        "DELETED" => SearchKey::Flag(f::DELETED, true),
        "DRAFT" => SearchKey::Flag(f::DRAFT, true),
        "FLAGGED" => SearchKey::Flag(f::FLAGGED, true),
        "SEEN" => SearchKey::Flag(f::SEEN, true),
        "UNANSWERED" => SearchKey::Flag(f::ANSWERED, false),
        "UNDELETED" => SearchKey::Flag(f::DELETED, false),
        "UNDRAFT" => SearchKey::Flag(f::DRAFT, false),
        "UNFLAGGED" => SearchKey::Flag(f::FLAGGED, false),
        "UNSEEN" => SearchKey::Flag(f::SEEN, false),
        "RECENT" => SearchKey::Flag(RECENT, true),
        "OLD" => SearchKey::Flag(RECENT, false),
        "NEW" => SearchKey::And(vec![
            SearchKey::Flag(RECENT, true),
            SearchKey::Flag(f::SEEN, false),
        ]),
        "KEYWORD" | "UNKEYWORD" => {
            let k = arg(r)?;
            match system_flag(&k) {
                Some(bit) => SearchKey::Flag(bit, upper == "KEYWORD"),
                None => SearchKey::Keyword(k, upper == "KEYWORD"),
            }
        }
        "MODSEQ" => {
            r.space()?;
            // An entry name and type may come first (`"/flags/\\draft" all`): one
            // modification sequence per message here, whatever the entry.
            if r.peek_is(b'"') {
                r.astring()?;
                r.space()?;
                r.atom()?;
                r.space()?;
            }
            SearchKey::ModSeq(number64(Some(&Value::Atom(r.atom()?)))?)
        }
        "LARGER" => SearchKey::Larger(arg(r)?.parse().map_err(|_| Bad("bad number".into()))?),
        "SMALLER" => SearchKey::Smaller(arg(r)?.parse().map_err(|_| Bad("bad number".into()))?),
        "UID" => {
            r.space()?;
            SearchKey::Uid(sequence_set(&r.atom_with(b"*:,")?)?)
        }
        "BEFORE" => SearchKey::Before(date(arg(r)?)?),
        "ON" => SearchKey::On(date(arg(r)?)?),
        "SINCE" => SearchKey::Since(date(arg(r)?)?),
        "SENTBEFORE" => SearchKey::SentBefore(date(arg(r)?)?),
        "SENTON" => SearchKey::SentOn(date(arg(r)?)?),
        "SENTSINCE" => SearchKey::SentSince(date(arg(r)?)?),
        "FROM" | "TO" | "CC" | "BCC" | "SUBJECT" => SearchKey::Header(upper.clone(), arg(r)?),
        "HEADER" => {
            let field = arg(r)?;
            SearchKey::Header(field.to_ascii_uppercase(), arg(r)?)
        }
        "BODY" => SearchKey::Body(arg(r)?),
        "TEXT" => SearchKey::Text(arg(r)?),
        "NOT" => {
            r.space()?;
            SearchKey::Not(Box::new(search_key(r, depth + 1)?))
        }
        "OR" => {
            r.space()?;
            let a = search_key(r, depth + 1)?;
            r.space()?;
            SearchKey::Or(Box::new(a), Box::new(search_key(r, depth + 1)?))
        }
        _ if word
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_digit() || b == b'*') =>
        {
            SearchKey::Seq(sequence_set(&word)?)
        }
        _ => return Err(Bad(format!("unknown search key {word}"))),
    })
}

fn fetch_items(r: &mut Reader<'_>) -> Result<Vec<FetchItem>, Bad> {
    let mut names = Vec::new();
    if r.peek_is(b'(') {
        r.open_paren()?;
        loop {
            names.push(r.fetch_item()?);
            if r.close_paren() {
                break;
            }
            r.space()?;
        }
    } else {
        names.push(r.fetch_item()?);
    }
    let mut items = Vec::new();
    for n in names {
        match n.to_ascii_uppercase().as_str() {
            "ALL" => items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Size,
                FetchItem::Envelope,
            ]),
            "FAST" => items.extend([FetchItem::Flags, FetchItem::InternalDate, FetchItem::Size]),
            "FULL" => items.extend([
                FetchItem::Flags,
                FetchItem::InternalDate,
                FetchItem::Size,
                FetchItem::Envelope,
                FetchItem::Body,
            ]),
            _ => items.push(fetch_item(&n)?),
        }
    }
    Ok(items)
}

fn fetch_item(name: &str) -> Result<FetchItem, Bad> {
    let upper = name.to_ascii_uppercase();
    let simple = match upper.as_str() {
        "UID" => Some(FetchItem::Uid),
        "MODSEQ" => Some(FetchItem::ModSeq),
        "FLAGS" => Some(FetchItem::Flags),
        "INTERNALDATE" => Some(FetchItem::InternalDate),
        "RFC822.SIZE" => Some(FetchItem::Size),
        "ENVELOPE" => Some(FetchItem::Envelope),
        "BODYSTRUCTURE" => Some(FetchItem::BodyStructure),
        "BODY" => Some(FetchItem::Body),
        "RFC822" => Some(section_item(
            "RFC822",
            false,
            vec![],
            SectionText::Full,
            None,
        )),
        "RFC822.HEADER" => Some(section_item(
            "RFC822.HEADER",
            true,
            vec![],
            SectionText::Header,
            None,
        )),
        "RFC822.TEXT" => Some(section_item(
            "RFC822.TEXT",
            false,
            vec![],
            SectionText::Text,
            None,
        )),
        _ => None,
    };
    if let Some(item) = simple {
        return Ok(item);
    }
    if let Some(spec) = upper
        .strip_prefix("BINARY.SIZE[")
        .and_then(|rest| rest.strip_suffix(']'))
    {
        let path = (spec.split('.').filter(|w| !w.is_empty()))
            .map(|w| w.parse::<u32>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| Bad("BINARY.SIZE takes a part number only".into()))?;
        return Ok(FetchItem::BinarySize {
            name: format!("BINARY.SIZE[{spec}]"),
            path,
        });
    }
    let (peek, binary, rest) = if let Some(rest) = upper.strip_prefix("BODY.PEEK[") {
        (true, false, rest)
    } else if let Some(rest) = upper.strip_prefix("BODY[") {
        (false, false, rest)
    } else if let Some(rest) = upper.strip_prefix("BINARY.PEEK[") {
        (true, true, rest)
    } else if let Some(rest) = upper.strip_prefix("BINARY[") {
        (false, true, rest)
    } else {
        return Err(Bad(format!("unknown fetch item {name}")));
    };
    let (spec, after) = rest.split_once(']').ok_or(Bad("missing ]".into()))?;
    let partial = if after.is_empty() {
        None
    } else {
        let inner = after
            .strip_prefix('<')
            .and_then(|a| a.strip_suffix('>'))
            .ok_or(Bad("bad partial".into()))?;
        let (a, b) = inner.split_once('.').ok_or(Bad("bad partial".into()))?;
        Some((
            a.parse().map_err(|_| Bad("bad partial".into()))?,
            b.parse().map_err(|_| Bad("bad partial".into()))?,
        ))
    };
    let mut path = Vec::new();
    let mut words = spec.split('.').peekable();
    while let Some(w) = words.peek() {
        match w.parse::<u32>() {
            Ok(n) if n > 0 => {
                path.push(n);
                words.next();
            }
            _ => break,
        }
    }
    let text_spec: Vec<&str> = words.collect();
    let text_spec = text_spec.join(".");
    let text = if text_spec.is_empty() {
        SectionText::Full
    } else if text_spec == "HEADER" {
        SectionText::Header
    } else if text_spec == "TEXT" {
        SectionText::Text
    } else if text_spec == "MIME" {
        SectionText::Mime
    } else if let Some(fields) = text_spec.strip_prefix("HEADER.FIELDS") {
        let (not, fields) = match fields.strip_prefix(".NOT") {
            Some(f) => (true, f),
            None => (false, fields),
        };
        let names: Vec<String> = fields
            .trim()
            .trim_start_matches('(')
            .trim_end_matches(')')
            .split_whitespace()
            .map(|s| s.trim_matches('"').to_string())
            .collect();
        SectionText::HeaderFields { names, not }
    } else {
        return Err(Bad(format!("bad section {spec}")));
    };
    if binary && text != SectionText::Full {
        return Err(Bad("BINARY takes a part number only".into()));
    }
    let label = format!("{}[{spec}]", if binary { "BINARY" } else { "BODY" });
    let label = match partial {
        Some((a, _)) => format!("{label}<{a}>"),
        None => label,
    };
    let mut item = section_item(&label, peek, path, text, partial);
    if let FetchItem::Section { binary: b, .. } = &mut item {
        *b = binary;
    }
    Ok(item)
}

fn section_item(
    name: &str,
    peek: bool,
    path: Vec<u32>,
    text: SectionText,
    partial: Option<(u32, u32)>,
) -> FetchItem {
    FetchItem::Section {
        name: name.to_string(),
        peek,
        path,
        text,
        partial,
        binary: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Cmd, Bad> {
        parse(&mut Reader::new(s.as_bytes()))
    }

    #[test]
    fn commands() {
        assert_eq!(
            p("LOGIN alice \"Secret 1\"").unwrap(),
            Cmd::Login {
                user: "alice".into(),
                pass: "Secret 1".into()
            }
        );
        assert_eq!(
            p("select inbox").unwrap(),
            Cmd::Select {
                mailbox: "INBOX".into(),
                read_only: false,
                condstore: false,
                qresync: None,
            }
        );
        assert!(matches!(
            p("UID FETCH 1:* (FLAGS BODY.PEEK[HEADER.FIELDS (From To)])").unwrap(),
            Cmd::Fetch { uid: true, .. }
        ));
        assert!(matches!(
            p("UID STORE 1 +FLAGS.SILENT (\\Seen)").unwrap(),
            Cmd::Store {
                mode: StoreMode::Add,
                silent: true,
                ..
            }
        ));
        assert!(matches!(
            p("SEARCH OR FROM alice (UNSEEN LARGER 10) NOT DELETED").unwrap(),
            Cmd::Search { .. }
        ));
        assert!(matches!(
            p("UID MOVE 1:3 Trash").unwrap(),
            Cmd::Copy { remove: true, .. }
        ));
        assert!(matches!(p("LIST \"\" *").unwrap(), Cmd::List { .. }));
        assert!(matches!(
            p("LIST (SPECIAL-USE) \"\" \"*\" RETURN (STATUS (MESSAGES UNSEEN))").unwrap(),
            Cmd::List { .. }
        ));
        assert!(p("FETCH 1 (FOO)").is_err());
        assert!(p("BOGUS").is_err());
        assert!(p("NOOP extra").is_err());
    }

    #[test]
    fn deep_search_keys_are_refused() {
        let deep = [
            format!("SEARCH {}", "(".repeat(60_000)),
            format!("SEARCH {}ALL{}", "(".repeat(60_000), ")".repeat(60_000)),
            format!("SEARCH {}ALL", "NOT ".repeat(30_000)),
            format!("SEARCH {}ALL", "OR ALL ".repeat(20_000)),
            format!("SEARCH {}ALL ALL", "OR ".repeat(30_000)),
            format!("STATUS INBOX {}", "(".repeat(60_000)),
            format!("ID {}", "(".repeat(60_000)),
        ];
        for text in &deep {
            assert!(p(text).is_err(), "{:?}", text.get(..20));
        }
        let ok = format!("SEARCH {}ALL{}", "(".repeat(60), ")".repeat(60));
        assert!(p(&ok).is_ok());
        let ok = format!("SEARCH {}ALL", "NOT ".repeat(60));
        assert!(p(&ok).is_ok());
    }

    #[test]
    fn flag_keywords_must_be_atoms() {
        for bad in [
            "STORE 1 +FLAGS ({8}\r\nfoo\r\nbar)",
            "STORE 1 +FLAGS (\"a b\")",
            "STORE 1 FLAGS \"x\"",
            "STORE 1 FLAGS {3}\r\na\nb",
            "STORE 1 FLAGS ($a] $b)",
            "STORE 1 FLAGS (\\Seen (nested))",
            "APPEND INBOX ({5}\r\na\r\nbc) {1}\r\nx",
            "APPEND INBOX (\"x y\") {1}\r\nx",
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        match p("STORE 1 +FLAGS ($Junk \\Seen NonJunk)").unwrap() {
            Cmd::Store { flags, .. } => assert_eq!(flags, ["$Junk", "\\Seen", "NonJunk"]),
            other => panic!("{other:?}"),
        }
        match p("STORE 1 -FLAGS.SILENT \\Deleted $Work").unwrap() {
            Cmd::Store { flags, .. } => assert_eq!(flags, ["\\Deleted", "$Work"]),
            other => panic!("{other:?}"),
        }
        match p("APPEND INBOX (\\Seen $Work) {1}\r\nx").unwrap() {
            Cmd::Append { flags, .. } => assert_eq!(flags, ["\\Seen", "$Work"]),
            other => panic!("{other:?}"),
        }
        assert!(p("STORE 1 FLAGS ()").is_ok());
    }

    #[test]
    fn sections() {
        match fetch_item("BODY.PEEK[1.2.HEADER.FIELDS (Subject)]<0.10>").unwrap() {
            FetchItem::Section {
                name,
                peek,
                path,
                text,
                partial,
                ..
            } => {
                assert!(peek);
                assert_eq!(path, vec![1, 2]);
                assert_eq!(
                    text,
                    SectionText::HeaderFields {
                        names: vec!["SUBJECT".into()],
                        not: false
                    }
                );
                assert_eq!(partial, Some((0, 10)));
                assert_eq!(name, "BODY[1.2.HEADER.FIELDS (SUBJECT)]<0>");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1-Jan-1970"), Some(0));
        assert_eq!(parse_date_time("01-Jan-1970 01:00:00 +0100"), Some(0));
        assert_eq!(parse_date("29-Feb-2000"), Some(11016));
    }
}
