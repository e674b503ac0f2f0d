//! Address allocation and static address checks.

use std::collections::BTreeSet;
use std::net::IpAddr;

use crate::addr::{bounds, from_u128, same_family, to_u128};
use crate::error::{Error, Reserved};
use crate::parse::reserved_kind;
use crate::SubnetSpec;

/// The lowest candidate address of `spec` not in `used`, if any.
///
/// Walks `used` from the start of the candidate span and stops at the first
/// gap, so the cost is proportional to the number of used addresses below
/// the result (no per-candidate lookups, no walk over empty space; an IPv6
/// /64 costs nothing more than an IPv4 /24).
pub(crate) fn first_free(spec: &SubnetSpec, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let v4 = spec.subnet.addr().is_ipv4();
    let (lo, hi, reserved) = span(spec)?;
    let mut taken = used
        .range(from_u128(v4, lo)..=from_u128(v4, hi))
        .map(|a| to_u128(*a))
        .peekable();
    let mut cur = lo;
    loop {
        // `taken` is sorted and only holds addresses >= lo, all below `cur`
        // were consumed: its head is either `cur` or above it.
        while taken.next_if(|&a| a < cur).is_some() {}
        let busy = taken.next_if_eq(&cur).is_some() || reserved.contains(&cur);
        if !busy {
            return Some(from_u128(v4, cur));
        }
        if cur >= hi {
            return None;
        }
        cur += 1;
    }
}

/// Picks the lowest free address for a new endpoint.
///
/// Candidates are the addresses inside `spec.range` if set, else the whole
/// subnet; never the network address, the IPv4 broadcast, the gateway, or
/// anything in `used`. Fails with [`Error::Exhausted`] naming the subnet
/// (and range) when none is left.
pub fn allocate(spec: &SubnetSpec, used: &BTreeSet<IpAddr>) -> Result<IpAddr, Error> {
    first_free(spec, used).ok_or(Error::Exhausted {
        subnet: spec.subnet,
        range: spec.range,
    })
}

/// Picks the next free address at or after `from` (wrapping around to the start of the
/// candidate span), as Docker's allocator does: an address a container just gave up is not
/// handed out again at once, so no neighbour cache still points it at the old container.
///
/// `taken(addr)` says whether an address is in use (a point lookup in the store, so that
/// the cost does not grow with the number of addresses used). Candidates are those of
/// [`allocate`]; `from` outside the span starts at its beginning. Fails with
/// [`Error::Exhausted`] once every candidate was tried.
pub fn allocate_next<E>(
    spec: &SubnetSpec,
    from: Option<IpAddr>,
    mut taken: impl FnMut(IpAddr) -> Result<bool, E>,
) -> Result<Result<IpAddr, Error>, E> {
    let exhausted = Error::Exhausted {
        subnet: spec.subnet,
        range: spec.range,
    };
    let Some((lo, hi, reserved)) = span(spec) else {
        return Ok(Err(exhausted));
    };
    let v4 = spec.subnet.addr().is_ipv4();
    let start = from
        .filter(|a| a.is_ipv4() == v4)
        .map(to_u128)
        .filter(|a| (lo..=hi).contains(a))
        .unwrap_or(lo);
    let mut cur = start;
    loop {
        if !reserved.contains(&cur) {
            let addr = from_u128(v4, cur);
            if !taken(addr)? {
                return Ok(Ok(addr));
            }
        }
        cur = if cur >= hi { lo } else { cur + 1 };
        if cur == start {
            return Ok(Err(exhausted));
        }
    }
}

/// The address after `addr` in `spec`'s candidate span, wrapping to its start: where the
/// next [`allocate_next`] begins.
pub fn after(spec: &SubnetSpec, addr: IpAddr) -> Option<IpAddr> {
    let (lo, hi, _) = span(spec)?;
    let a = to_u128(addr);
    Some(from_u128(
        addr.is_ipv4(),
        if a >= hi || a < lo { lo } else { a + 1 },
    ))
}

