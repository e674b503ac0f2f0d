//! Property tests: allocation against a brute-force model, for IPv4 and IPv6.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use berth_ipam::{
    allocate, check_static, choose_subnet, default_pools_v4, subnet_for, subnet_spec, Error, IpNet,
    Pool, SubnetSpec,
};
use proptest::prelude::*;
use proptest::sample::Index;

fn to_u128(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

fn from_u128(v4: bool, n: u128) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::from(u32::try_from(n).unwrap()))
    } else {
        IpAddr::V6(Ipv6Addr::from(n))
    }
}

fn bounds(n: &IpNet) -> (u128, u128) {
    (to_u128(n.network()), to_u128(n.broadcast()))
}

fn v4(spec: &SubnetSpec) -> bool {
    spec.subnet.addr().is_ipv4()
}

/// Span dynamic allocation draws from: the range, else the subnet.
fn span(spec: &SubnetSpec) -> (u128, u128) {
    bounds(spec.range.as_ref().unwrap_or(&spec.subnet))
}

/// Network, IPv4 broadcast or gateway.
fn is_reserved(spec: &SubnetSpec, a: u128) -> bool {
    let (lo, hi) = bounds(&spec.subnet);
    a == lo || (v4(spec) && a == hi) || a == to_u128(spec.gateway)
}

/// Brute-force model of `allocate`: walk the span upwards. The walk is short
/// because it stops at the first free candidate and `used` is small.
fn model_first(spec: &SubnetSpec, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let (lo, hi) = span(spec);
    let mut a = lo;
    loop {
        let addr = from_u128(v4(spec), a);
        if !is_reserved(spec, a) && !used.contains(&addr) {
            return Some(addr);
        }
        if a == hi {
            return None;
        }
        a += 1;
    }
}

/// A valid spec: IPv4 /16../30 or IPv6 /64 or /104../126, with an optional
/// gateway and an optional range somewhere inside.
fn spec_strategy() -> impl Strategy<Value = SubnetSpec> {
    let prefix = prop_oneof![
        3 => (16u8..=30).prop_map(|p| (true, p)),
        1 => (22u8..=30).prop_map(|p| (true, p)),
        1 => Just((false, 64u8)),
        1 => (104u8..=126).prop_map(|p| (false, p)),
    ];
    (
        prefix,
        any::<u128>(),
        proptest::option::of(any::<u128>()),
        proptest::option::of((any::<u128>(), any::<u8>())),
    )
        .prop_filter_map("valid spec", |((is_v4, p), bits, gw, range)| {
            let max: u8 = if is_v4 { 32 } else { 128 };
            let bits = if is_v4 { bits & 0xffff_ffff } else { bits };
            let subnet = IpNet::new(from_u128(is_v4, bits), p).unwrap().trunc();
            let (lo, _) = bounds(&subnet);
            let size_mask = (1u128 << (max - p)) - 1;
            let gateway = gw.map(|g| from_u128(is_v4, lo + (g & size_mask)));
            let range = range.map(|(off, extra)| {
                let rp = p + extra % (max - p + 1);
                IpNet::new(from_u128(is_v4, lo + (off & size_mask)), rp)
                    .unwrap()
                    .trunc()
            });
            subnet_spec(subnet, gateway, range).ok()
        })
}

/// Addresses mostly inside the default pools, so that they get in the way.
fn taken_addr() -> impl Strategy<Value = u32> {
    prop_oneof![
        any::<u32>().prop_map(|a| 0xac10_0000 | (a & 0x000f_ffff)),
        any::<u32>().prop_map(|a| 0xc0a8_0000 | (a & 0x0000_ffff)),
        any::<u32>(),
    ]
}

#[derive(Clone, Debug)]
enum Op {
    Alloc(u16),
    Release(Index),
    Static(u128),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u16..=40).prop_map(Op::Alloc),
        3 => any::<Index>().prop_map(Op::Release),
        1 => any::<u128>().prop_map(Op::Static),
    ]
}

