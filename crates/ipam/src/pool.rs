//! Subnet pools, the choice of a free subnet, and overlap checks.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use crate::addr::{bounds, from_u128, overlaps};
use crate::error::Error;

/// A pool of candidate subnets: `base` split into subnets of `prefix_len`,
/// in address order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool {
    /// The block the subnets are carved from.
    pub base: IpNet,
    /// The prefix length of each subnet; must be at least `base`'s prefix
    /// length and at most the family's maximum, or the pool is empty.
    pub prefix_len: u8,
}

impl Pool {
    /// The pool's subnets in address order, generated lazily.
    pub fn subnets(&self) -> impl Iterator<Item = IpNet> {
        self.base
            .trunc()
            .subnets(self.prefix_len)
            .ok()
            .into_iter()
            .flatten()
    }
}

/// The subnet reserved for the default bridge network, 172.17.0.0/16.
pub fn default_bridge_subnet() -> IpNet {
    IpNet::new(IpAddr::V4(Ipv4Addr::new(172, 17, 0, 0)), 16).expect("valid prefix")
}

/// Default IPv4 pools for user networks, like Docker's: 172.18.0.0/16 up to
/// 172.31.0.0/16 (one pool of one /16 each), then 192.168.0.0/16 split into
/// /20s. 172.17.0.0/16 is left out: it is [`default_bridge_subnet`].
pub fn default_pools_v4() -> Vec<Pool> {
    let mut pools: Vec<Pool> = (18..=31)
        .map(|b| Pool {
            base: IpNet::new(IpAddr::V4(Ipv4Addr::new(172, b, 0, 0)), 16).expect("valid prefix"),
            prefix_len: 16,
        })
        .collect();
    pools.push(Pool {
        base: IpNet::new(IpAddr::V4(Ipv4Addr::new(192, 168, 0, 0)), 16).expect("valid prefix"),
        prefix_len: 20,
    });
    pools
}

/// The unique local /48 the default IPv6 pool is carved from:
/// `fd62:6572:7468::/48`. Its 40-bit global ID is the ASCII of "berth"
/// (0x62 0x65 0x72 0x74 0x68); RFC 4193 asks for a random one, but a fixed
/// ID keeps subnet choice deterministic across hosts.
pub const DEFAULT_V6_ULA: Ipv6Addr = Ipv6Addr::new(0xfd62, 0x6572, 0x7468, 0, 0, 0, 0, 0);

/// Default IPv6 pools: [`DEFAULT_V6_ULA`]/48 split into its 65536 /64s
/// (`fd62:6572:7468::/64`, `fd62:6572:7468:1::/64`, ...), generated lazily.
pub fn default_pools_v6() -> Vec<Pool> {
    vec![Pool {
        base: IpNet::new(IpAddr::V6(DEFAULT_V6_ULA), 48).expect("valid prefix"),
        prefix_len: 64,
    }]
}

/// The first subnet from `pools` (in order) that overlaps none of `taken`
/// (host routes, host addresses' networks, other berth networks' subnets).
///
/// Taken networks of the other family are ignored. The caller should leave
/// default routes (`0.0.0.0/0`, `::/0`) out of `taken`: they overlap every
/// subnet. Runs in time proportional to the number of taken networks hit,
/// not to the size of the pools: a taken block skips all subnets inside it.
pub fn choose_subnet(pools: &[Pool], taken: &[IpNet]) -> Option<IpNet> {
    pools.iter().find_map(|p| choose_in_pool(p, taken))
}

fn choose_in_pool(pool: &Pool, taken: &[IpNet]) -> Option<IpNet> {
    let v4 = pool.base.addr().is_ipv4();
    if pool.prefix_len < pool.base.prefix_len() || pool.prefix_len > pool.base.max_prefix_len() {
        return None;
    }
    let (_, base_hi) = bounds(&pool.base);
    let mut cur = bounds(&pool.base).0;
    loop {
        let cand = IpNet::new(from_u128(v4, cur), pool.prefix_len).expect("valid prefix");
        let (_, cand_hi) = bounds(&cand);
        // CIDRs nest or are disjoint, so skipping past the end of the largest
        // overlapping block keeps `cur` aligned to the pool's prefix.
        let skip_to = taken
            .iter()
            .filter(|t| overlaps(t, &cand))
            .map(|t| bounds(t).1)
            .max();
        match skip_to {
            None => return Some(cand),
            Some(t_hi) => {
                let end = t_hi.max(cand_hi);
                if end >= base_hi {
                    return None;
                }
                cur = end + 1;
            }
        }
    }
}