/// The candidate span `lo..=hi` of `spec` and its reserved addresses inside.
fn span(spec: &SubnetSpec) -> Option<(u128, u128, Vec<u128>)> {
    let subnet = &spec.subnet;
    let v4 = subnet.addr().is_ipv4();
    let (net_lo, net_hi) = bounds(subnet);
    let (lo, hi) = match &spec.range {
        None => (net_lo, net_hi),
        Some(r) if same_family(r, subnet) => {
            let (rlo, rhi) = bounds(r);
            (rlo.max(net_lo), rhi.min(net_hi))
        }
        Some(_) => return None,
    };
    if lo > hi {
        return None;
    }
    let mut reserved = vec![net_lo];
    if v4 {
        reserved.push(net_hi);
    }
    if spec.gateway.is_ipv4() == v4 {
        reserved.push(to_u128(spec.gateway));
    }
    Some((lo, hi, reserved))
}

/// Validates a static address (`--ip`) for `spec`.
///
/// It must be inside the subnet (it may be outside the range, like Docker),
/// of the subnet's family, not the network, broadcast or gateway address,
/// and not in `used` ([`Error::InUse`]).
pub fn check_static(spec: &SubnetSpec, addr: IpAddr, used: &BTreeSet<IpAddr>) -> Result<(), Error> {
    let subnet = spec.subnet;
    if addr.is_ipv4() != subnet.addr().is_ipv4() {
        return Err(Error::FamilyMismatch {
            what: "address",
            value: addr.to_string(),
            subnet,
        });
    }
    if !subnet.contains(&addr) {
        return Err(Error::AddressOutsideSubnet { addr, subnet });
    }
    let kind = reserved_kind(&subnet, addr).or((addr == spec.gateway).then_some(Reserved::Gateway));
    if let Some(kind) = kind {
        return Err(Error::AddressReserved { addr, subnet, kind });
    }
    if used.contains(&addr) {
        return Err(Error::InUse { addr, subnet });
    }
    Ok(())
}

