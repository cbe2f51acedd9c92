//! Domains, accounts and aliases: the records that say who receives mail here.
//!
//! These functions run on one admin thread at a time (the server's control thread, or the
//! command line when no server runs), which serializes id allocation and existence checks;
//! every change still goes through the commit thread.

use super::kv::{decode_counter, Cf, StoreError};
use super::schema::{decode, encode, keys, Account, Route, DEFAULT_MAILBOXES};
use super::{Changes, Store};

/// Default quota for a new account: 1 GB.
pub const DEFAULT_QUOTA: u64 = 1_000_000_000;

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("domain {0} is already hosted")]
    DomainExists(String),
    #[error("domain {0} is not hosted here (add it with `gannet domain add {0}`)")]
    DomainNotHosted(String),
    #[error("{0} already exists")]
    AddressExists(String),
    #[error("login name {0} is already taken")]
    LoginTaken(String),
    #[error("{0} is not a local address")]
    NoSuchAddress(String),
    #[error("invalid {what}: {value:?}")]
    Invalid { what: &'static str, value: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Lower-cases and checks a domain name.
pub fn normalize_domain(domain: &str) -> Result<String, DirectoryError> {
    let d = domain.trim().trim_end_matches('.').to_lowercase();
    let valid = !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if valid {
        Ok(d)
    } else {
        Err(DirectoryError::Invalid {
            what: "domain",
            value: domain.into(),
        })
    }
}

/// Lower-cases and checks an address; returns it with its domain.
pub fn normalize_address(address: &str) -> Result<(String, String), DirectoryError> {
    let a = address.trim().to_lowercase();
    let invalid = || DirectoryError::Invalid {
        what: "address",
        value: address.into(),
    };
    let (local, domain) = a.rsplit_once('@').ok_or_else(invalid)?;
    if local.is_empty() || local.contains(|c: char| c.is_whitespace() || "<>@,;:\"".contains(c)) {
        return Err(invalid());
    }
    let domain = normalize_domain(domain).map_err(|_| invalid())?;
    Ok((format!("{local}@{domain}"), domain))
}

fn get_route(store: &Store, key: &[u8]) -> Result<Option<Route>, StoreError> {
    store
        .kv()
        .get(Cf::Routes, key)?
        .map(|raw| decode(Cf::Routes, &raw))
        .transpose()
}

fn require_hosted(store: &Store, domain: &str) -> Result<Option<u32>, DirectoryError> {
    match get_route(store, &keys::route_domain(domain))? {
        Some(Route::Domain { catch_all }) => Ok(catch_all),
        _ => Err(DirectoryError::DomainNotHosted(domain.into())),
    }
}

pub fn add_domain(store: &Store, domain: &str) -> Result<String, DirectoryError> {
    add_domain_route(store, domain, Route::Domain { catch_all: None })
}

/// Adds a domain with its route: hosted, backup MX or scan relay.
pub fn add_domain_route(
    store: &Store,
    domain: &str,
    route: Route,
) -> Result<String, DirectoryError> {
    let domain = normalize_domain(domain)?;
    let key = keys::route_domain(&domain);
    if get_route(store, &key)?.is_some() {
        return Err(DirectoryError::DomainExists(domain));
    }
    let mut b = Changes::new();
    b.put(Cf::Routes, key, encode(&route));
    store.commit_blocking(b)?;
    Ok(domain)
}

pub fn list_domains(store: &Store) -> Result<Vec<String>, StoreError> {
    let mut domains = Vec::new();
    store.kv().scan_prefix(Cf::Routes, b"@", &mut |k, _| {
        domains.push(String::from_utf8_lossy(&k[1..]).into_owned());
        true
    })?;
    Ok(domains)
}

/// Lower-cases and checks a login name: 1 to 64 ASCII letters, digits, `.`, `_`, `-` or
/// `+`. Never an `@`: every address has one, so a login name can never be taken for an
/// address (nor an address for a login name).
pub fn normalize_login(name: &str) -> Result<String, DirectoryError> {
    let n = name.trim().to_ascii_lowercase();
    let valid = (1..=64).contains(&n.len())
        && n.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._-+".contains(&c));
    if valid {
        Ok(n)
    } else {
        Err(DirectoryError::Invalid {
            what: "login name (1 to 64 letters, digits, '.', '_', '-', '+'; no '@')",
            value: name.into(),
        })
    }
}

/// The id of the account whose login name is `name` (normalized), if any.
fn login_owner(store: &Store, name: &str) -> Result<Option<u32>, StoreError> {
    Ok(store
        .kv()
        .get(Cf::Accounts, &keys::login(name))?
        .and_then(|raw| raw.try_into().ok().map(u32::from_be_bytes)))
}

/// An account's login name, if it has one.
pub fn login_name(store: &Store, account: u32) -> Result<Option<String>, StoreError> {
    Ok(store
        .kv()
        .get(Cf::Accounts, &keys::login_of(account))?
        .map(|raw| String::from_utf8_lossy(&raw).into_owned()))
}

pub fn account_by_id(store: &Store, id: u32) -> Result<Option<Account>, StoreError> {
    store
        .kv()
        .get(Cf::Accounts, &keys::account(id))?
        .map(|raw| decode(Cf::Accounts, &raw))
        .transpose()
}

/// The account a client logs in as with `username`: the account whose primary address it
/// is (aliases receive mail but do not log in), or whose login name it is. `None` when
/// there is none (or the name is not even well-formed).
pub fn account_for_login(store: &Store, username: &str) -> Result<Option<Account>, StoreError> {
    let username = username.trim();
    if username.contains('@') {
        return match account_for_address(store, username) {
            Ok(a) if a.address.eq_ignore_ascii_case(username) => without_disabled(store, Some(a)),
            Ok(_) => Ok(None),
            Err(DirectoryError::Store(e)) => Err(e),
            Err(_) => Ok(None),
        };
    }
    let Ok(name) = normalize_login(username) else {
        return Ok(None);
    };
    let account = match login_owner(store, &name)? {
        Some(id) => account_by_id(store, id)?,
        None => None,
    };
    without_disabled(store, account)
}

/// `account`, unless it is disabled.
fn without_disabled(
    store: &Store,
    account: Option<Account>,
) -> Result<Option<Account>, StoreError> {
    match account {
        Some(a) if is_disabled(store, a.id)? => Ok(None),
        other => Ok(other),
    }
}

/// Records a successful login of `account` at `at` from `from` (see [`last_login`]).
pub fn note_login(changes: &mut Changes, account: u32, at: i64, from: std::net::IpAddr) {
    changes.put(
        Cf::Accounts,
        keys::last_login(account),
        encode(&(at, from.to_string())),
    );
}

/// When and from which address the account last logged in (IMAP, POP3 or SMTP AUTH),
/// to the minute.
pub fn last_login(store: &Store, account: u32) -> Result<Option<(i64, String)>, StoreError> {
    store
        .kv()
        .get(Cf::Accounts, &keys::last_login(account))?
        .map(|raw| decode(Cf::Accounts, &raw))
        .transpose()
}

/// Whether the account may not log in (`gannet account disable`).
pub fn is_disabled(store: &Store, account: u32) -> Result<bool, StoreError> {
    Ok(store
        .kv()
        .get(Cf::Accounts, &keys::disabled(account))?
        .is_some())
}

/// Gives the account of `address` the login name `login`, replacing the one it had; with
/// `None`, takes its login name away. A name another account has is refused.
pub fn set_login(
    store: &Store,
    address: &str,
    login: Option<&str>,
) -> Result<(Account, Option<String>), DirectoryError> {
    let account = account_for_address(store, address)?;
    let new = login.map(normalize_login).transpose()?;
    let old = login_name(store, account.id)?;
    if new == old {
        return Ok((account, new));
    }
    let mut b = Changes::new();
    if let Some(old) = &old {
        b.delete(Cf::Accounts, keys::login(old));
        b.delete(Cf::Accounts, keys::login_of(account.id));
    }
    if let Some(name) = &new {
        if login_owner(store, name)?.is_some() {
            return Err(DirectoryError::LoginTaken(name.clone()));
        }
        put_login(&mut b, account.id, name);
    }
    store.commit_blocking(b)?;
    Ok((account, new))
}

fn put_login(b: &mut Changes, account: u32, name: &str) {
    b.put(
        Cf::Accounts,
        keys::login(name),
        account.to_be_bytes().to_vec(),
    );
    b.put(
        Cf::Accounts,
        keys::login_of(account),
        name.as_bytes().to_vec(),
    );
}

/// Creates an account with its default mailboxes. `password_hash` is an argon2id PHC string.
pub fn add_account(
    store: &Store,
    address: &str,
    password_hash: &str,
    now: i64,
) -> Result<Account, DirectoryError> {
    add_account_with_login(store, address, password_hash, None, now)
}

/// Creates an account, with a login name besides its address when `login` is given (in
/// the same write: a name already taken creates nothing).
pub fn add_account_with_login(
    store: &Store,
    address: &str,
    password_hash: &str,
    login: Option<&str>,
    now: i64,
) -> Result<Account, DirectoryError> {
    let (address, domain) = normalize_address(address)?;
    require_hosted(store, &domain)?;
    if get_route(store, &keys::route_address(&address))?.is_some() {
        return Err(DirectoryError::AddressExists(address));
    }
    let login = login.map(normalize_login).transpose()?;
    if let Some(name) = &login {
        if login_owner(store, name)?.is_some() {
            return Err(DirectoryError::LoginTaken(name.clone()));
        }
    }
    let id = store
        .kv()
        .get(Cf::Meta, keys::NEXT_ACCOUNT_ID)?
        .and_then(|raw| raw.try_into().ok().map(u32::from_be_bytes))
        .unwrap_or(1);
    let account = Account {
        id,
        address: address.clone(),
        password_hash: password_hash.into(),
        quota: DEFAULT_QUOTA,
        spam_level: "medium".into(),
        created: now,
    };
    let mut b = Changes::new();
    b.put(
        Cf::Meta,
        keys::NEXT_ACCOUNT_ID.to_vec(),
        (id + 1).to_be_bytes().to_vec(),
    );
    b.put(Cf::Accounts, keys::account(id), encode(&account));
    b.put(
        Cf::Accounts,
        keys::account_by_name(&address),
        id.to_be_bytes().to_vec(),
    );
    b.put(
        Cf::Routes,
        keys::route_address(&address),
        encode(&Route::Address {
            account: id,
            alias: false,
        }),
    );
    if let Some(name) = &login {
        put_login(&mut b, id, name);
    }
    for (name, special_use) in DEFAULT_MAILBOXES {
        b.create_mailbox(id, name, special_use, now);
    }
    store.commit_blocking(b)?;
    Ok(account)
}

/// An account with its storage use.
pub struct AccountInfo {
    pub account: Account,
    pub usage: i64,
}

pub fn list_accounts(store: &Store) -> Result<Vec<AccountInfo>, StoreError> {
    let mut accounts = Vec::new();
    let mut error = None;
    store
        .kv()
        .scan_prefix(Cf::Accounts, keys::ACCOUNT_PREFIX, &mut |_, v| {
            match decode::<Account>(Cf::Accounts, v) {
                Ok(a) => accounts.push(a),
                Err(e) => error = Some(e),
            }
            error.is_none()
        })?;
    if let Some(e) = error {
        return Err(e);
    }
    accounts
        .into_iter()
        .map(|account| {
            let usage = store
                .kv()
                .get(Cf::Counters, &keys::usage(account.id))?
                .map_or(0, |raw| decode_counter(&raw));
            Ok(AccountInfo { account, usage })
        })
        .collect()
}

/// Finds the account that receives mail for a local address (its own or an alias).
pub fn account_for_address(store: &Store, address: &str) -> Result<Account, DirectoryError> {
    let (address, _) = normalize_address(address)?;
    let Some(Route::Address { account, .. }) = get_route(store, &keys::route_address(&address))?
    else {
        return Err(DirectoryError::NoSuchAddress(address));
    };
    let raw = store
        .kv()
        .get(Cf::Accounts, &keys::account(account))?
        .ok_or(DirectoryError::NoSuchAddress(address))?;
    Ok(decode(Cf::Accounts, &raw)?)
}

/// Makes `alias` deliver to the account behind `target`. An alias of the form `@domain`
/// is that domain's catch-all: mail for any unknown address there goes to the target.
pub fn add_alias(store: &Store, alias: &str, target: &str) -> Result<String, DirectoryError> {
    let account = account_for_address(store, target)?;
    let mut b = Changes::new();
    let name = if let Some(domain) = alias.trim().strip_prefix('@') {
        let domain = normalize_domain(domain)?;
        if require_hosted(store, &domain)?.is_some() {
            return Err(DirectoryError::AddressExists(format!("@{domain}")));
        }
        b.put(
            Cf::Routes,
            keys::route_domain(&domain),
            encode(&Route::Domain {
                catch_all: Some(account.id),
            }),
        );
        format!("@{domain}")
    } else {
        let (alias, domain) = normalize_address(alias)?;
        require_hosted(store, &domain)?;
        if get_route(store, &keys::route_address(&alias))?.is_some() {
            return Err(DirectoryError::AddressExists(alias));
        }
        b.put(
            Cf::Routes,
            keys::route_address(&alias),
            encode(&Route::Address {
                account: account.id,
                alias: true,
            }),
        );
        alias
    };
    store.commit_blocking(b)?;
    Ok(name)
}

/// Sets an account's storage quota in bytes.
pub fn set_quota(store: &Store, address: &str, quota: u64) -> Result<Account, DirectoryError> {
    let mut account = account_for_address(store, address)?;
    account.quota = quota;
    let mut b = Changes::new();
    b.put(Cf::Accounts, keys::account(account.id), encode(&account));
    store.commit_blocking(b)?;
    Ok(account)
}

/// Sets an account's spam level: off, low, medium or high.
pub fn set_spam_level(
    store: &Store,
    address: &str,
    level: &str,
) -> Result<Account, DirectoryError> {
    let level = level.to_ascii_lowercase();
    if !["off", "low", "medium", "high"].contains(&level.as_str()) {
        return Err(DirectoryError::Invalid {
            what: "spam level (off, low, medium, high)",
            value: level,
        });
    }
    let mut account = account_for_address(store, address)?;
    account.spam_level = level;
    let mut b = Changes::new();
    b.put(Cf::Accounts, keys::account(account.id), encode(&account));
    store.commit_blocking(b)?;
    Ok(account)
}

/// The senders whose mail skips the spam filter for an account (`a@b`, `*@domain`).
pub fn whitelist(store: &Store, account: u32) -> Result<Vec<String>, StoreError> {
    store
        .kv()
        .get(Cf::Accounts, &keys::whitelist(account))?
        .map(|raw| decode(Cf::Accounts, &raw))
        .transpose()
        .map(Option::unwrap_or_default)
}

pub fn add_to_whitelist(
    store: &Store,
    address: &str,
    pattern: &str,
) -> Result<Vec<String>, DirectoryError> {
    let account = account_for_address(store, address)?;
    let pattern = pattern.trim().to_lowercase();
    if !pattern.contains('@') || pattern.contains(char::is_whitespace) {
        return Err(DirectoryError::Invalid {
            what: "whitelist entry (a@b or *@domain)",
            value: pattern,
        });
    }
    let mut list = whitelist(store, account.id)?;
    if !list.contains(&pattern) {
        list.push(pattern);
    }
    let mut b = Changes::new();
    b.put(Cf::Accounts, keys::whitelist(account.id), encode(&list));
    store.commit_blocking(b)?;
    Ok(list)
}

/// Every route, for building the in-memory routing table.
pub fn all_routes(store: &Store) -> Result<Vec<(String, Route)>, StoreError> {
    let mut routes = Vec::new();
    let mut error = None;
    store.kv().scan_prefix(Cf::Routes, b"", &mut |k, v| {
        match decode::<Route>(Cf::Routes, v) {
            Ok(r) => routes.push((String::from_utf8_lossy(k).into_owned(), r)),
            Err(e) => error = Some(e),
        }
        error.is_none()
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(routes),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_accounts_aliases() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let s = owner.store();
        assert!(matches!(
            add_account(s, "alice@example.test", "h", 1),
            Err(DirectoryError::DomainNotHosted(_))
        ));
        assert_eq!(add_domain(s, "Example.TEST").unwrap(), "example.test");
        assert!(matches!(
            add_domain(s, "example.test"),
            Err(DirectoryError::DomainExists(_))
        ));
        assert!(add_domain(s, "bad domain").is_err());
        let alice = add_account(s, "Alice@Example.test", "h", 1).unwrap();
        let bob = add_account(s, "bob@example.test", "h", 1).unwrap();
        assert_eq!((alice.id, bob.id), (1, 2));
        assert!(matches!(
            add_account(s, "alice@example.test", "h", 1),
            Err(DirectoryError::AddressExists(_))
        ));
        assert_eq!(
            add_alias(s, "al@example.test", "alice@example.test").unwrap(),
            "al@example.test"
        );
        assert_eq!(account_for_address(s, "AL@example.test").unwrap().id, 1);
        assert!(add_alias(s, "x@example.test", "nobody@example.test").is_err());
        assert!(add_alias(s, "x@other.test", "alice@example.test").is_err());
        assert_eq!(
            add_alias(s, "@example.test", "bob@example.test").unwrap(),
            "@example.test"
        );
        let routes = all_routes(s).unwrap();
        assert!(routes.contains(&("@example.test".into(), Route::Domain { catch_all: Some(2) })));
        let list = list_accounts(s).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].account.address, "alice@example.test");
        assert_eq!(list_domains(s).unwrap(), vec!["example.test".to_string()]);
    }

    #[test]
    fn login_names() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let s = owner.store();
        add_domain(s, "example.test").unwrap();
        let alice =
            add_account_with_login(s, "alice@example.test", "h", Some(" BBC_Alice "), 1).unwrap();
        assert_eq!(
            login_name(s, alice.id).unwrap().as_deref(),
            Some("bbc_alice")
        );
        // Taken: refused, and the account is not created.
        assert!(matches!(
            add_account_with_login(s, "bob@example.test", "h", Some("bbc_alice"), 1),
            Err(DirectoryError::LoginTaken(_))
        ));
        assert!(account_for_address(s, "bob@example.test").is_err());
        for bad in ["", "a@b", "with space", "é", &"x".repeat(65)] {
            assert!(normalize_login(bad).is_err(), "{bad:?}");
            assert!(set_login(s, "alice@example.test", Some(bad)).is_err());
        }
        let bob = add_account(s, "bob@example.test", "h", 1).unwrap();
        add_alias(s, "al@example.test", "alice@example.test").unwrap();

        // Logging in: the primary address or the login name, any case; not an alias.
        let who = |u: &str| account_for_login(s, u).unwrap().map(|a| a.id);
        assert_eq!(who("Alice@Example.test"), Some(alice.id));
        assert_eq!(who("bbc_ALICE"), Some(alice.id));
        assert_eq!(who("al@example.test"), None);
        assert_eq!(who("nobody"), None);
        assert_eq!(who("not a name"), None);
        assert_eq!(who("bob"), None);

        assert!(matches!(
            set_login(s, "bob@example.test", Some("bbc_alice")),
            Err(DirectoryError::LoginTaken(_))
        ));
        set_login(s, "bob@example.test", Some("bob")).unwrap();
        assert_eq!(who("bob"), Some(bob.id));
        // Renaming frees the old name; setting the same name again is no change.
        set_login(s, "alice@example.test", Some("alice2")).unwrap();
        set_login(s, "alice@example.test", Some("alice2")).unwrap();
        assert_eq!(who("bbc_alice"), None);
        assert_eq!(who("alice2"), Some(alice.id));
        set_login(s, "bob@example.test", Some("bbc_alice")).unwrap();
        assert_eq!(who("bbc_alice"), Some(bob.id));
        // Cleared.
        let (_, now) = set_login(s, "bob@example.test", None).unwrap();
        assert_eq!(now, None);
        assert_eq!(who("bbc_alice"), None);
        assert_eq!(login_name(s, bob.id).unwrap(), None);
        assert_eq!(who("bob@example.test"), Some(bob.id));
        // The records of the accounts are untouched: still decode as before.
        assert_eq!(list_accounts(s).unwrap().len(), 2);
    }
}
