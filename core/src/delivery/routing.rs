//! The routing table: hosted domains, addresses, aliases and catch-alls, in memory.
//!
//! Workers decide every RCPT from an immutable snapshot ([`Directory`]) without touching
//! the store or taking a lock; the admin side publishes a new snapshot after each change.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::smtp::RcptRoute;
use crate::store::directory::{all_routes, list_accounts, whitelist};
use crate::store::schema::Route;
use crate::store::{Store, StoreError};

/// An immutable routing snapshot.
#[derive(Debug, Default)]
pub struct Directory {
    /// Keys are lower-case addresses and `@domain`s.
    routes: HashMap<String, Route>,
    /// Each account's spam level and whitelist.
    spam: HashMap<u32, SpamPrefs>,
    /// The account behind `spam.report_address`: mail to any of its addresses is a spam
    /// report ([`RcptRoute::Report`]).
    report_account: Option<u32>,
}

/// What an account wants done with spam.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpamPrefs {
    /// The score at which mail goes to Junk; None = the filter is off.
    pub threshold: Option<f64>,
    /// Senders (`a@b`, `*@domain`) whose mail skips the filter.
    pub whitelist: Vec<String>,
}

impl Directory {
    pub fn load(store: &Store) -> Result<Directory, StoreError> {
        let mut d = Directory::from_routes(all_routes(store)?);
        for info in list_accounts(store)? {
            let a = info.account;
            let prefs = SpamPrefs {
                threshold: crate::filter::level_threshold(&a.spam_level),
                whitelist: whitelist(store, a.id)?,
            };
            d.spam.insert(a.id, prefs);
        }
        Ok(d)
    }

    pub fn from_routes(routes: impl IntoIterator<Item = (String, Route)>) -> Directory {
        Directory {
            routes: routes.into_iter().collect(),
            spam: HashMap::new(),
            report_account: None,
        }
    }

    /// Makes the account that `address` (the configured report address; empty: none)
    /// delivers to the spam-report account. None when the address is set but reaches no
    /// account here, for the caller to warn about.
    pub fn with_report_address(mut self, address: &str) -> (Directory, Option<u32>) {
        self.report_account = None;
        let address = address.trim().to_lowercase();
        if !address.is_empty() {
            if let RcptRoute::Local { account } = self.route(&address) {
                self.report_account = Some(account);
            }
        }
        let found = self.report_account;
        (self, found)
    }

    /// The spam-report account, if there is one.
    pub fn report_account(&self) -> Option<u32> {
        self.report_account
    }

    /// An account's spam settings (medium, no whitelist, when unknown).
    pub fn spam_prefs(&self, account: u32) -> SpamPrefs {
        self.spam.get(&account).cloned().unwrap_or(SpamPrefs {
            threshold: crate::filter::level_threshold("medium"),
            whitelist: Vec::new(),
        })
    }

    /// Routes a lower-case address: its own route, else its domain's catch-all, else
    /// unknown user in a hosted domain, else remote (relayed only for those allowed).
    pub fn route(&self, address: &str) -> RcptRoute {
        match self.route_address(address) {
            RcptRoute::Local { account } if Some(account) == self.report_account => {
                RcptRoute::Report { account }
            }
            route => route,
        }
    }

    fn route_address(&self, address: &str) -> RcptRoute {
        if let Some(Route::Address { account, .. }) = self.routes.get(address) {
            return RcptRoute::Local { account: *account };
        }
        // The domain with its '@', as domains are keyed.
        let Some((_local, domain)) = address
            .rfind('@')
            .and_then(|at| address.split_at_checked(at))
        else {
            return RcptRoute::UnknownUser;
        };
        match self.routes.get(domain) {
            Some(Route::Domain {
                catch_all: Some(account),
            }) => RcptRoute::Local { account: *account },
            Some(Route::BackupMx { .. }) => RcptRoute::Forward { scan: false },
            Some(Route::ScanRelay { .. }) => RcptRoute::Forward { scan: true },
            Some(_) => RcptRoute::UnknownUser,
            None => RcptRoute::Remote,
        }
    }

    /// Whether `domain` is hosted here: its mailboxes are on this appliance (not a
    /// backup-MX or scan-relay domain, whose mail only passes through).
    pub fn is_hosted(&self, domain: &str) -> bool {
        matches!(
            self.routes.get(&format!(
                "@{}",
                domain.trim_end_matches('.').to_ascii_lowercase()
            )),
            Some(Route::Domain { .. })
        )
    }

