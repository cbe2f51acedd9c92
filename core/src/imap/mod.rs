//! IMAP4rev2 (RFC 9051), serving IMAP4rev1 clients too: command syntax, response syntax,
//! message structure (ENVELOPE, BODYSTRUCTURE, sections).

pub mod command;
pub mod parse;
pub mod response;
pub mod structure;
