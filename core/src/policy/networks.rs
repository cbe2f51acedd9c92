//! CIDR lists, such as `[relay] trusted_networks`.

use std::net::IpAddr;

use ipnet::IpNet;

/// A list of networks; an address is in it when any network contains it.
#[derive(Debug, Clone, Default)]
pub struct Networks {
    nets: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error)]
#[error("not a network (CIDR): {0:?}")]
pub struct BadNetwork(pub String);

impl Networks {
    /// Parses "127.0.0.1/32", "::1/128", or a bare address (a single host).
    pub fn parse<S: AsRef<str>>(list: &[S]) -> Result<Networks, BadNetwork> {
        let nets = list
            .iter()
            .map(|s| {
                let s = s.as_ref().trim();
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| BadNetwork(s.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Networks { nets })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            // An IPv4 client on a dual-stack socket appears as ::ffff:a.b.c.d.
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.nets.iter().any(|n| n.contains(&ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_trusts_exactly_loopback_hosts() {
        let n = Networks::parse(&["127.0.0.1/32", "::1/128"]).unwrap();
        assert!(n.contains("127.0.0.1".parse().unwrap()));
        assert!(n.contains("::1".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.1".parse().unwrap()));
        assert!(!n.contains("127.0.0.2".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        let wide = Networks::parse(&["192.0.2.0/24", "198.51.100.7"]).unwrap();
        assert!(wide.contains("192.0.2.200".parse().unwrap()));
        assert!(wide.contains("198.51.100.7".parse().unwrap()));
        assert!(!wide.contains("198.51.100.8".parse().unwrap()));
        assert!(Networks::parse(&["not a net"]).is_err());
    }
}