    /// Where mail for a backup-MX or scan-relay domain goes; None for other domains.
    pub fn forward_target(&self, domain: &str) -> Option<ForwardTarget> {
        match self
            .routes
            .get(&format!("@{}", domain.to_ascii_lowercase()))?
        {
            Route::BackupMx { primary: Some(h) } | Route::ScanRelay { target: h } => {
                Some(ForwardTarget::Host(h.clone()))
            }
            Route::BackupMx { primary: None } => Some(ForwardTarget::OtherMx),
            _ => None,
        }
    }
}

/// The customer's server of a forwarded domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ForwardTarget {
    /// "host" or "host:port".
    Host(String),
    /// The domain's MX hosts other than this appliance.
    OtherMx,
}

/// The current snapshot, shared by every worker.
pub type SharedDirectory = Arc<ArcSwap<Directory>>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_addresses_aliases_and_catch_alls() {
        let d = Directory::from_routes([
            (
                "@example.test".to_string(),
                Route::Domain { catch_all: None },
            ),
            (
                "@catch.test".to_string(),
                Route::Domain { catch_all: Some(3) },
            ),
            (
                "alice@example.test".to_string(),
                Route::Address {
                    account: 1,
                    alias: false,
                },
            ),
            (
                "al@example.test".to_string(),
                Route::Address {
                    account: 1,
                    alias: true,
                },
            ),
            (
                "carol@catch.test".to_string(),
                Route::Address {
                    account: 2,
                    alias: false,
                },
            ),
        ]);
        assert_eq!(
            d.route("alice@example.test"),
            RcptRoute::Local { account: 1 }
        );
        assert_eq!(d.route("al@example.test"), RcptRoute::Local { account: 1 });
        assert_eq!(d.route("nobody@example.test"), RcptRoute::UnknownUser);
        assert_eq!(d.route("carol@catch.test"), RcptRoute::Local { account: 2 });
        assert_eq!(
            d.route("anyone@catch.test"),
            RcptRoute::Local { account: 3 }
        );
        assert_eq!(d.route("someone@elsewhere.test"), RcptRoute::Remote);
        // A subdomain of a hosted domain is not hosted.
        assert_eq!(d.route("alice@sub.example.test"), RcptRoute::Remote);
        // SMTPUTF8 addresses: multi-byte characters next to the '@'.
        assert_eq!(d.route("é@catch.test"), RcptRoute::Local { account: 3 });
        assert_eq!(d.route("jöran@example.test"), RcptRoute::UnknownUser);
        assert_eq!(d.route("é@é"), RcptRoute::Remote);
        assert_eq!(d.route("éé"), RcptRoute::UnknownUser);
        // The report address's account is reached as a report by every address it has.
        let (d, found) = d.with_report_address(" Al@Example.test ");
        assert_eq!(found, Some(1));
        assert_eq!(
            d.route("alice@example.test"),
            RcptRoute::Report { account: 1 }
        );
        assert_eq!(d.route("al@example.test"), RcptRoute::Report { account: 1 });
        assert_eq!(d.route("carol@catch.test"), RcptRoute::Local { account: 2 });
        let (d, found) = d.with_report_address("spam@elsewhere.test");
        assert_eq!((found, d.report_account()), (None, None));
        assert_eq!(
            d.route("alice@example.test"),
            RcptRoute::Local { account: 1 }
        );
    }

    #[test]
    fn hosted_domains() {
        let d = Directory::from_routes([
            (
                "@example.test".to_string(),
                Route::Domain { catch_all: None },
            ),
            (
                "@backup.test".to_string(),
                Route::BackupMx { primary: None },
            ),
            (
                "alice@example.test".to_string(),
                Route::Address {
                    account: 1,
                    alias: false,
                },
            ),
        ]);
        assert!(d.is_hosted("example.test"));
        assert!(d.is_hosted("Example.TEST."));
        assert!(!d.is_hosted("backup.test"));
        assert!(!d.is_hosted("sub.example.test"));
        assert!(!d.is_hosted("alice@example.test"));
        assert!(!d.is_hosted(""));
    }
}
