//! SMTP: the sans-IO server session and what it is made of, and the sans-IO client
//! ([`client`]) that outbound delivery drives.
//!
//! [`Session`] is a state machine: the runtime appends received bytes to its input buffer,
//! calls [`Session::step`], writes what the session put in its output buffer, and carries
//! out the action it returns (read more, commit a message, close). No sockets, no clock:
//! time and routing come in through [`Environment`].

pub mod client;
mod command;
mod data;
mod received;
mod reply;
mod session;

pub use command::{parse_command, Command, CommandError, MailParams, Path};
pub use data::{has_bare_cr_or_lf, DotReader, DotScan};
pub use received::{format_rfc5322_date, trace_headers};
pub use reply::Reply;
pub use session::{
    ConnectionPolicy, Delivery, DeliveryOutcome, Envelope, Environment, RcptRoute, Recipient,
    RecipientRefusal, Request, Session, SessionConfig, Step,
};