/// Allocates once, checking the result against the model and the invariants.
fn alloc_checked(spec: &SubnetSpec, used: &mut BTreeSet<IpAddr>) -> Result<bool, TestCaseError> {
    let expected = model_first(spec, used);
    match allocate(spec, used) {
        Ok(a) => {
            prop_assert_eq!(Some(a), expected);
            let n = to_u128(a);
            let (lo, hi) = span(spec);
            prop_assert!(lo <= n && n <= hi, "{a} outside the span");
            prop_assert!(spec.subnet.contains(&a));
            prop_assert!(!is_reserved(spec, n), "{a} is reserved");
            prop_assert_eq!(check_static(spec, a, used), Ok(()));
            // every lower candidate of the span is refused by check_static
            for x in lo..n {
                let refused = check_static(spec, from_u128(v4(spec), x), used);
                prop_assert!(refused.is_err(), "{} was free below {a}", x);
            }
            prop_assert!(used.insert(a), "{a} handed out twice");
            Ok(true)
        }
        Err(e) => {
            prop_assert_eq!(
                e,
                Error::Exhausted {
                    subnet: spec.subnet,
                    range: spec.range
                }
            );
            prop_assert_eq!(expected, None);
            Ok(false)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn allocate_release_sequences(
        spec in spec_strategy(),
        ops in proptest::collection::vec(op_strategy(), 1..30),
    ) {
        let mut used = BTreeSet::new();
        let (net_lo, net_hi) = bounds(&spec.subnet);
        for op in ops {
            match op {
                Op::Alloc(n) => {
                    for _ in 0..n {
                        if !alloc_checked(&spec, &mut used)? {
                            break;
                        }
                    }
                }
                Op::Release(idx) => {
                    if used.is_empty() {
                        continue;
                    }
                    let a = **idx.get(&used.iter().collect::<Vec<_>>());
                    let was_full = model_first(&spec, &used).is_none();
                    used.remove(&a);
                    let (lo, hi) = span(&spec);
                    let in_span = (lo..=hi).contains(&to_u128(a));
                    if was_full && in_span {
                        prop_assert_eq!(allocate(&spec, &used), Ok(a));
                    }
                    if in_span {
                        // the released address is a candidate again
                        prop_assert!(model_first(&spec, &used).is_some_and(|f| f <= a));
                    }
                }
                Op::Static(off) => {
                    let n = net_lo + off % (net_hi - net_lo + 1);
                    let a = from_u128(v4(&spec), n);
                    let r = check_static(&spec, a, &used);
                    if is_reserved(&spec, n) {
                        let is_reserved_err = matches!(r, Err(Error::AddressReserved { .. }));
                        prop_assert!(is_reserved_err, "{a}: {r:?}");
                    } else if used.contains(&a) {
                        prop_assert_eq!(r, Err(Error::InUse { addr: a, subnet: spec.subnet }));
                    } else {
                        prop_assert_eq!(r, Ok(()));
                        used.insert(a);
                    }
                }
            }
        }
    }

    #[test]
    fn fill_small_subnets_then_release(
        (is_v4, p) in prop_oneof![(24u8..=30).prop_map(|p| (true, p)), (120u8..=126).prop_map(|p| (false, p))],
        bits in any::<u128>(),
        range in proptest::option::of((any::<u128>(), 0u8..=8)),
        release in proptest::collection::vec(any::<Index>(), 0..20),
    ) {
        let max: u8 = if is_v4 { 32 } else { 128 };
        let bits = if is_v4 { bits & 0xffff_ffff } else { bits };
        let subnet = IpNet::new(from_u128(is_v4, bits), p).unwrap().trunc();
        let (lo, _) = bounds(&subnet);
        let range = range.map(|(off, extra)| {
            let rp = (p + extra).min(max);
            let off = off & ((1u128 << (max - p)) - 1);
            IpNet::new(from_u128(is_v4, lo + off), rp).unwrap().trunc()
        });
        let Ok(spec) = subnet_spec(subnet, None, range) else {
            return Ok(());
        };
        let mut used = BTreeSet::new();
        while alloc_checked(&spec, &mut used)? {}
        // exhausted exactly when every candidate is used
        let (slo, shi) = span(&spec);
        let candidates: Vec<IpAddr> = (slo..=shi)
            .filter(|&a| !is_reserved(&spec, a))
            .map(|a| from_u128(is_v4, a))
            .collect();
        prop_assert_eq!(used.iter().copied().collect::<Vec<_>>(), candidates.clone());
        // released addresses come back lowest first, then it is full again
        let freed: BTreeSet<IpAddr> = release.iter().map(|i| *i.get(&candidates)).collect();
        for a in &freed {
            used.remove(a);
        }
        for a in &freed {
            prop_assert_eq!(allocate(&spec, &used), Ok(*a));
            used.insert(*a);
        }
        let full = allocate(&spec, &used);
        prop_assert_eq!(full, Err(Error::Exhausted { subnet: spec.subnet, range: spec.range }));
    }

    #[test]
    fn ipv6_64_with_random_used(
        prefix_bits in any::<u64>(),
        used_offsets in proptest::collection::btree_set(0u128..600, 0..500),
        high in proptest::collection::btree_set(any::<u64>(), 0..50),
    ) {
        let subnet = IpNet::new(from_u128(false, u128::from(prefix_bits) << 64), 64).unwrap();
        let spec = subnet_spec(subnet, None, None).unwrap();
        let (lo, _) = bounds(&subnet);
        let mut used: BTreeSet<IpAddr> = used_offsets
            .iter()
            .chain(high.iter().map(|&h| u128::from(h)).collect::<Vec<_>>().iter())
            .map(|&o| from_u128(false, lo + o))
            .collect();
        for _ in 0..50 {
            prop_assert!(alloc_checked(&spec, &mut used)?);
        }
        prop_assert_eq!(subnet_for(std::slice::from_ref(&spec), *used.last().unwrap()), Some(0));
    }

    #[test]
    fn choose_subnet_is_first_non_overlapping(
        taken in proptest::collection::vec((taken_addr(), 8u8..=28), 0..24),
    ) {
        let taken: Vec<IpNet> = taken
            .into_iter()
            .map(|(a, p)| IpNet::new(IpAddr::V4(Ipv4Addr::from(a)), p).unwrap().trunc())
            .collect();
        let pools: Vec<Pool> = default_pools_v4();
        let overlaps = |a: &IpNet, b: &IpNet| {
            let (alo, ahi) = bounds(a);
            let (blo, bhi) = bounds(b);
            alo <= bhi && blo <= ahi
        };
        let expected = pools
            .iter()
            .flat_map(Pool::subnets)
            .find(|c| !taken.iter().any(|t| overlaps(t, c)));
        prop_assert_eq!(choose_subnet(&pools, &taken), expected);
    }
}
