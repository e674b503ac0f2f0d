//! What a runtime's IPAM section asks beyond subnets (CNI `ipam`): dynamic addresses drawn
//! only from given address ranges of a subnet, and extra routes inside the container.
//!
//! A pool is an arbitrary `start..=end` span (not a CIDR), so it is applied per attachment
//! inside attach's write transaction: the lowest free address of the first pool of a subnet
//! that has one becomes the endpoint's address there, as if the runtime had asked for it.

use super::Attachment;
use crate::error::KernelContext;
use crate::{Error, Result};
use berth_ipam::{IpNet, SubnetSpec};
use berth_kernel::netlink::Netlink;
use berth_store::{Endpoint, Network, Tx};
use std::collections::BTreeSet;
use std::fs::File;
use std::net::IpAddr;

/// Dynamic addresses of the subnet holding `start` come only from `start..=end`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressPool {
    pub start: IpAddr,
    pub end: IpAddr,
}

/// A route inside the container through the attachment's interface, via `gateway` or,
/// when `None`, the network's gateway of the destination's family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExtraRoute {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
}

fn num(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u32::from(a).into(),
        IpAddr::V6(a) => a.into(),
    }
}

fn from_num(v4: bool, n: u128) -> IpAddr {
    match v4 {
        // A pool's bounds are of one family, so `n` stays below 2^32 for IPv4.
        true => IpAddr::V4(u32::try_from(n).unwrap_or(u32::MAX).into()),
        false => IpAddr::V6(n.into()),
    }
}

fn subnets(net: &Network) -> String {
    let list: Vec<String> = net.subnets.iter().map(|s| s.subnet.to_string()).collect();
    list.join(", ")
}

/// Checks the attachment's pools and routes against its network.
pub(super) fn check(net: &Network, a: &Attachment) -> Result<()> {
    for p in &a.pools {
        if p.start.is_ipv4() != p.end.is_ipv4() || num(p.start) > num(p.end) {
            return Err(Error::Invalid(format!(
                "address range {}-{} is empty or mixes address families",
                p.start, p.end
            )));
        }
        let inside = net
            .subnets
            .iter()
            .any(|s| s.subnet.contains(&p.start) && s.subnet.contains(&p.end));
        if !inside {
            return Err(Error::Invalid(format!(
                "address range {}-{} is not inside a subnet of network {} ({})",
                p.start,
                p.end,
                net.name,
                subnets(net)
            )));
        }
    }
    for r in &a.routes {
        let v4 = matches!(r.dst, IpNet::V4(_));
        let family = if v4 { "IPv4" } else { "IPv6" };
        let own = net
            .subnets
            .iter()
            .find(|s| s.gateway.is_ipv4() == v4)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "route to {}: network {} has no {family} subnet",
                    r.dst, net.name
                ))
            })?;
        if let Some(s) = net.subnets.iter().find(|s| {
            r.dst.prefix_len() > 0
                && (s.subnet.contains(&r.dst.addr()) || r.dst.contains(&s.subnet.addr()))
        }) {
            return Err(Error::Invalid(format!(
                "route to {}: it overlaps subnet {} of network {}, which is on the link",
                r.dst, s.subnet, net.name
            )));
        }
        if let Some(g) = r.gateway {
            if g.is_ipv4() != v4 || !net.subnets.iter().any(|s| s.subnet.contains(&g)) {
                return Err(Error::Invalid(format!(
                    "route to {}: gateway {g} is not an {family} address on network {} ({})",
                    r.dst,
                    net.name,
                    subnets(net)
                )));
            }
        }
        if r.dst.prefix_len() == 0 {
            if net.internal {
                return Err(Error::Invalid(format!(
                    "route to {}: network {} is internal and has no default route",
                    r.dst, net.name
                )));
            }
            if r.gateway.is_some_and(|g| g != own.gateway) {
                return Err(Error::Invalid(format!(
                    "route to {}: the default route goes via the gateway of network {} ({})",
                    r.dst, net.name, own.gateway
                )));
            }
        }
    }
    Ok(())
}

/// The attachment's static addresses plus, for each subnet that has pools and no static
/// address, the lowest free address of its first pool that has one.
pub(super) fn addresses(tx: &Tx<'_>, net: &Network, a: &Attachment) -> Result<Vec<IpAddr>> {
    let mut ips = a.ips.clone();
    if a.pools.is_empty() {
        return Ok(ips);
    }
    let used = tx.used_addresses(&net.id)?;
    for s in &net.subnets {
        if ips.iter().any(|ip| s.subnet.contains(ip)) {
            continue;
        }
        let pools: Vec<&AddressPool> = a
            .pools
            .iter()
            .filter(|p| s.subnet.contains(&p.start))
            .collect();
        if pools.is_empty() {
            continue;
        }
        let spec = SubnetSpec {
            subnet: s.subnet,
            gateway: s.gateway,
            range: None,
        };
        let addr = pools
            .iter()
            .find_map(|p| first_free(&spec, p, &used))
            .ok_or_else(|| {
                let spans: Vec<String> = pools
                    .iter()
                    .map(|p| format!("{}-{}", p.start, p.end))
                    .collect();
                Error::Conflict(format!(
                    "no free address left in {} of network {}",
                    spans.join(", "),
                    net.name
                ))
            })?;
        ips.push(addr);
    }
    Ok(ips)
}

