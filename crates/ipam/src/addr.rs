//! Address arithmetic on `u128` for both families.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

pub(crate) fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Converts back; `v4` selects the family. For IPv4 `n` must fit in `u32`.
pub(crate) fn from_u128(v4: bool, n: u128) -> IpAddr {
    if v4 {
        let n = u32::try_from(n).expect("IPv4 address fits in u32");
        IpAddr::V4(Ipv4Addr::from(n))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

/// First and last address of `net` (host bits ignored).
pub(crate) fn bounds(net: &IpNet) -> (u128, u128) {
    (to_u128(net.network()), to_u128(net.broadcast()))
}

pub(crate) fn same_family(a: &IpNet, b: &IpNet) -> bool {
    a.addr().is_ipv4() == b.addr().is_ipv4()
}

/// Whether two CIDRs share at least one address (CIDRs nest or are disjoint).
pub(crate) fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    if !same_family(a, b) {
        return false;
    }
    let (alo, ahi) = bounds(a);
    let (blo, bhi) = bounds(b);
    alo <= bhi && blo <= ahi
}

/// The largest prefix length a network subnet may have: room for the
/// network address, a gateway and one container (and the IPv4 broadcast).
pub(crate) fn max_subnet_prefix(v4: bool) -> u8 {
    if v4 {
        30
    } else {
        126
    }
}
