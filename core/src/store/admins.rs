//! The administrators of the console and their API tokens.
//!
//! An administrator has a name and an argon2id password hash (the same policy as mail
//! accounts). A token, for scripts, is a random secret shown once: only its BLAKE3 hash
//! is stored, so the store never holds a usable credential.

use serde::{Deserialize, Serialize};

use super::directory::DirectoryError;
use super::kv::{Cf, StoreError};
use super::schema::{decode, encode, keys};
use super::{Changes, Store};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admin {
    pub name: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Token {
    admin: String,
    created: i64,
}

/// Lower-cases and checks an administrator's name: 1 to 32 ASCII letters, digits, `.`,
/// `_` or `-`.
pub fn normalize_name(name: &str) -> Result<String, DirectoryError> {
    let n = name.trim().to_ascii_lowercase();
    let valid = (1..=32).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if valid {
        Ok(n)
    } else {
        Err(DirectoryError::Invalid {
            what: "administrator name (1-32 letters, digits, '.', '_', '-')",
            value: name.to_string(),
        })
    }
}

/// Adds an administrator (`password_hash`: an argon2id PHC string).
pub fn add_admin(
    store: &Store,
    name: &str,
    password_hash: &str,
    now: i64,
) -> Result<Admin, DirectoryError> {
    let name = normalize_name(name)?;
    if find(store, &name)?.is_some() {
        return Err(DirectoryError::AddressExists(format!(
            "administrator {name}"
        )));
    }
    put(store, hashed(name, password_hash, now)?)
}

/// Replaces an administrator's password.
pub fn set_admin_password(
    store: &Store,
    name: &str,
    password_hash: &str,
) -> Result<Admin, DirectoryError> {
    let name = normalize_name(name)?;
    let admin = find(store, &name)?.ok_or_else(|| DirectoryError::NoSuchAddress(name.clone()))?;
    put(store, hashed(name, password_hash, admin.created)?)
}

fn hashed(name: String, password_hash: &str, created: i64) -> Result<Admin, DirectoryError> {
    if !password_hash.starts_with("$argon2id$") {
        return Err(DirectoryError::Invalid {
            what: "password hash",
            value: String::new(),
        });
    }
    Ok(Admin {
        name,
        password_hash: password_hash.to_string(),
        created,
    })
}

fn put(store: &Store, admin: Admin) -> Result<Admin, DirectoryError> {
    let mut b = Changes::new();
    b.put(Cf::Accounts, keys::admin(&admin.name), encode(&admin));
    store.commit_blocking(b)?;
    Ok(admin)
}

/// The administrator called `name` (already normalized), if any.
pub fn find(store: &Store, name: &str) -> Result<Option<Admin>, StoreError> {
    store
        .kv()
        .get(Cf::Accounts, &keys::admin(name))?
        .map(|raw| decode(Cf::Accounts, &raw))
        .transpose()
}

pub fn list(store: &Store) -> Result<Vec<Admin>, StoreError> {
    let mut out = Vec::new();
    let mut error = None;
    store
        .kv()
        .scan_prefix(Cf::Accounts, keys::ADMIN_PREFIX, &mut |_, v| {
            match decode::<Admin>(Cf::Accounts, v) {
                Ok(a) => out.push(a),
                Err(e) => error = Some(e),
            }
            error.is_none()
        })?;
    match error {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// Creates an API token for `admin`; returns the secret (shown once, never stored).
pub fn create_token(store: &Store, admin: &str, now: i64) -> Result<String, DirectoryError> {
    let admin = normalize_name(admin)?;
    if find(store, &admin)?.is_none() {
        return Err(DirectoryError::NoSuchAddress(admin));
    }
    let secret = crate::secret::random_hex()
        .map_err(|e| StoreError::Engine(format!("no randomness: {e}")))?;
    let token = format!("gnt_{secret}");
    let mut b = Changes::new();
    b.put(
        Cf::Accounts,
        keys::admin_token(blake3::hash(token.as_bytes()).as_bytes()),
        encode(&Token {
            admin,
            created: now,
        }),
    );
    store.commit_blocking(b)?;
    Ok(token)
}

/// The administrator a token belongs to, if it is one (and its administrator exists).
pub fn admin_for_token(store: &Store, token: &str) -> Result<Option<Admin>, StoreError> {
    let key = keys::admin_token(blake3::hash(token.trim().as_bytes()).as_bytes());
    let Some(raw) = store.kv().get(Cf::Accounts, &key)? else {
        return Ok(None);
    };
    let record: Token = decode(Cf::Accounts, &raw)?;
    find(store, &record.admin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn administrators_and_their_tokens() {
        let owner = Store::open_in_memory().unwrap();
        let s = owner.store();
        assert!(add_admin(s, "root", "plain", 1).is_err(), "only hashes");
        assert!(add_admin(s, "bad name", "$argon2id$x", 1).is_err());
        add_admin(s, "Root", "$argon2id$x", 1).unwrap();
        assert!(add_admin(s, "root", "$argon2id$y", 1).is_err(), "taken");
        assert_eq!(
            find(s, "root").unwrap().unwrap().password_hash,
            "$argon2id$x"
        );
        set_admin_password(s, "root", "$argon2id$z").unwrap();
        assert_eq!(list(s).unwrap().len(), 1);
        let token = create_token(s, "root", 2).unwrap();
        assert!(token.starts_with("gnt_") && token.len() == 68);
        assert_eq!(admin_for_token(s, &token).unwrap().unwrap().name, "root");
        assert!(admin_for_token(s, "gnt_00").unwrap().is_none());
        assert!(create_token(s, "nobody", 2).is_err());
    }
}
