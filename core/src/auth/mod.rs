//! Accounts' credentials: the password policy, argon2id hashes, SASL mechanisms, and the
//! service that verifies logins off the io_uring workers.

pub mod password;
pub mod sasl;
pub mod service;
