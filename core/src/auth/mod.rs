//! Accounts' credentials: the password policy, argon2id hashes, SASL mechanisms, and the
//! service that verifies logins off the io_uring workers (remembering successes for a few
//! minutes: `cache`).

pub mod cache;
pub mod password;
pub mod sasl;
pub mod service;
