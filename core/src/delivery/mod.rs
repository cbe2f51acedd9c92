//! Where mail goes: the routing table ([`routing`]), local delivery ([`local`]), and
//! outbound delivery ([`outbound`]: the queue runner, with [`dsn`] bounces and
//! opportunistic [`tls`]).

pub mod dsn;
pub mod local;
pub mod outbound;
pub mod routing;
pub mod tls;
