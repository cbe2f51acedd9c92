//! The routing table: hosted domains, addresses, aliases and catch-alls, in memory.
//!
//! Workers decide every RCPT from an immutable snapshot ([`Directory`]) without touching
//! the store or taking a lock; the admin side publishes a new snapshot after each change.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::smtp::RcptRoute;
use crate::store::directory::all_routes;
use crate::store::schema::Route;
use crate::store::{Store, StoreError};

/// An immutable routing snapshot.
#[derive(Debug, Default)]
pub struct Directory {
    /// Keys are lower-case addresses and `@domain`s.
    routes: HashMap<String, Route>,
}

impl Directory {
    pub fn load(store: &Store) -> Result<Directory, StoreError> {
        Ok(Directory::from_routes(all_routes(store)?))
    }

    pub fn from_routes(routes: impl IntoIterator<Item = (String, Route)>) -> Directory {
        Directory {
            routes: routes.into_iter().collect(),
        }
    }

    /// Routes a lower-case address: its own route, else its domain's catch-all, else
    /// unknown user in a hosted domain, else remote (relayed only for those allowed).
    pub fn route(&self, address: &str) -> RcptRoute {
        if let Some(Route::Address { account, .. }) = self.routes.get(address) {
            return RcptRoute::Local { account: *account };
        }
        let Some(at) = address.rfind('@') else {
            return RcptRoute::UnknownUser;
        };
        match self.routes.get(&address[at..]) {
            Some(Route::Domain {
                catch_all: Some(account),
            }) => RcptRoute::Local { account: *account },
            Some(_) => RcptRoute::UnknownUser,
            None => RcptRoute::Remote,
        }
    }
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
    }
}
