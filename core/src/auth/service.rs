//! The login service: verifies credentials on threads of its own, because argon2id is
//! deliberately slow and must never run on an io_uring worker.
//!
//! A worker sends the credentials with the client's IP and awaits the outcome. The service
//! also enforces the lockout: after too many failures from one client (an IPv4 address or
//! an IPv6 /64), or for one login name from any number of clients, it answers `LockedOut`
//! without checking anything. An unknown user costs the same hash as a wrong password, so
//! timing does not tell which addresses exist.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

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
        for i in 0..threads.max(1) {
            let rx = rx.clone();
            let store = store.clone();
            let failures = failures.clone();
            std::thread::Builder::new()
                .name(format!("auth-{i}"))
                .spawn(move || {
                    for req in rx {
                        let outcome = verify(&store, &failures, &req.credentials, req.client_ip);
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

/// Whether the client or the login name is locked out (too many recent failures).
fn locked(failures: &FailureTracker, c: &Credentials, ip: IpAddr) -> bool {
    failures.locked(ip) || failures.account_locked(&c.username)
}

/// A hash to verify against when the user does not exist, so that both cost the same.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| password::hash("decoy-Password-1").unwrap_or_default())
}

fn verify(store: &Store, failures: &FailureTracker, c: &Credentials, ip: IpAddr) -> AuthOutcome {
    if locked(failures, c, ip) {
        return AuthOutcome::LockedOut;
    }
    let account = match directory::account_for_address(store, &c.username) {
        Ok(account) => Some(account),
        Err(directory::DirectoryError::Store(e)) => {
            tracing::error!(error = %e, "login: store error");
            return AuthOutcome::Unavailable;
        }
        Err(_) => None,
    };
    // A login is the account's primary address; aliases deliver mail but do not log in.
    let account = account.filter(|a| a.address.eq_ignore_ascii_case(c.username.trim()));
    let hash = account
        .as_ref()
        .map_or(decoy_hash(), |a| a.password_hash.as_str());
    let ok = password::verify(&c.password, hash);
    match (ok, account) {
        (true, Some(a)) => AuthOutcome::Success { account: a.id },
        _ => {
            failures.record_failure(ip, &c.username);
            tracing::info!(user = %c.username, %ip, "login failed");
            AuthOutcome::Failure
        }
    }
}
