//! The login service: verifies credentials on threads of its own, because argon2id is
//! deliberately slow and must never run on an io_uring worker.
//!
//! A worker sends the credentials with the client's IP and awaits the outcome. The service
//! also enforces the lockout: after too many failures from one client (an IPv4 address or
//! an IPv6 /64), or for one login name from any number of clients, it answers `LockedOut`
//! without checking anything. An unknown user costs the same hash as a wrong password, so
//! timing does not tell which addresses exist. A success is remembered for a few minutes
//! ([`super::cache`]), so that logging in again with the same password skips argon2id.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use super::cache::VerifiedCache;
use super::password;
use super::sasl::Credentials;
use crate::policy::FailureTracker;
use crate::store::{directory, Store};

/// How a login attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthOutcome {
    Success {
        account: u32,
    },
    Failure,
    /// Too many failures from this IP: refused without checking.
    LockedOut,
    /// The service could not check (store error, shutting down): a temporary failure.
    Unavailable,
}

struct Request {
    credentials: Credentials,
    client_ip: IpAddr,
    reply: oneshot::Sender<AuthOutcome>,
}

/// Handle on the login threads.
#[derive(Clone)]
pub struct AuthService {
    requests: Sender<Request>,
    failures: Arc<FailureTracker>,
}

impl AuthService {
    pub fn start(
        store: Store,
        failures: Arc<FailureTracker>,
        threads: usize,
    ) -> std::io::Result<AuthService> {
        let (tx, rx) = crossbeam_channel::unbounded::<Request>();
        let cache = Arc::new(VerifiedCache::default());
        let logins = Arc::new(LoginBook::default());
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            let failures = failures.clone();
            let cache = cache.clone();
            let logins = logins.clone();
            std::thread::Builder::new()
                .name(format!("auth-{i}"))
                .spawn(move || {
                    for req in rx {
                        let outcome =
                            verify(&store, &failures, &cache, &req.credentials, req.client_ip);
                        if let AuthOutcome::Success { account } = outcome {
                            logins.note(&store, account, req.client_ip);
                        }
                        let _ = req.reply.send(outcome);
                    }
                })?;
        }
        Ok(AuthService {
            requests: tx,
            failures,
        })
    }

    /// Checks `credentials` from `client_ip` (async: the worker awaits the answer).
    pub async fn authenticate(&self, credentials: Credentials, client_ip: IpAddr) -> AuthOutcome {
        if locked(&self.failures, &credentials, client_ip) {
            return AuthOutcome::LockedOut;
        }
        let (reply, rx) = oneshot::channel();
        let request = Request {
            credentials,
            client_ip,
            reply,
        };
        if self.requests.send(request).is_err() {
            return AuthOutcome::Unavailable;
        }
        rx.await.unwrap_or(AuthOutcome::Unavailable)
    }
}

/// How often an account's last login is written at most: a client that logs in every
/// minute (POP3 polling) does not make a write each time.
const LAST_LOGIN_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// When each account's last login was last written.
#[derive(Default)]
struct LoginBook {
    written: std::sync::Mutex<std::collections::HashMap<u32, std::time::Instant>>,
}

impl LoginBook {
    /// Records the login (time and client) for the console, unless one was written for
    /// the account less than [`LAST_LOGIN_EVERY`] ago. Not waited for: the next group
    /// commit takes it.
    fn note(&self, store: &Store, account: u32, ip: IpAddr) {
        let now = std::time::Instant::now();
        {
            let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
            if written
                .get(&account)
                .is_some_and(|t| now.duration_since(*t) < LAST_LOGIN_EVERY)
            {
                return;
            }
            if written.len() > 100_000 {
                written.retain(|_, t| now.duration_since(*t) < LAST_LOGIN_EVERY);
            }
            written.insert(account, now);
        }
        let mut changes = crate::store::Changes::new();
        directory::note_login(&mut changes, account, crate::clock::unix_now(), ip);
        drop(store.submit(changes));
    }
}

/// Whether the client or the login name is locked out (too many recent failures).
fn locked(failures: &FailureTracker, c: &Credentials, ip: IpAddr) -> bool {
    failures.locked(ip) || failures.account_locked(&c.username)
}

/// A hash to verify against when the user does not exist, so that both cost the same.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash("decoy-Password-1").unwrap_or_default())
}

