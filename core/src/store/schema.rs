//! Keys and values of every family: how Gannet's records are laid out in the store.
//!
//! Keys put big-endian integers first so that a prefix scan lists an account's mailboxes
//! and a mailbox's messages in order. Values are `postcard`-encoded structs.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::kv::{Cf, StoreError};

/// The folders every new account gets, with their RFC 6154 special-use attribute.
pub const DEFAULT_MAILBOXES: [(&str, Option<&str>); 5] = [
    ("INBOX", None),
    ("Drafts", Some("\\Drafts")),
    ("Sent", Some("\\Sent")),
    ("Trash", Some("\\Trash")),
    ("Junk", Some("\\Junk")),
];

/// A content hash naming a blob.
pub type BlobId = [u8; 32];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: u32,
    /// The account's primary address (lower case).
    pub address: String,
    /// PHC string of the argon2id hash.
    pub password_hash: String,
    /// Storage quota in bytes.
    pub quota: u64,
    /// off | low | medium | high.
    pub spam_level: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MailboxMeta {
    pub id: u32,
    pub uidvalidity: u32,
    pub uidnext: u32,
    pub highest_modseq: u64,
    pub subscribed: bool,
    pub special_use: Option<String>,
}

impl MailboxMeta {
    /// The highest modification sequence as IMAP shows it (RFC 7162 wants a positive
    /// number; mailboxes from before modification sequences were kept may hold 0).
    pub fn shown_highest_modseq(&self) -> u64 {
        self.highest_modseq.max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MailEntry {
    pub blob: BlobId,
    pub size: u64,
    pub internal_date: i64,
    /// System flags as bits (see [`flags`]).
    pub flags: u32,
    pub keywords: Vec<String>,
    pub modseq: u64,
    pub spam_score: Option<f32>,
}

/// IMAP system flags as bits of [`MailEntry::flags`].
pub mod flags {
    pub const SEEN: u32 = 1;
    pub const ANSWERED: u32 = 2;
    pub const FLAGGED: u32 = 4;
    pub const DELETED: u32 = 8;
    pub const DRAFT: u32 = 16;
}

/// Where mail for an address or a domain goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Route {
    /// `@domain`: a hosted domain; mail for unknown addresses goes to `catch_all` if set.
    Domain { catch_all: Option<u32> },
    /// `local@domain`: delivered to this account (an alias when not its primary address).
    Address { account: u32, alias: bool },
    /// `@domain` of a customer whose mail is held and passed on (backup MX): to `primary`
    /// ("host" or "host:port") if set, else to the domain's other MX hosts.
    BackupMx { primary: Option<String> },
    /// `@domain` whose mail is scanned, tagged and passed on to `target` ("host[:port]").
    ScanRelay { target: String },
}

/// The postcard encoding of a value. Encoding Gannet's records into memory cannot fail
/// (postcard fails only on a full fixed-size buffer, or on a sequence or map of unknown
/// length, which derived `Serialize` implementations never give). Were it to fail, the
/// empty value written would be reported as corrupt when read (every record has a field
/// or a length to decode), not taken for a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

pub fn decode<T: DeserializeOwned>(cf: Cf, bytes: &[u8]) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        cf: cf.name(),
        detail: e.to_string(),
    })
}

pub mod keys {
    //! Key builders, one per record kind.

    use super::BlobId;

    pub fn account(id: u32) -> Vec<u8> {
        let mut k = b"id:".to_vec();
        k.extend_from_slice(&id.to_be_bytes());
        k
    }

    pub const ACCOUNT_PREFIX: &[u8] = b"id:";

    pub fn whitelist(account: u32) -> Vec<u8> {
        let mut k = b"wl:".to_vec();
        k.extend_from_slice(&account.to_be_bytes());
        k
    }

    pub fn account_by_name(address: &str) -> Vec<u8> {
        [b"name:", address.as_bytes()].concat()
    }

    /// A login name (lower case) to its account's id (4 bytes, big-endian): a name other
    /// than the address that the account may log in with. Kept beside the account, not in
    /// [`super::Account`], whose encoding old stores must keep decoding.
    pub fn login(name: &str) -> Vec<u8> {
        [b"login:", name.as_bytes()].concat()
    }

    /// An account's login name (UTF-8), so that it can be changed, cleared, or removed
    /// with the account.
    pub fn login_of(account: u32) -> Vec<u8> {
        [&b"login_of:"[..], &account.to_be_bytes()].concat()
    }

    /// A subscription that outlived its mailbox (RFC 9051 6.3.7: DELETE must not drop it).
    pub fn lost_subscription(account: u32, name: &str) -> Vec<u8> {
        [&lost_subscriptions_of(account)[..], name.as_bytes()].concat()
    }

