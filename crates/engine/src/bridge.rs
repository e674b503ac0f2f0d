//! The bridge driver on this host. Overlay networks use it too, with a VXLAN device as one
//! more port of the bridge.
//!
//! Activating creates the bridge device, gives it the gateway addresses, brings it up, turns
//! on forwarding and adds the network's firewall elements; deactivating removes them again.
//! Both run under the network's lock, so concurrent berth processes agree.
//!
//! When: a network made by `berth network create` is activated there and stays active until
//! `network rm` (the built-in `bridge` network from its first container on), as Docker's
//! networks do. Networks a runtime's door defines (podman, CNI) and overlays live only while
//! they have endpoints here ([`lives_with_endpoints`]): their runtime never says when they
//! go, and netavark removes a bridge with its last container.

use crate::error::KernelContext;
use crate::overlay::{self, device::Vxlan};
use crate::{Error, Result};
use berth_firewall::{FastPort, Firewall, NetworkElements, Update};
use berth_ipam::IpNet;
use berth_kernel::netlink::Netlink;
use berth_kernel::sysctl;
use berth_store::{Endpoint, Network};

/// What the host namespace already uses: link names and routed/addressed subnets.
pub(crate) struct HostView {
    pub(crate) links: Vec<String>,
    pub(crate) subnets: Vec<IpNet>,
}

/// Reads links, routes and addresses of the calling namespace.
pub(crate) fn host_view() -> Result<HostView> {
    let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
    let links = nl.links().op(|| "list links".into())?;
    let mut subnets: Vec<IpNet> = nl
        .routes()
        .op(|| "list routes".into())?
        .into_iter()
        .map(|r| r.dst)
        .filter(|d| d.prefix_len() > 0 && !d.addr().is_loopback())
        .collect();
    for a in nl.addresses().op(|| "list addresses".into())? {
        if let Ok(net) = IpNet::new(a.addr, a.prefix_len) {
            if !a.addr.is_loopback() && net.prefix_len() > 0 {
                subnets.push(net.trunc());
            }
        }
    }
    Ok(HostView {
        links: links.into_iter().map(|l| l.name).collect(),
        subnets,
    })
}

/// True for networks that are deactivated when their last endpoint on this host goes:
/// overlays and networks defined by a runtime's door. Other bridge networks keep their
/// bridge from `network create` (or their first container) until `network rm`.
pub(crate) fn lives_with_endpoints(net: &Network) -> bool {
    net.driver == "overlay" || net.labels.contains_key(crate::network::DOOR_LABEL)
}

/// Whether the network's containers reach each other by the fast path
/// ([`berth_firewall::fastpath`]): a bridge with inter-container communication (its
/// isolation, when off, is the bridge's) and no `fastpath=false` option.
pub(crate) fn fast(net: &Network) -> bool {
    net.bridge.is_some()
        && net.icc
        && net
            .options
            .get(crate::network::OPT_FASTPATH)
            .is_none_or(|v| {
                crate::validate::boolean(crate::network::OPT_FASTPATH, v).unwrap_or(true)
            })
}

/// The endpoint's place on the fast path, when its network has one: `host_ifindex` is its
/// host end's (0 is fine for a removal).
pub(crate) fn fast_port(net: &Network, ep: &Endpoint, host_ifindex: u32) -> Option<FastPort> {
    if !fast(net) {
        return None;
    }
    Some(FastPort {
        group: berth_firewall::fastpath::group(&net.id),
        mac: crate::ids::parse_mac(&ep.mac)?,
        host_ifname: ep.host_ifname.clone(),
        host_ifindex,
    })
}

/// Whether host-end names are listed on the fast path's chain ahead of their devices, from
/// a pool in the store (kernels from 6.16 keep a name listed while no device has it, and
/// hook the device that takes it). Each change of the chain's device list makes the next
/// nf_tables socket to close wait for an RCU grace period (8-16 ms here), so setups and
/// teardowns leave the chain alone and one in [`HOOK_BLOCK`] pays that wait. Older kernels
/// list each host end once it exists and drop it with its device.
pub(crate) fn hooks_ahead() -> bool {
    static AHEAD: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AHEAD.get_or_init(|| {
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        let mut parts = release.trim().split(['.', '-']);
        let major: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let minor: u32 = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        (major, minor) >= (6, 16)
    })
}

/// How many names the pool gains at once, and how many retired ones go off the chain at once.
pub(crate) const HOOK_BLOCK: usize = 64;

/// [`HOOK_BLOCK`] new host-end names, random like every host end's.
pub(crate) fn fresh_hook_names() -> Vec<String> {
    (0..HOOK_BLOCK)
        .map(|_| format!("bth{}", &crate::ids::new_id()[..11]))
        .collect()
}

/// The interface group of the network's host ends (0, the default, off the fast path).
pub(crate) fn host_group(net: &Network) -> u32 {
    match fast(net) {
        true => berth_firewall::fastpath::group(&net.id),
        false => 0,
    }
}

