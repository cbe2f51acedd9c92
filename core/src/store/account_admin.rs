//! Changing and removing what [`super::directory`] creates: deleting an account with its
//! mail, disabling it, resetting its password, listing and removing aliases, whitelist
//! entries and domains. The console and the command line both call these.

use super::directory::{
    account_for_address, all_routes, login_name, normalize_address, normalize_domain, whitelist,
    DirectoryError,
};
use super::kv::Cf;
use super::schema::{encode, keys, Account, Route};
use super::{Changes, Store};

/// Deletes an account: its mail (every mailbox, INBOX included), its aliases (and a
/// catch-all pointing at it), its login name, whitelist and settings, in one commit.
pub fn delete_account(store: &Store, address: &str) -> Result<Account, DirectoryError> {
    let account = account_for_address(store, address)?;
    let mut b = Changes::new();
    b.delete_all_mailboxes(account.id);
    for (key, route) in all_routes(store)? {
        match route {
            Route::Address { account: id, .. } if id == account.id => {
                b.delete(Cf::Routes, key.clone().into_bytes());
            }
            Route::Domain {
                catch_all: Some(id),
            } if id == account.id => {
                b.put(
                    Cf::Routes,
                    key.clone().into_bytes(),
                    encode(&Route::Domain { catch_all: None }),
                );
            }
            _ => {}
        }
    }
    if let Some(login) = login_name(store, account.id)? {
        b.delete(Cf::Accounts, keys::login(&login));
        b.delete(Cf::Accounts, keys::login_of(account.id));
    }
    b.delete(Cf::Accounts, keys::account(account.id));
    b.delete(Cf::Accounts, keys::account_by_name(&account.address));
    b.delete(Cf::Accounts, keys::whitelist(account.id));
    b.delete(Cf::Accounts, keys::disabled(account.id));
    b.delete(Cf::Accounts, keys::last_login(account.id));
    for name in super::mail::lost_subscriptions(store, account.id)? {
        b.delete(Cf::Accounts, keys::lost_subscription(account.id, &name));
    }
    store.commit_blocking(b)?;
    Ok(account)
}

/// Disables an account (it may no longer log in; its mail is still delivered) or
/// enables it again.
pub fn set_disabled(
    store: &Store,
    address: &str,
    disabled: bool,
) -> Result<Account, DirectoryError> {
    let account = account_for_address(store, address)?;
    let mut b = Changes::new();
    if disabled {
        b.put(Cf::Accounts, keys::disabled(account.id), vec![1]);
    } else {
        b.delete(Cf::Accounts, keys::disabled(account.id));
    }
    store.commit_blocking(b)?;
    Ok(account)
}

/// Replaces an account's password (`password_hash`: an argon2id PHC string).
pub fn set_password(
    store: &Store,
    address: &str,
    password_hash: &str,
) -> Result<Account, DirectoryError> {
    if !password_hash.starts_with("$argon2id$") {
        return Err(DirectoryError::Invalid {
            what: "password hash",
            value: String::new(),
        });
    }
    let mut account = account_for_address(store, address)?;
    account.password_hash = password_hash.to_string();
    let mut b = Changes::new();
    b.put(Cf::Accounts, keys::account(account.id), encode(&account));
    store.commit_blocking(b)?;
    Ok(account)
}

/// An alias: another address (or `@domain`, a catch-all) and the account it delivers to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Alias {
    pub alias: String,
    pub account: u32,
}

/// Every alias and catch-all, by name.
pub fn list_aliases(store: &Store) -> Result<Vec<Alias>, DirectoryError> {
    Ok(all_routes(store)?
        .into_iter()
        .filter_map(|(name, route)| match route {
            Route::Address {
                account,
                alias: true,
            } => Some(Alias {
                alias: name,
                account,
            }),
            Route::Domain {
                catch_all: Some(account),
            } => Some(Alias {
                alias: name,
                account,
            }),
            _ => None,
        })
        .collect())
}

/// Removes an alias (`a@domain`) or a catch-all (`@domain`).
pub fn remove_alias(store: &Store, alias: &str) -> Result<String, DirectoryError> {
    let mut b = Changes::new();
    let name = if let Some(domain) = alias.trim().strip_prefix('@') {
        let domain = normalize_domain(domain)?;
        let key = keys::route_domain(&domain);
        match route(store, &key)? {
            Some(Route::Domain { catch_all: Some(_) }) => {
                b.put(Cf::Routes, key, encode(&Route::Domain { catch_all: None }))
            }
            _ => return Err(DirectoryError::NoSuchAddress(format!("@{domain}"))),
        }
        format!("@{domain}")
    } else {
        let (alias, _) = normalize_address(alias)?;
        let key = keys::route_address(&alias);
        match route(store, &key)? {
            Some(Route::Address { alias: true, .. }) => b.delete(Cf::Routes, key),
            _ => return Err(DirectoryError::NoSuchAddress(alias)),
        }
        alias
    };
    store.commit_blocking(b)?;
    Ok(name)
}

/// Removes a domain. A hosted domain that still has accounts is refused: delete them
/// first (deleting a domain must never delete mail by surprise). Its aliases go with it.
pub fn remove_domain(store: &Store, domain: &str) -> Result<String, DirectoryError> {
    let domain = normalize_domain(domain)?;
    let key = keys::route_domain(&domain);
    if route(store, &key)?.is_none() {
        return Err(DirectoryError::DomainNotHosted(domain));
    }
    let suffix = format!("@{domain}");
    let mut b = Changes::new();
    for (name, route) in all_routes(store)? {
        if name.starts_with('@') || !name.ends_with(&suffix) {
            continue;
        }
        if matches!(route, Route::Address { alias: false, .. }) {
            return Err(DirectoryError::Invalid {
                what: "domain removal (the domain still has accounts: delete them first)",
                value: domain,
            });
        }
        b.delete(Cf::Routes, keys::route_address(&name));
    }
    b.delete(Cf::Routes, key);
    store.commit_blocking(b)?;
    Ok(domain)
}