fn verify(
    store: &Store,
    failures: &FailureTracker,
    cache: &VerifiedCache,
    c: &Credentials,
    ip: IpAddr,
) -> AuthOutcome {
    if locked(failures, c, ip) {
        return AuthOutcome::LockedOut;
    }
    // The account's primary address or its login name; aliases deliver mail but do not
    // log in.
    let account = match directory::account_for_login(store, &c.username) {
        Ok(account) => account,
        Err(e) => {
            tracing::error!(error = %e, "login: store error");
            return AuthOutcome::Unavailable;
        }
    };
    // Failures count against the account whichever name it was given by, so the address
    // and the login name do not each get their own allowance of guesses.
    let name = account
        .as_ref()
        .map_or_else(|| c.username.clone(), |a| a.address.clone());
    if failures.account_locked(&name) {
        return AuthOutcome::LockedOut;
    }
    // Verified with this very hash and password a moment ago: no argon2id again.
    let now = std::time::Instant::now();
    if let Some(a) = &account {
        if cache.verified(a.id, &a.password_hash, &c.password, now) {
            return AuthOutcome::Success { account: a.id };
        }
    }
    let hash = account
        .as_ref()
        .map_or(decoy_hash(), |a| a.password_hash.as_str());
    let ok = password::verify(&c.password, hash);
    match (ok, account) {
        (true, Some(a)) => {
            cache.remember(a.id, &a.password_hash, &c.password, now);
            AuthOutcome::Success { account: a.id }
        }
        _ => {
            failures.record_failure(ip, &name);
            tracing::info!(user = %c.username, %ip, "login failed");
            AuthOutcome::Failure
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::store::directory;

    fn credentials(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    #[test]
    fn login_name_or_address_one_allowance_of_failures() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let s = owner.store();
        directory::add_domain(s, "example.test").unwrap();
        let hash = password::hash("Secret123").unwrap();
        let alice =
            directory::add_account_with_login(s, "alice@example.test", &hash, Some("bbc_alice"), 1)
                .unwrap();
        let failures = FailureTracker::with_account_limit(
            100,
            3,
            Duration::from_secs(600),
            Duration::from_secs(900),
        );
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let cache = VerifiedCache::default();
        let ok = AuthOutcome::Success { account: alice.id };
        assert_eq!(
            verify(
                s,
                &failures,
                &cache,
                &credentials("BBC_Alice", "Secret123"),
                ip
            ),
            ok
        );
        assert_eq!(
            verify(
                s,
                &failures,
                &cache,
                &credentials("alice@example.test", "Secret123"),
                ip
            ),
            ok
        );
        // Wrong passwords by either name count against the one account.
        for user in ["bbc_alice", "alice@example.test", "bbc_alice"] {
            assert_eq!(
                verify(s, &failures, &cache, &credentials(user, "Wrong1234"), ip),
                AuthOutcome::Failure
            );
        }
        assert_eq!(
            verify(
                s,
                &failures,
                &cache,
                &credentials("bbc_alice", "Secret123"),
                ip
            ),
            AuthOutcome::LockedOut
        );
        assert_eq!(
            verify(
                s,
                &failures,
                &cache,
                &credentials("nobody", "Secret123"),
                ip
            ),
            AuthOutcome::Failure
        );
    }

    #[test]
    fn a_remembered_success_skips_the_hash_but_not_the_lockout() {
        let dir = tempfile::tempdir().unwrap();
        let owner = Store::open(dir.path()).unwrap();
        let s = owner.store();
        directory::add_domain(s, "example.test").unwrap();
        let hash = password::hash("Secret123").unwrap();
        let bob = directory::add_account_with_login(s, "bob@example.test", &hash, None, 1).unwrap();
        let failures = FailureTracker::with_account_limit(
            100,
            2,
            Duration::from_secs(600),
            Duration::from_secs(900),
        );
        let ip: IpAddr = "192.0.2.2".parse().unwrap();
        let cache = VerifiedCache::default();
        let ok = AuthOutcome::Success { account: bob.id };
        let login = |p: &str| {
            verify(
                s,
                &failures,
                &cache,
                &credentials("bob@example.test", p),
                ip,
            )
        };
        assert_eq!(login("Secret123"), ok);
        assert_eq!(cache.len(), 1);
        assert!(cache.verified(bob.id, &hash, "Secret123", std::time::Instant::now()));
        assert_eq!(login("Secret123"), ok);
        // Failures are not remembered.
        assert_eq!(login("Wrong1234"), AuthOutcome::Failure);
        assert_eq!(cache.len(), 1);
        // The lockout comes first, remembered password or not.
        assert_eq!(login("Wrong1234"), AuthOutcome::Failure);
        assert_eq!(login("Secret123"), AuthOutcome::LockedOut);
    }
}
