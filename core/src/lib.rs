//! gannet-core: the engine of the Gannet mail appliance, everything that is not a process.
//!
//! * [`smtp`]: the sans-IO SMTP server session (bytes in, replies and actions out).
//! * [`store`]: the one store (RocksDB behind a small key-value trait) and its commit thread.
//! * [`delivery`]: where a recipient's mail goes (routing) and what a local delivery writes.
//! * [`auth`]: account passwords.
//! * [`mime`]: header access for a raw message.
//! * [`policy`]: relay networks and limits (connections, message rate, failed logins).
//! * [`config`]: typed configuration with embedded defaults.
//! * [`runtime`]: thread-per-core io_uring workers that move bytes between sockets and cores.

pub mod auth;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod dns;
pub mod filter;
pub mod imap;
pub mod mime;
pub mod policy;
pub mod pop3;
pub mod process;
pub mod protocol;
pub mod runtime;
pub mod smtp;
pub mod store;
