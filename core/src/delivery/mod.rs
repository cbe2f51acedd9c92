//! Where mail goes: the routing table ([`routing`]) and local delivery ([`local`]).

pub mod local;
pub mod routing;