/// Which of a network's subnets holds `addr` (its index in `specs`), for
/// `--ip` on a network with several subnets.
pub fn subnet_for(specs: &[SubnetSpec], addr: IpAddr) -> Option<usize> {
    specs.iter().position(|s| s.subnet.contains(&addr))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{subnet_spec, IpNet};

    fn next(spec: &SubnetSpec, from: Option<&str>, used: &[&str]) -> Result<IpAddr, Error> {
        let used: BTreeSet<IpAddr> = used.iter().map(|a| a.parse().unwrap()).collect();
        let from = from.map(|a| a.parse().unwrap());
        allocate_next::<()>(spec, from, |a| Ok(used.contains(&a))).unwrap()
    }

    #[test]
    fn allocate_next_goes_on_from_the_cursor_and_wraps() {
        let spec = subnet_spec(net("10.0.0.0/29"), None, None).unwrap();
        // .1 is the gateway, .7 the broadcast.
        assert_eq!(next(&spec, None, &[]).unwrap().to_string(), "10.0.0.2");
        assert_eq!(
            next(&spec, Some("10.0.0.5"), &[]).unwrap().to_string(),
            "10.0.0.5"
        );
        assert_eq!(
            next(&spec, Some("10.0.0.5"), &["10.0.0.5", "10.0.0.6"])
                .unwrap()
                .to_string(),
            "10.0.0.2",
            "wraps past the broadcast and the network address and the gateway"
        );
        assert_eq!(
            next(&spec, Some("10.0.0.7"), &[]).unwrap().to_string(),
            "10.0.0.2"
        );
        let all = ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"];
        assert!(matches!(
            next(&spec, Some("10.0.0.4"), &all),
            Err(Error::Exhausted { .. })
        ));
        assert_eq!(
            after(&spec, "10.0.0.7".parse().unwrap())
                .unwrap()
                .to_string(),
            "10.0.0.0"
        );
        assert_eq!(
            after(&spec, "10.0.0.3".parse().unwrap())
                .unwrap()
                .to_string(),
            "10.0.0.4"
        );
    }

    #[test]
    fn allocate_next_stays_inside_the_range() {
        let spec = subnet_spec(net("10.0.0.0/24"), None, Some(net("10.0.0.128/30"))).unwrap();
        assert_eq!(next(&spec, None, &[]).unwrap().to_string(), "10.0.0.128");
        assert_eq!(
            next(&spec, Some("10.0.0.3"), &["10.0.0.128"])
                .unwrap()
                .to_string(),
            "10.0.0.129",
            "a cursor outside the range starts at the range"
        );
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }
    fn set(addrs: &[&str]) -> BTreeSet<IpAddr> {
        addrs.iter().map(|a| ip(a)).collect()
    }

    #[test]
    fn default_bridge_sequence() {
        let spec = subnet_spec(net("172.17.0.0/16"), None, None).unwrap();
        let mut used = BTreeSet::new();
        let a = allocate(&spec, &used).unwrap();
        assert_eq!(a, ip("172.17.0.2"));
        used.insert(a);
        let b = allocate(&spec, &used).unwrap();
        assert_eq!(b, ip("172.17.0.3"));
        used.insert(b);
        used.remove(&a);
        assert_eq!(allocate(&spec, &used), Ok(a));
    }

    #[test]
    fn range_allocation() {
        let s = net("172.17.0.0/16");
        let spec = subnet_spec(s, None, Some(net("172.17.5.0/24"))).unwrap();
        assert_eq!(allocate(&spec, &BTreeSet::new()), Ok(ip("172.17.5.0")));
        // the range's first address is fine unless it is reserved
        let spec = subnet_spec(s, Some(ip("172.17.5.0")), Some(net("172.17.5.0/24"))).unwrap();
        assert_eq!(allocate(&spec, &BTreeSet::new()), Ok(ip("172.17.5.1")));
        let spec = subnet_spec(s, Some(ip("172.17.5.1")), Some(net("172.17.5.0/24"))).unwrap();
        assert_eq!(allocate(&spec, &set(&["172.17.5.0"])), Ok(ip("172.17.5.2")));
        // a range at the start of the subnet skips network and gateway
        let spec = subnet_spec(s, None, Some(net("172.17.0.0/24"))).unwrap();
        assert_eq!(allocate(&spec, &BTreeSet::new()), Ok(ip("172.17.0.2")));
        // and one at the end never hands out the broadcast
        let spec = subnet_spec(s, None, Some(net("172.17.255.254/31"))).unwrap();
        assert_eq!(allocate(&spec, &BTreeSet::new()), Ok(ip("172.17.255.254")));
        let e = allocate(&spec, &set(&["172.17.255.254"])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no free address left in ip range 172.17.255.254/31 of subnet 172.17.0.0/16"
        );
    }

    #[test]
    fn exhaustion() {
        let spec = subnet_spec(net("10.9.0.0/30"), None, None).unwrap();
        let a = allocate(&spec, &BTreeSet::new()).unwrap();
        assert_eq!(a, ip("10.9.0.2"));
        let e = allocate(&spec, &set(&["10.9.0.2"])).unwrap_err();
        assert_eq!(
            e,
            Error::Exhausted {
                subnet: net("10.9.0.0/30"),
                range: None
            }
        );
        assert_eq!(e.to_string(), "no free address left in subnet 10.9.0.0/30");
    }

    #[test]
    fn gateway_in_the_middle_and_used_outside_range() {
        let spec = subnet_spec(net("10.0.0.0/24"), Some(ip("10.0.0.3")), None).unwrap();
        let used = set(&["10.0.0.1", "10.0.0.2", "10.0.0.4", "10.1.0.5", "fd00::5"]);
        assert_eq!(allocate(&spec, &used), Ok(ip("10.0.0.5")));
    }

    #[test]
    fn large_used_set_is_fast() {
        let spec = subnet_spec(net("10.0.0.0/16"), None, None).unwrap();
        let mut used: BTreeSet<IpAddr> = (2u32..65_000)
            .map(|i| IpAddr::V4((0x0a00_0000 + i).into()))
            .collect();
        for _ in 0..200 {
            let a = allocate(&spec, &used).unwrap();
            assert!(used.insert(a));
        }
        // 2..65000 were taken, the 200 new ones follow: 65199 = 10.0.254.175
        assert_eq!(used.last(), Some(&ip("10.0.254.175")));
    }

    #[test]
    fn ipv6_allocation() {
        let spec = subnet_spec(net("fd00:1::/64"), None, None).unwrap();
        assert_eq!(spec.gateway, ip("fd00:1::1"));
        let used = set(&["fd00:1::2", "fd00:1::3"]);
        assert_eq!(allocate(&spec, &used), Ok(ip("fd00:1::4")));
        // IPv4 addresses in `used` don't interfere
        let used = set(&["0.0.0.2", "255.255.255.255"]);
        assert_eq!(allocate(&spec, &used), Ok(ip("fd00:1::2")));
        // at the very top of the address space nothing overflows, and the
        // last address (no broadcast in IPv6) is assignable
        let top = net("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120");
        let spec = subnet_spec(top, None, None).unwrap();
        let mut used = BTreeSet::new();
        while let Ok(a) = allocate(&spec, &used) {
            used.insert(a);
        }
        assert_eq!(used.len(), 254);
        assert_eq!(
            used.last(),
            Some(&ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"))
        );
        assert!(matches!(
            allocate(&spec, &used),
            Err(Error::Exhausted { .. })
        ));
    }

    #[test]
    fn static_checks() {
        let spec = subnet_spec(net("10.1.0.0/24"), None, Some(net("10.1.0.128/25"))).unwrap();
        let used = set(&["10.1.0.7"]);
        assert_eq!(check_static(&spec, ip("10.1.0.5"), &used), Ok(()));
        assert_eq!(check_static(&spec, ip("10.1.0.200"), &used), Ok(()));
        let e = check_static(&spec, ip("10.1.0.7"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.1.0.7 is already in use in subnet 10.1.0.0/24"
        );
        assert_eq!(
            e,
            Error::InUse {
                addr: ip("10.1.0.7"),
                subnet: net("10.1.0.0/24")
            }
        );
        let e = check_static(&spec, ip("10.2.0.5"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.2.0.5 is not inside subnet 10.1.0.0/24"
        );
        let e = check_static(&spec, ip("10.1.0.0"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.1.0.0 is the network address of subnet 10.1.0.0/24"
        );
        let e = check_static(&spec, ip("10.1.0.255"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.1.0.255 is the broadcast address of subnet 10.1.0.0/24"
        );
        let e = check_static(&spec, ip("10.1.0.1"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address 10.1.0.1 is the gateway address of subnet 10.1.0.0/24"
        );
        let e = check_static(&spec, ip("fd00::1"), &used).unwrap_err();
        assert_eq!(
            e.to_string(),
            "address fd00::1 is not the same address family as subnet 10.1.0.0/24"
        );
        let v6 = subnet_spec(net("fd00::/64"), None, None).unwrap();
        assert_eq!(
            check_static(&v6, ip("fd00::ffff:ffff:ffff:ffff"), &used),
            Ok(())
        );
        assert!(matches!(
            check_static(&v6, ip("fd00::"), &used),
            Err(Error::AddressReserved {
                kind: Reserved::NetworkAddress,
                ..
            })
        ));
    }

    #[test]
    fn which_subnet() {
        let specs = [
            subnet_spec(net("10.1.0.0/24"), None, None).unwrap(),
            subnet_spec(net("fd00::/64"), None, None).unwrap(),
            subnet_spec(net("10.2.0.0/16"), None, None).unwrap(),
        ];
        assert_eq!(subnet_for(&specs, ip("10.1.0.9")), Some(0));
        assert_eq!(subnet_for(&specs, ip("fd00::9")), Some(1));
        assert_eq!(subnet_for(&specs, ip("10.2.200.9")), Some(2));
        assert_eq!(subnet_for(&specs, ip("10.3.0.1")), None);
        assert_eq!(subnet_for(&[], ip("10.3.0.1")), None);
    }
}