    pub fn lost_subscriptions_of(account: u32) -> Vec<u8> {
        [&b"sub:"[..], &account.to_be_bytes()].concat()
    }

    /// When and from where the account last logged in.
    pub fn last_login(account: u32) -> Vec<u8> {
        [&b"login_at:"[..], &account.to_be_bytes()].concat()
    }

    /// Present while the account is disabled (it may not log in).
    pub fn disabled(account: u32) -> Vec<u8> {
        let mut k = b"off:".to_vec();
        k.extend_from_slice(&account.to_be_bytes());
        k
    }

    /// An administrator of the console, by name.
    pub fn admin(name: &str) -> Vec<u8> {
        [b"admin:".as_slice(), name.as_bytes()].concat()
    }

    pub const ADMIN_PREFIX: &[u8] = b"admin:";

    /// An API token, by the hash of its secret.
    pub fn admin_token(hash: &[u8; 32]) -> Vec<u8> {
        [b"admintoken:".as_slice(), hash.as_slice()].concat()
    }

    pub fn route_address(address: &str) -> Vec<u8> {
        address.as_bytes().to_vec()
    }

    pub fn route_domain(domain: &str) -> Vec<u8> {
        format!("@{domain}").into_bytes()
    }

    pub fn mailbox(account: u32, name: &str) -> Vec<u8> {
        [&account.to_be_bytes()[..], name.as_bytes()].concat()
    }

    pub fn mailboxes_of(account: u32) -> Vec<u8> {
        account.to_be_bytes().to_vec()
    }

    pub fn mail(account: u32, mailbox: u32, uid: u32) -> Vec<u8> {
        let mut k = Vec::with_capacity(12);
        k.extend_from_slice(&account.to_be_bytes());
        k.extend_from_slice(&mailbox.to_be_bytes());
        k.extend_from_slice(&uid.to_be_bytes());
        k
    }

    pub fn mail_of(account: u32, mailbox: u32) -> Vec<u8> {
        mail(account, mailbox, 0)[..8].to_vec()
    }

    /// The account, mailbox id and UID of a mail key.
    pub fn mail_key_parts(key: &[u8]) -> Option<(u32, u32, u32)> {
        let part = |at: usize| -> Option<u32> {
            key.get(at..at + 4)?.try_into().ok().map(u32::from_be_bytes)
        };
        match key.len() {
            12 => Some((part(0)?, part(4)?, part(8)?)),
            _ => None,
        }
    }

    /// The UID at the end of a mail key.
    pub fn uid_of_mail_key(key: &[u8]) -> Option<u32> {
        key.get(8..12)?.try_into().ok().map(u32::from_be_bytes)
    }

    pub fn blob(id: &BlobId) -> Vec<u8> {
        id.to_vec()
    }

    pub fn blob_refs(id: &BlobId) -> Vec<u8> {
        [&b"blobref:"[..], id].concat()
    }

    pub fn usage(account: u32) -> Vec<u8> {
        [&b"usage:"[..], &account.to_be_bytes()].concat()
    }

    pub fn stat(name: &str) -> Vec<u8> {
        [b"stat:", name.as_bytes()].concat()
    }

    /// A statistic's count in one minute (Unix time / 60): by minute first, so that the
    /// old ones are one range to delete.
    pub fn stat_minute(minute: i64, name: &str) -> Vec<u8> {
        [STAT_MINUTE_PREFIX, &minute.to_be_bytes(), name.as_bytes()].concat()
    }

    pub const STAT_MINUTE_PREFIX: &[u8] = b"statm:";

    pub const NEXT_ACCOUNT_ID: &[u8] = b"next_account_id";

    /// The last mailbox id given to an account (ids are never given twice).
    pub fn last_mailbox_id(account: u32) -> Vec<u8> {
        [&b"mailbox_id:"[..], &account.to_be_bytes()].concat()
    }
}

#[cfg(test)]
impl MailEntry {
    /// An entry for tests: one byte, modification sequence 1, `flags`, no keywords.
    pub(crate) fn for_test(flags: u32) -> MailEntry {
        MailEntry {
            blob: [0; 32],
            size: 1,
            internal_date: 0,
            flags,
            keywords: Vec::new(),
            modseq: 1,
            spam_score: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_encode_and_decode() {
        let route = Route::ScanRelay {
            target: "relé.example:25".into(),
        };
        let bytes = encode(&route);
        assert!(!bytes.is_empty());
        assert_eq!(decode::<Route>(Cf::Routes, &bytes).ok(), Some(route));
    }
}
