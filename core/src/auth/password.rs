//! Passwords: the policy new passwords must meet, and argon2id hashing and verification.
//!
//! Hashing is deliberately slow (argon2id's defaults: 19 MiB, 2 passes): never call it on
//! an io_uring worker.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand_core::OsRng;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("password must be at least 8 characters, with an upper-case letter and a digit")]
    TooWeak,
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// At least 8 characters, one upper-case letter, one digit.
pub fn check_policy(password: &str) -> Result<(), PasswordError> {
    let long_enough = password.chars().count() >= 8;
    let upper = password.chars().any(char::is_uppercase);
    let digit = password.chars().any(|c| c.is_ascii_digit());
    if long_enough && upper && digit {
        Ok(())
    } else {
        Err(PasswordError::TooWeak)
    }
}

/// An argon2id PHC string for `password`, with a random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// True when `password` matches the PHC string `hash`.
pub fn verify(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy() {
        assert!(check_policy("Secret123").is_ok());
        assert_eq!(check_policy("Short1A"), Err(PasswordError::TooWeak));
        assert_eq!(check_policy("alllowercase1"), Err(PasswordError::TooWeak));
        assert_eq!(check_policy("NoDigitsHere"), Err(PasswordError::TooWeak));
    }

    #[test]
    fn hashes_are_argon2id_and_verify() {
        let h = hash("Secret123").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify("Secret123", &h));
        assert!(!verify("Secret124", &h));
        assert!(!verify("Secret123", "not a hash"));
        assert_ne!(h, hash("Secret123").unwrap(), "salted");
    }
}
