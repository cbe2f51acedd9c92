//! Where mail goes: the routing table ([`routing`]), what becomes of an accepted message
//! ([`inbound`]: checks, scan, placement, commit), the [`quarantine`] (hold, notices,
//! release links), local delivery ([`local`]), spam reports ([`report`]), and
//! outbound delivery ([`outbound`]: the queue runner, with [`dsn`] bounces and
//! opportunistic [`tls`]).

pub mod dsn;
pub mod inbound;
pub mod local;
pub mod outbound;
pub mod quarantine;
pub mod report;
pub mod routing;
pub mod screening;
pub mod tls;