/// Removes a sender from an account's whitelist; the list as it is then.
pub fn remove_from_whitelist(
    store: &Store,
    address: &str,
    pattern: &str,
) -> Result<Vec<String>, DirectoryError> {
    let account = account_for_address(store, address)?;
    let pattern = pattern.trim().to_lowercase();
    let mut list = whitelist(store, account.id)?;
    let before = list.len();
    list.retain(|w| *w != pattern);
    if list.len() == before {
        return Err(DirectoryError::Invalid {
            what: "whitelist entry (not on the list)",
            value: pattern,
        });
    }
    let mut b = Changes::new();
    b.put(Cf::Accounts, keys::whitelist(account.id), encode(&list));
    store.commit_blocking(b)?;
    Ok(list)
}

fn route(store: &Store, key: &[u8]) -> Result<Option<Route>, DirectoryError> {
    Ok(store
        .kv()
        .get(Cf::Routes, key)?
        .map(|raw| super::schema::decode(Cf::Routes, &raw))
        .transpose()?)
}

#[cfg(test)]
mod tests {
    use super::super::directory::{
        account_for_login, add_account_with_login, add_alias, add_domain, add_to_whitelist,
        is_disabled, list_accounts,
    };
    use super::super::{mail, StoreOwner};
    use super::*;
    use crate::store::{Folder, NewMail};

    fn store() -> StoreOwner {
        let owner = Store::open_in_memory().unwrap();
        let s = owner.store();
        add_domain(s, "example.test").unwrap();
        add_domain(s, "other.test").unwrap();
        for (who, login) in [("alice", Some("al")), ("bob", None)] {
            add_account_with_login(s, &format!("{who}@example.test"), "$argon2id$x", login, 1)
                .unwrap();
        }
        owner
    }

    #[test]
    fn deleting_an_account_takes_its_mail_aliases_and_login_with_it() {
        let owner = store();
        let s = owner.store();
        add_alias(s, "a2@example.test", "alice@example.test").unwrap();
        add_alias(s, "@other.test", "alice@example.test").unwrap();
        add_alias(s, "b2@example.test", "bob@example.test").unwrap();
        add_to_whitelist(s, "alice@example.test", "x@y.test").unwrap();
        let alice = account_for_address(s, "alice@example.test").unwrap();
        let mut c = Changes::new();
        let blob = c.store_blob(b"Subject: hi\r\n\r\nbody\r\n".to_vec());
        c.append(alice.id, Folder::inbox(), NewMail::arrived(blob, 21, 1));
        c.append(alice.id, Folder::junk(), NewMail::arrived(blob, 21, 1));
        s.commit_blocking(c).unwrap();

        delete_account(s, "alice@example.test").unwrap();
        assert!(account_for_address(s, "alice@example.test").is_err());
        assert!(account_for_login(s, "al").unwrap().is_none());
        assert!(mail::mailboxes(s, alice.id).unwrap().is_empty());
        let aliases = list_aliases(s).unwrap();
        assert_eq!(aliases.len(), 1, "{aliases:?}");
        assert_eq!(aliases[0].alias, "b2@example.test");
        assert_eq!(list_accounts(s).unwrap().len(), 1);
        // Its storage use is back to nothing and the message's body is gone.
        assert!(mail::blob(s, &blob).unwrap().is_none());
    }

    #[test]
    fn a_disabled_account_cannot_log_in_until_enabled() {
        let owner = store();
        let s = owner.store();
        set_disabled(s, "alice@example.test", true).unwrap();
        let id = account_for_address(s, "alice@example.test").unwrap().id;
        assert!(is_disabled(s, id).unwrap());
        assert!(account_for_login(s, "alice@example.test")
            .unwrap()
            .is_none());
        assert!(account_for_login(s, "al").unwrap().is_none());
        set_disabled(s, "alice@example.test", false).unwrap();
        assert!(account_for_login(s, "al").unwrap().is_some());
    }

    #[test]
    fn aliases_catch_alls_domains_and_whitelists_are_removed() {
        let owner = store();
        let s = owner.store();
        add_alias(s, "a2@example.test", "alice@example.test").unwrap();
        add_alias(s, "@other.test", "bob@example.test").unwrap();
        assert_eq!(list_aliases(s).unwrap().len(), 2);
        remove_alias(s, "A2@example.test").unwrap();
        remove_alias(s, "@other.test").unwrap();
        assert!(list_aliases(s).unwrap().is_empty());
        assert!(
            remove_alias(s, "alice@example.test").is_err(),
            "not an alias"
        );
        // A domain with accounts stays; an empty one goes.
        assert!(remove_domain(s, "example.test").is_err());
        remove_domain(s, "other.test").unwrap();
        assert!(remove_domain(s, "other.test").is_err());
        add_to_whitelist(s, "bob@example.test", "x@y.test").unwrap();
        assert!(remove_from_whitelist(s, "bob@example.test", "X@y.test")
            .unwrap()
            .is_empty());
        assert!(remove_from_whitelist(s, "bob@example.test", "x@y.test").is_err());
    }

    #[test]
    fn a_password_is_replaced_only_by_a_hash() {
        let owner = store();
        let s = owner.store();
        assert!(set_password(s, "bob@example.test", "plain").is_err());
        set_password(s, "bob@example.test", "$argon2id$new").unwrap();
        assert_eq!(
            account_for_address(s, "bob@example.test")
                .unwrap()
                .password_hash,
            "$argon2id$new"
        );
    }
}
