//! POP3 (RFC 1939, with CAPA RFC 2449, STLS RFC 2595 and AUTH PLAIN RFC 5034): the sans-IO
//! server session. POP3 sees an account's INBOX.

pub mod read_ahead;
mod session;

pub use session::{
    Answer, DropMessage, MaildropError, Pop3Config, Pop3Policy, Request, Session, Step,
};