/// Checks that `subnet` overlaps none of `taken`, whose entries pair another
/// network's subnet with that network's name, used in the message
/// (`subnet 10.1.0.0/24 overlaps network web's subnet 10.1.0.0/16`).
pub fn check_overlap(subnet: IpNet, taken: &[(IpNet, String)]) -> Result<(), Error> {
    match taken.iter().find(|(t, _)| overlaps(t, &subnet)) {
        None => Ok(()),
        Some((other, owner)) => Err(Error::Overlap {
            subnet,
            owner: owner.clone(),
            other: *other,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn default_v4_pool_order() {
        let pools = default_pools_v4();
        let all: Vec<IpNet> = pools.iter().flat_map(Pool::subnets).collect();
        assert_eq!(all.len(), 14 + 16);
        assert_eq!(all[0], net("172.18.0.0/16"));
        assert_eq!(all[13], net("172.31.0.0/16"));
        assert_eq!(all[14], net("192.168.0.0/20"));
        assert_eq!(all[15], net("192.168.16.0/20"));
        assert_eq!(all[29], net("192.168.240.0/20"));
        assert!(!all.iter().any(|n| overlaps(n, &default_bridge_subnet())));
        assert_eq!(default_bridge_subnet(), net("172.17.0.0/16"));
    }

    #[test]
    fn default_v6_pool() {
        let pools = default_pools_v6();
        let mut it = pools[0].subnets();
        assert_eq!(it.next(), Some(net("fd62:6572:7468::/64")));
        assert_eq!(it.next(), Some(net("fd62:6572:7468:1::/64")));
        assert_eq!(pools[0].subnets().count(), 65536);
        assert_eq!(
            pools[0].subnets().last(),
            Some(net("fd62:6572:7468:ffff::/64"))
        );
        assert_eq!(choose_subnet(&pools, &[]), Some(net("fd62:6572:7468::/64")));
    }

    #[test]
    fn choose_first_free() {
        let pools = default_pools_v4();
        assert_eq!(choose_subnet(&pools, &[]), Some(net("172.18.0.0/16")));
        // a host route inside 172.18/16 makes it unusable
        let taken = [net("172.18.5.0/24")];
        assert_eq!(choose_subnet(&pools, &taken), Some(net("172.19.0.0/16")));
        // the default bridge and IPv6 networks don't matter
        let taken = [net("172.17.0.0/16"), net("fd00::/8")];
        assert_eq!(choose_subnet(&pools, &taken), Some(net("172.18.0.0/16")));
    }

    #[test]
    fn choose_after_172_comes_192_168() {
        let pools = default_pools_v4();
        let mut taken: Vec<IpNet> = (18..=31).map(|b| net(&format!("172.{b}.0.0/16"))).collect();
        assert_eq!(choose_subnet(&pools, &taken), Some(net("192.168.0.0/20")));
        taken.push(net("192.168.0.0/20"));
        assert_eq!(choose_subnet(&pools, &taken), Some(net("192.168.16.0/20")));
        // a host's 192.168.1.0/24 LAN also blocks the first /20
        let lan = [net("172.16.0.0/12"), net("192.168.1.0/24")];
        assert_eq!(choose_subnet(&pools, &lan), Some(net("192.168.16.0/20")));
        // a big block skips many candidates at once
        let big = [net("172.16.0.0/12"), net("192.168.0.0/17")];
        assert_eq!(choose_subnet(&pools, &big), Some(net("192.168.128.0/20")));
        let all = [net("172.16.0.0/12"), net("192.168.0.0/16")];
        assert_eq!(choose_subnet(&pools, &all), None);
        assert_eq!(choose_subnet(&pools, &[net("0.0.0.0/0")]), None);
    }

    #[test]
    fn choose_v6_skips_quickly() {
        let pools = default_pools_v6();
        let taken = [net("fd62:6572:7468::/49"), net("fd62:6572:7468:8000::/80")];
        assert_eq!(
            choose_subnet(&pools, &taken),
            Some(net("fd62:6572:7468:8001::/64"))
        );
        assert_eq!(choose_subnet(&pools, &[net("fd00::/8")]), None);
    }

    #[test]
    fn invalid_pools_are_empty() {
        let bad = Pool {
            base: net("10.0.0.0/16"),
            prefix_len: 8,
        };
        assert_eq!(bad.subnets().count(), 0);
        assert_eq!(choose_subnet(&[bad], &[]), None);
        let bad = Pool {
            base: net("10.0.0.0/16"),
            prefix_len: 33,
        };
        assert_eq!(choose_subnet(&[bad], &[]), None);
        let whole = Pool {
            base: net("::/0"),
            prefix_len: 0,
        };
        assert_eq!(choose_subnet(&[whole], &[]), Some(net("::/0")));
        assert_eq!(choose_subnet(&[whole], &[net("::1/128")]), None);
    }

    #[test]
    fn overlap_check() {
        let taken = vec![
            (net("10.1.0.0/16"), "web".to_owned()),
            (net("10.3.0.0/24"), "db".to_owned()),
        ];
        let e = check_overlap(net("10.1.0.0/24"), &taken).unwrap_err();
        assert_eq!(
            e.to_string(),
            "subnet 10.1.0.0/24 overlaps network web's subnet 10.1.0.0/16"
        );
        let e = check_overlap(net("10.0.0.0/8"), &taken).unwrap_err();
        assert_eq!(
            e,
            Error::Overlap {
                subnet: net("10.0.0.0/8"),
                owner: "web".into(),
                other: net("10.1.0.0/16")
            }
        );
        assert_eq!(check_overlap(net("10.2.0.0/16"), &taken), Ok(()));
        assert_eq!(check_overlap(net("10.3.1.0/24"), &taken), Ok(()));
        assert_eq!(check_overlap(net("fd00::/64"), &taken), Ok(()));
        assert_eq!(check_overlap(net("10.2.0.0/16"), &[]), Ok(()));
    }
}
