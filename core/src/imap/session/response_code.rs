//! What a status response says besides its text: its status (OK, NO, BAD) and its
//! response code (RFC 9051 section 7.1, RFC 4315 UIDPLUS, RFC 5530, RFC 9208 QUOTA), each
//! written as the client reads it: `[TRYCREATE]`, `[APPENDUID 7 12]`...

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
    PermanentFlags,
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
            ResponseCode::PermanentFlags => write!(f, "[PERMANENTFLAGS ({SYSTEM_FLAGS} \\*)]"),
            ResponseCode::UidValidity(v) => write!(f, "[UIDVALIDITY {v}]"),
            ResponseCode::UidNext(n) => write!(f, "[UIDNEXT {n}]"),
            ResponseCode::TryCreate => f.write_str("[TRYCREATE]"),
            ResponseCode::AlreadyExists => f.write_str("[ALREADYEXISTS]"),
            ResponseCode::Cannot => f.write_str("[CANNOT]"),
            ResponseCode::ServerBug => f.write_str("[SERVERBUG]"),
            ResponseCode::OverQuota => f.write_str("[OVERQUOTA]"),
            ResponseCode::AppendUid { validity, uid } => write!(f, "[APPENDUID {validity} {uid}]"),
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
