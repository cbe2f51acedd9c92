//! Accounts' credentials: the password policy and argon2id hashes.

pub mod password;