/// The firewall elements of a bridge network.
pub(crate) fn elements(net: &Network) -> Option<NetworkElements> {
    Some(NetworkElements {
        bridge: net.bridge.clone()?,
        internal: net.internal,
        subnets: match net.internal {
            true => Vec::new(),
            false => net.subnets.iter().map(|s| s.subnet).collect(),
        },
        bridged: net.subnets.iter().map(|s| (s.subnet, s.gateway)).collect(),
    })
}

/// Makes the network's bridge exist and work on this host; returns its ifindex and whether
/// this call created it (so a failed setup can undo exactly that).
/// An overlay network (`vx`) also gets its VXLAN device on the bridge.
pub(crate) fn activate(
    nl: &mut Netlink,
    fw: &mut Firewall,
    net: &Network,
    vx: Option<&Vxlan>,
) -> Result<(u32, bool)> {
    let name = net
        .bridge
        .as_deref()
        .ok_or_else(|| Error::Invalid(format!("network {} has no bridge", net.name)))?;
    if let Some(link) = nl
        .link_by_name(name)
        .op(|| format!("look up bridge {name}"))?
    {
        if link.kind.as_deref() != Some("bridge") {
            return Err(Error::Conflict(format!(
                "interface {name} exists on the host but is not a bridge: remove it or recreate network {} with another bridge_name",
                net.name
            )));
        }
        if let Some(vx) = vx {
            overlay::device::ensure(nl, vx, link.index)?;
        }
        return Ok((link.index, false));
    }
    let index = nl
        .create_bridge(name, net.mtu)
        .op(|| format!("create bridge {name} for network {}", net.name))?;
    let configured = configure(nl, fw, net, name, index, vx).and_then(|()| match vx {
        Some(vx) => overlay::device::ensure(nl, vx, index),
        None => Ok(()),
    });
    if let Err(e) = configured {
        // Undo all of it: the bridge and any elements the batch added.
        let _ = nl.delete_link(index);
        deactivate(net);
        return Err(e);
    }
    Ok((index, true))
}

/// Addresses, link state, firewall elements, then forwarding — last, so that a failure
/// before it leaves the host's forwarding setting as it was.
fn configure(
    nl: &mut Netlink,
    fw: &mut Firewall,
    net: &Network,
    name: &str,
    index: u32,
    vx: Option<&Vxlan>,
) -> Result<()> {
    // A bridge without a MAC of its own recomputes its id from every port's MAC whenever a
    // port comes or goes (O(ports) per container): give it a fixed one, from its gateway
    // (an overlay's, from this host's VTEP: every host's bridge has the gateway address).
    let gw4 = net.subnets.iter().map(|s| s.gateway).find(|g| g.is_ipv4());
    let mac = vx.map_or_else(|| crate::ids::mac_for(gw4), Vxlan::bridge_mac);
    nl.set_mac(index, mac)
        .op(|| format!("set the MAC address of bridge {name}"))?;
    for s in &net.subnets {
        nl.add_address(index, s.gateway, s.subnet.prefix_len())
            .op(|| format!("add gateway {} to bridge {name}", s.gateway))?;
    }
    nl.set_up(index).op(|| format!("bring bridge {name} up"))?;
    // Published ports answer on 127.0.0.1: DNAT'd loopback-sourced packets may leave through
    // this bridge (the guard chain drops 127/8 arriving from anywhere but lo).
    sysctl::write(&format!("net/ipv4/conf/{name}/route_localnet"), "1")
        .op(|| format!("enable route_localnet on {name}"))?;
    if let Some(el) = elements(net) {
        fw.apply(Update::new().add_network(&el))?;
    }
    sysctl::write("net/ipv4/ip_forward", "1").op(|| "enable IPv4 forwarding".into())?;
    if net.subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
        sysctl::write("net/ipv6/conf/all/forwarding", "1")
            .op(|| "enable IPv6 forwarding".into())?;
    }
    Ok(())
}

/// Removes the network's bridge and firewall elements from this host; returns every failure.
/// Already-absent pieces are not failures.
pub(crate) fn deactivate(net: &Network) -> Vec<String> {
    deactivate_with(net, None)
}

/// [`deactivate`] through `fw` when the caller has it open. The elements go first, then the
/// bridge: the link deletion's wait covers the grace period the commit leaves behind.
pub(crate) fn deactivate_with(net: &Network, fw: Option<&mut Firewall>) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(name) = net.bridge.as_deref() else {
        return errors;
    };
    if let Some(el) = elements(net) {
        if let Err(e) = crate::fw::apply_installed(fw, Update::new().remove_network(&el)) {
            errors.push(e.to_string());
        }
    }
    match Netlink::open() {
        Ok(mut nl) => match (overlay::device::remove(&mut nl, net), nl.link_by_name(name)) {
            (Some(e), _) => errors.push(e),
            (None, Ok(Some(link))) if link.kind.as_deref() == Some("bridge") => {
                if let Err(e) = nl.delete_link(link.index) {
                    if !e.is_not_found() {
                        errors.push(format!("delete bridge {name}: {e}"));
                    }
                }
            }
            (None, Ok(_)) => {}
            (None, Err(e)) => errors.push(format!("look up bridge {name}: {e}")),
        },
        Err(e) => errors.push(format!("open netlink socket: {e}")),
    }
    errors
}
