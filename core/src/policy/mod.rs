//! Policy: who may relay, and the limits that keep one client or account from taking more
//! than its share (connections per IP, messages per hour, failed logins, storage quotas),
//! and what DNS says of a client: blocklists and SPF; and which attachments make a message
//! held (`attachments`).

pub mod attachments;
pub mod dns_checks;
pub mod limits;
pub mod networks;
pub mod quota;
mod sharded;

pub use attachments::AttachmentPolicy;
pub use dns_checks::DnsChecks;
pub use limits::{ConnectionLimiter, ConnectionPermit, FailureTracker, RateKey, RateLimiter};
pub use networks::Networks;
pub use quota::QuotaBook;
