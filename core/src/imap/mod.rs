//! IMAP4rev2 (RFC 9051), serving IMAP4rev1 clients too: command syntax, response syntax,
//! message structure (ENVELOPE, BODYSTRUCTURE, sections), and the sans-IO session.

pub mod command;
pub mod parse;
pub mod recent;
pub mod rendered;
pub mod response;
mod session;
pub mod structure;
pub mod thread;
pub mod utf7;
mod wildcard;

pub use recent::RecentBook;
pub use session::{Answer, ImapConfig, ImapPolicy, MailboxSummary, Request, Session, Step};
