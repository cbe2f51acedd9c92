//! What a status response says besides its text: its status (OK, NO, BAD) and its
//! response code (RFC 9051 section 7.1, RFC 4315 UIDPLUS, RFC 5530, RFC 9208 QUOTA, RFC
//! 7162 CONDSTORE), each written as the client reads it: `[TRYCREATE]`, `[APPENDUID 7 12]`...

use std::fmt;

use super::sequence::compress_set;

/// The status of a status response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Status {
    Ok,
    No,
    Bad,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bad => "BAD",
        })
    }
}

/// The system flags, in the order SELECT lists them.
pub(super) const SYSTEM_FLAGS: &str = "\\Answered \\Flagged \\Deleted \\Seen \\Draft";

/// A response code; its [`fmt::Display`] writes it with its brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ResponseCode {
    /// The capabilities, as CAPABILITY lists them (in the greeting and after login).
    Capability(String),
    /// Wrong user name or password.
    AuthenticationFailed,
    /// A service the command needs (authentication, disk space) is not there just now.
    Unavailable,
    /// Logging in needs TLS.
    PrivacyRequired,
    /// A literal larger than the server takes.
    TooBig,
    /// The mailbox is selected read-only (EXAMINE), or a change was refused for that.
    ReadOnly,
    /// The mailbox is selected read-write (SELECT).
    ReadWrite,
    /// No such mailbox (or quota root).
    Nonexistent,
    /// The flags a client may change for good: the system flags and new keywords.
    /// The system flags, these keywords, and `\*` (new keywords may be created).
    PermanentFlags(String),
    UidValidity(u32),
    /// The UID the next message will have (or more).
    UidNext(u32),
    /// The target mailbox of APPEND, COPY or MOVE does not exist: create it and retry.
    TryCreate,
    AlreadyExists,
    /// The server will not do this to this mailbox (delete INBOX, ...).
    Cannot,
    /// Something went wrong inside the server.
    ServerBug,
    /// The account's storage quota is used up.
    OverQuota,
    /// APPEND's message: the target's UIDVALIDITY and the UID it got.
    AppendUid {
        validity: u32,
        uid: u32,
    },
    /// COPY or MOVE: the target's UIDVALIDITY, the source UIDs, and the UIDs they got, in
    /// the same order.
    CopyUid {
        validity: u32,
        sources: Vec<u32>,
        uids: Vec<u32>,
    },
    /// The mailbox's highest modification sequence (RFC 7162, CONDSTORE).
    HighestModSeq(u64),
    /// The messages (numbers or UIDs) a STORE with UNCHANGEDSINCE left alone.
    Modified(Vec<u32>),
    /// The mailbox selected so far is closed (a SELECT while one was selected).
    Closed,
    /// A special-use attribute the server does not give (RFC 6154).
    UseAttr,
    /// A search charset the server does not read, and those it does.
    BadCharset,
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseCode::Capability(caps) => write!(f, "[CAPABILITY {caps}]"),
            ResponseCode::AuthenticationFailed => f.write_str("[AUTHENTICATIONFAILED]"),
            ResponseCode::Unavailable => f.write_str("[UNAVAILABLE]"),
            ResponseCode::PrivacyRequired => f.write_str("[PRIVACYREQUIRED]"),
            ResponseCode::TooBig => f.write_str("[TOOBIG]"),
            ResponseCode::ReadOnly => f.write_str("[READ-ONLY]"),
            ResponseCode::ReadWrite => f.write_str("[READ-WRITE]"),
            ResponseCode::Nonexistent => f.write_str("[NONEXISTENT]"),
            ResponseCode::PermanentFlags(keywords) if keywords.is_empty() => {
                write!(f, "[PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)]")
            }
            ResponseCode::PermanentFlags(keywords) => {
                write!(f, "[PERMANENTFLAGS ({SYSTEM_FLAGS} {keywords} \\*)]")
            }
            ResponseCode::UidValidity(v) => write!(f, "[UIDVALIDITY {v}]"),
            ResponseCode::UidNext(n) => write!(f, "[UIDNEXT {n}]"),
            ResponseCode::TryCreate => f.write_str("[TRYCREATE]"),
            ResponseCode::AlreadyExists => f.write_str("[ALREADYEXISTS]"),
            ResponseCode::Cannot => f.write_str("[CANNOT]"),
            ResponseCode::ServerBug => f.write_str("[SERVERBUG]"),
            ResponseCode::OverQuota => f.write_str("[OVERQUOTA]"),
            ResponseCode::AppendUid { validity, uid } => write!(f, "[APPENDUID {validity} {uid}]"),
            ResponseCode::HighestModSeq(n) => write!(f, "[HIGHESTMODSEQ {n}]"),
            ResponseCode::Modified(set) => write!(f, "[MODIFIED {}]", compress_set(set)),
            ResponseCode::Closed => f.write_str("[CLOSED]"),
            ResponseCode::UseAttr => f.write_str("[USEATTR]"),
            ResponseCode::BadCharset => f.write_str("[BADCHARSET (US-ASCII UTF-8)]"),
            ResponseCode::CopyUid {
                validity,
                sources,
                uids,
            } => write!(
                f,
                "[COPYUID {validity} {} {}]",
                compress_set(sources),
                compress_set(uids)
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_written_with_their_brackets() {
        let written = [
            (
                ResponseCode::Capability("IMAP4rev2 IDLE".into()),
                "[CAPABILITY IMAP4rev2 IDLE]",
            ),
            (ResponseCode::AuthenticationFailed, "[AUTHENTICATIONFAILED]"),
            (ResponseCode::Unavailable, "[UNAVAILABLE]"),
            (ResponseCode::PrivacyRequired, "[PRIVACYREQUIRED]"),
            (ResponseCode::TooBig, "[TOOBIG]"),
            (ResponseCode::ReadOnly, "[READ-ONLY]"),
            (ResponseCode::ReadWrite, "[READ-WRITE]"),
            (ResponseCode::Nonexistent, "[NONEXISTENT]"),
            (
                ResponseCode::PermanentFlags(String::new()),
                "[PERMANENTFLAGS (\\Answered \\Flagged \\Deleted \\Seen \\Draft \\*)]",
            ),
            (ResponseCode::UidValidity(7), "[UIDVALIDITY 7]"),
            (ResponseCode::UidNext(12), "[UIDNEXT 12]"),
            (ResponseCode::TryCreate, "[TRYCREATE]"),
            (ResponseCode::AlreadyExists, "[ALREADYEXISTS]"),
            (ResponseCode::Cannot, "[CANNOT]"),
            (ResponseCode::ServerBug, "[SERVERBUG]"),
            (ResponseCode::OverQuota, "[OVERQUOTA]"),
            (
                ResponseCode::AppendUid {
                    validity: 7,
                    uid: 3,
                },
                "[APPENDUID 7 3]",
            ),
            (
                ResponseCode::CopyUid {
                    validity: 9,
                    sources: vec![5, 3, 4, 8],
                    uids: vec![10, 11, 12, 13],
                },
                "[COPYUID 9 3:5,8 10:13]",
            ),
        ];
        for (code, text) in written {
            assert_eq!(code.to_string(), text);
        }
        assert_eq!(
            [Status::Ok, Status::No, Status::Bad].map(|s| s.to_string()),
            ["OK", "NO", "BAD"]
        );
    }
}
