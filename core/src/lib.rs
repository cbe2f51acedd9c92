//! gannet-core: the engine of the Gannet mail appliance, everything that is not a process.
//! Layers and import rules: `docs/architecture.md`.
//!
//! * [`smtp`], [`imap`], [`pop3`]: the sans-IO protocol sessions (bytes in, replies and
//!   requests out), and the SMTP client that outbound delivery drives.
//! * [`protocol`]: what the three sessions share (buffers, `Step`, the `Protocol` trait).
//! * [`store`]: the one store: the mail-store API every write goes through, the commit
//!   thread, RocksDB behind a small key-value trait, reads, the integrity check.
//! * [`delivery`]: what becomes of an accepted message (`inbound`), routing, local
//!   delivery, the outbound queue runner and its DSNs.
//! * [`antivirus`]: virus scanning by ClamAV's `clamd` over its socket (`INSTREAM`).
//! * [`filter`]: the spam engine (SpamAssassin's rule language, prefilter, scan).
//! * [`mime`]: header access and the message view (parts, decoded text, HTML, URIs).
//! * [`policy`]: relay networks, limits (connections, rates, logins), quotas, DNS checks,
//!   the attachment policy.
//! * [`auth`]: account passwords, SASL, the login service.
//! * [`config`]: typed configuration with embedded defaults.
//! * [`clock`], [`dns`], [`process`]: the wall clock, the DNS resolver, process settings.
//! * [`runtime`]: thread-per-core io_uring workers that move bytes between sockets and
//!   sessions; nothing else in the crate imports it.

pub mod antivirus;
pub mod auth;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod dns;
pub mod filter;
pub mod imap;
pub mod metrics;
pub mod mime;
pub mod policy;
pub mod pop3;
pub mod process;
pub mod protocol;
pub mod runtime;
pub mod secret;
pub mod smtp;
pub mod store;