/// The lowest address of `p` that a static address could take. Every address skipped is
/// used or reserved, so this takes at most `used.len() + 3` steps.
fn first_free(spec: &SubnetSpec, p: &AddressPool, used: &BTreeSet<IpAddr>) -> Option<IpAddr> {
    let (mut cur, end) = (num(p.start), num(p.end));
    loop {
        let addr = from_num(p.start.is_ipv4(), cur);
        if berth_ipam::check_static(spec, addr, used).is_ok() {
            return Some(addr);
        }
        if cur >= end {
            return None;
        }
        cur += 1;
    }
}

/// Adds the attachment's routes in the container. A default route is the one berth adds on
/// the container's first non-internal network (`default_route`); elsewhere it is refused.
pub(super) fn add_routes(
    ns: &File,
    ep: &Endpoint,
    routes: &[ExtraRoute],
    default_route: bool,
) -> Result<()> {
    if routes.is_empty() {
        return Ok(());
    }
    let mut nl = Netlink::open_in(ns).op(|| "open netlink socket in container".into())?;
    let link = nl
        .link_by_name(&ep.ifname)
        .op(|| format!("look up {} in container", ep.ifname))?
        .ok_or_else(|| Error::Invalid(format!("{} vanished from the container", ep.ifname)))?;
    for r in routes {
        let v4 = matches!(r.dst, IpNet::V4(_));
        let gw = r.gateway.or_else(|| {
            ep.addresses
                .iter()
                .find_map(|a| a.gateway.filter(|g| g.is_ipv4() == v4))
        });
        if r.dst.prefix_len() == 0 {
            if !default_route {
                return Err(Error::Conflict(format!(
                    "route to {}: the container already has a default route from another network",
                    r.dst
                )));
            }
            continue;
        }
        nl.add_route(r.dst, gw, Some(link.index))
            .op(|| format!("add route to {} in the container", r.dst))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::SubnetRow;

    fn net() -> Network {
        Network {
            id: "n".into(),
            name: "n".into(),
            driver: "bridge".into(),
            bridge: None,
            internal: false,
            icc: true,
            mtu: None,
            ipv6: true,
            builtin: false,
            options: Default::default(),
            labels: Default::default(),
            subnets: vec![
                SubnetRow {
                    subnet: "10.30.0.0/24".parse().unwrap(),
                    gateway: "10.30.0.1".parse().unwrap(),
                    range: None,
                },
                SubnetRow {
                    subnet: "fd00:30::/64".parse().unwrap(),
                    gateway: "fd00:30::1".parse().unwrap(),
                    range: None,
                },
            ],
            created: String::new(),
        }
    }

    fn pool(a: &str, b: &str) -> AddressPool {
        AddressPool {
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        }
    }

    #[test]
    fn first_free_skips_used_and_reserved_addresses() {
        let spec = SubnetSpec {
            subnet: "10.30.0.0/24".parse().unwrap(),
            gateway: "10.30.0.1".parse().unwrap(),
            range: None,
        };
        let used: BTreeSet<IpAddr> = ["10.30.0.2".parse().unwrap()].into();
        let p = pool("10.30.0.0", "10.30.0.3");
        assert_eq!(
            first_free(&spec, &p, &used),
            Some("10.30.0.3".parse().unwrap())
        );
        assert_eq!(
            first_free(&spec, &pool("10.30.0.1", "10.30.0.2"), &used),
            None
        );
        let p = pool("10.30.0.254", "10.30.0.255");
        assert_eq!(
            first_free(&spec, &p, &used),
            Some("10.30.0.254".parse().unwrap())
        );
    }

    #[test]
    fn pools_and_routes_must_fit_the_network() {
        let fits = |pools: Vec<AddressPool>, routes: Vec<ExtraRoute>| {
            let a = Attachment {
                pools,
                routes,
                ..Attachment::default()
            };
            check(&net(), &a).is_ok()
        };
        let route = |dst: &str, gw: Option<&str>| ExtraRoute {
            dst: dst.parse().unwrap(),
            gateway: gw.map(|g| g.parse().unwrap()),
        };
        assert!(fits(vec![pool("10.30.0.10", "10.30.0.20")], vec![]));
        assert!(!fits(vec![pool("10.30.0.20", "10.30.0.10")], vec![]));
        assert!(!fits(vec![pool("10.30.0.10", "10.31.0.20")], vec![]));
        assert!(!fits(vec![pool("10.30.0.10", "fd00:30::9")], vec![]));
        assert!(fits(vec![], vec![route("10.50.0.0/16", None)]));
        assert!(fits(vec![], vec![route("10.50.0.0/16", Some("10.30.0.9"))]));
        assert!(fits(vec![], vec![route("fd50::/48", None)]));
        assert!(fits(vec![], vec![route("0.0.0.0/0", None)]));
        assert!(!fits(vec![], vec![route("0.0.0.0/0", Some("10.30.0.9"))]));
        assert!(!fits(
            vec![],
            vec![route("10.50.0.0/16", Some("10.99.0.1"))]
        ));
        assert!(!fits(
            vec![],
            vec![route("10.50.0.0/16", Some("fd00:30::1"))]
        ));
        assert!(!fits(vec![], vec![route("10.30.0.0/25", None)]));
    }
}
