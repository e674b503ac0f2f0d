//! One endpoint: a veth pair from a network's bridge into a container's namespace.
//!
//! `attach` leaves either a working endpoint or nothing; `detach` removes what it can, and
//! deactivates the network on this host when its last endpoint goes if the network is one
//! that lives only while it has endpoints (see [`bridge::lives_with_endpoints`]).

use crate::bridge;
use crate::error::KernelContext;
use crate::ids::parse_mac;
use crate::lock::Lock;
use crate::{Error, Paths, Result};
use berth_firewall::{Firewall, Update};
use berth_kernel::{netlink::Netlink, netns};
use berth_store::{Endpoint, Network, Store};
use std::fs::File;
use std::net::IpAddr;

/// The container's side of an attachment: its namespace, and what the caller already has
/// there (so that no thread has to enter it again).
pub(crate) struct Inside<'a> {
    pub(crate) netns: &'a File,
    /// An rtnetlink socket opened in `netns`.
    pub(crate) nl: Option<&'a mut Netlink>,
}

/// Creates the endpoint's kernel objects (and the network's, when it is the first here).
pub(crate) fn attach(
    paths: &Paths,
    store: &mut Store,
    fw: &mut Firewall,
    net: &Network,
    ep: &Endpoint,
    inside: Inside<'_>,
    default_route: bool,
) -> Result<()> {
    let mut phases = crate::timing::Phases::new("endpoint");
    let _lock = Lock::exclusive(&paths.network_lock(&net.id))?;
    let vx = crate::overlay::device::spec(paths, net)?;
    let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
    let (bridge_index, created) = bridge::activate(&mut nl, fw, net, vx.as_ref())?;
    phases.mark("bridge");
    let made = veth(
        &mut nl,
        net,
        ep,
        inside,
        bridge_index,
        default_route,
        &mut phases,
    )
    .and_then(|index| {
        join_fast_path(store, fw, net, ep, index)?;
        phases.mark("fastpath");
        Ok(())
    });
    if let Err(e) = made {
        let _ = nl.delete_link_by_name(&ep.host_ifname);
        if created {
            bridge::deactivate(net);
        }
        return Err(e);
    }
    Ok(())
}

/// Puts the endpoint on the fast path once its host end forwards: its element, and, unless
/// the chain already lists its name (a pooled name, [`bridge::hooks_ahead`]), the name. When
/// the pool has run dry, the same batch lists [`bridge::HOOK_BLOCK`] new spare names.
fn join_fast_path(
    store: &mut Store,
    fw: &mut Firewall,
    net: &Network,
    ep: &Endpoint,
    index: u32,
) -> Result<()> {
    let Some(port) = bridge::fast_port(net, ep, index) else {
        return Ok(());
    };
    let mut u = Update::new();
    u.add_fast(&[port]);
    let mut refill = Vec::new();
    if bridge::hooks_ahead() {
        let (pooled, spare) = store.read(|tx| -> Result<_> {
            Ok((tx.is_hook_name(&ep.host_ifname)?, tx.spare_hook_names()?))
        })?;
        if !pooled {
            u.hook(std::slice::from_ref(&ep.host_ifname));
        }
        if spare == 0 {
            refill = bridge::fresh_hook_names();
            u.hook(&refill);
        }
    } else {
        u.hook(std::slice::from_ref(&ep.host_ifname));
    }
    fw.apply(&u)?;
    if !refill.is_empty() {
        store.write(|tx| -> Result<()> { Ok(tx.add_hook_names(&refill)?) })?;
    }
    Ok(())
}

fn veth(
    nl: &mut Netlink,
    net: &Network,
    ep: &Endpoint,
    inside: Inside<'_>,
    bridge_index: u32,
    default_route: bool,
    phases: &mut crate::timing::Phases,
) -> Result<u32> {
    let what = || format!("{} of network {}", ep.host_ifname, net.name);
    // A runtime's namespace may still hold the same interface name from a teardown whose
    // deletion the agent has not done yet (crate::reap: a few ms): wait for it, up to 1 s.
    // The host end is born a port of the bridge, down; it comes up last, when the
    // container's end is ready, and the pair gets its carrier then (see
    // `Netlink::create_veth_port` for why not earlier).
    let mut waited = 0;
    let index = loop {
        let made = nl.create_veth_port(
            &ep.host_ifname,
            &ep.ifname,
            inside.netns,
            net.mtu,
            parse_mac(&ep.mac),
            bridge_index,
            bridge::host_group(net),
        );
        match made {
            Err(e) if e.is_exists() && waited < 50 => {
                waited += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            r => break r.op(|| format!("create veth {}", what()))?,
        }
    };
    phases.mark("veth");
    // On an IPv4-only network the host end needs no IPv6: no link-local address and route
    // per veth in the host's tables (each makes the next link change walk more of them).
    // It gets none before it has a carrier.
    if !net.subnets.iter().any(|s| s.subnet.addr().is_ipv6()) {
        let _ = berth_kernel::sysctl::write(
            &format!("net/ipv6/conf/{}/disable_ipv6", ep.host_ifname),
            "1",
        );
    }
    if !net.icc {
        nl.set_port_isolated(index, true)
            .op(|| format!("isolate bridge port {}", what()))?;
    }
    // A container reaching its own published port through a host address gets its DNAT'd
    // packets bridged back out of the port they came in by.
    nl.set_port_hairpin(index, true)
        .op(|| format!("set hairpin mode on {}", what()))?;
    phases.mark("host-end");

    // Likewise inside the container (as Docker does for IPv4-only networks): no link-local
    // address, DAD, router solicitations or multicast reports, so no IPv6 chatter for the
    // bridge to flood and conntrack to track. Address generation "none", over netlink and
    // before the link comes up: not the sysctl file, whose path lookup walks one cached
    // `eth0` (or `default`) entry per namespace on the host (`proc_sys_compare`), a cost
    // that grew with every container.
    let v4_only = !net.subnets.iter().any(|s| s.subnet.addr().is_ipv6());
    let mut opened = None;
    if inside.nl.is_none() {
        opened = Some(
            netns::open_in(inside.netns, Netlink::open)
                .op(|| "enter container namespace".into())?
                .op(|| "open netlink socket in container".into())?,
        );
    }
    let inner = match (inside.nl, opened.as_mut()) {
        (Some(nl), _) => nl,
        (None, Some(nl)) => nl,
        (None, None) => unreachable!("opened above"),
    };
    let link = inner
        .link_by_name(&ep.ifname)
        .op(|| format!("look up {} in container", ep.ifname))?
        .ok_or_else(|| Error::Invalid(format!("{} vanished from the container", ep.ifname)))?;
    if v4_only {
        inner
            .set_ipv6_addr_gen_none(link.index)
            .op(|| format!("turn IPv6 off on {} in container", ep.ifname))?;
    }
    for a in &ep.addresses {
        inner
            .add_address(link.index, a.addr, a.prefix_len)
            .op(|| format!("add address {}/{} to {}", a.addr, a.prefix_len, ep.ifname))?;
    }
    inner
        .set_up(link.index)
        .op(|| format!("bring {} up in container", ep.ifname))?;
    phases.mark("inside");
    if default_route {
        // One default route per family, via this network's gateway of that family.
        for (v4, dst) in [(true, "0.0.0.0/0"), (false, "::/0")] {
            let gw = ep
                .addresses
                .iter()
                .find_map(|a| a.gateway.filter(|g| g.is_ipv4() == v4));
            if let Some(gw) = gw {
                inner
                    .add_route(dst.parse().expect("constant"), Some(gw), Some(link.index))
                    .op(|| format!("add default route via {gw}"))?;
            }
        }
    }
    phases.mark("route");
    let up = nl
        .set_up(index)
        .op(|| format!("bring {} up", ep.host_ifname));
    phases.mark("up");
    up.map(|()| index)
}

/// True when the namespace already has an IPv4 default route.
pub(crate) fn has_default_route(netns: &File) -> Result<bool> {
    let mut inner = Netlink::open_in(netns).op(|| "open netlink socket in container".into())?;
    has_default_route_via(&mut inner)
}

/// [`has_default_route`] through a socket already open in the namespace.
pub(crate) fn has_default_route_via(inner: &mut Netlink) -> Result<bool> {
    let routes = inner.ipv4_routes().op(|| "list container routes".into())?;
    Ok(routes
        .iter()
        .any(|r| r.dst.prefix_len() == 0 && matches!(r.dst.addr(), IpAddr::V4(_))))
}

/// What happens to the endpoint's veth pair on [`detach`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum HostEnd {
    /// Delete it now (the container's namespace lives on, or belongs to another runtime).
    Delete,
    /// The container's namespace was just released: the kernel destroys the pair with it in
    /// its namespace clean-up work, so `rm` does not wait for the RCU barrier a synchronous
    /// link deletion costs (~10-20 ms). The host end leaves its bridge now, so that even a
    /// namespace some stray process still holds carries no traffic; `gc` deletes such a
    /// pair if it outlives its endpoint row.
    Released,
    /// The agent deletes it ([`crate::reap`]), a few ms later: the host end's bridge port
    /// is disabled now (it forwards nothing either way), and the network's deactivation is
    /// left to the agent too. Disabling waits for nothing, where leaving the bridge waits
    /// for an RCU grace period; the price is that a process still in the runtime's
    /// namespace with `CAP_NET_ADMIN` could enable the port again (its link down and up)
    /// until the agent deletes the pair.
    Handoff,
}

/// Removes the endpoint's host side (its peer goes with it) and its row (releasing its
/// addresses), and the network's bridge and firewall elements when no other endpoint of that
/// network remains and the network lives only with its endpoints. Returns every failure.
pub(crate) fn detach(
    paths: &Paths,
    store: &mut Store,
    net: &Network,
    ep: &Endpoint,
    mut fw: Option<&mut Firewall>,
    host_end: HostEnd,
    on_fast_path: bool,
) -> Vec<String> {
    let mut errors = Vec::new();
    if net.driver == "overlay" {
        errors.extend(crate::overlay::claims::withdraw(paths, ep));
    }
    let _lock = match Lock::exclusive(&paths.network_lock(&net.id)) {
        Ok(l) => Some(l),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    // Off the fast path first: a disabled port (hand-off) forwards nothing, nor may the
    // fast path lead to it. A pooled name stays on the chain, retired below.
    if on_fast_path && bridge::fast(net) {
        let left = store
            .read(|tx| -> Result<Update> {
                let mut u = Update::new();
                leave_fast_path_in(tx, net, ep, &mut u)?;
                Ok(u)
            })
            .and_then(|u| Ok(crate::fw::apply_installed(fw.as_deref_mut(), &u)?));
        if let Err(e) = left {
            errors.push(e.to_string());
        }
    }
    match Netlink::open() {
        Ok(mut nl) => {
            let done = match host_end {
                HostEnd::Delete => nl.delete_link_by_name(&ep.host_ifname).map(drop),
                HostEnd::Released => nl.set_nomaster_by_name(&ep.host_ifname).map(drop),
                HostEnd::Handoff => nl.disable_port_by_name(&ep.host_ifname).map(drop),
            };
            if let Err(e) = done {
                errors.push(format!("delete veth {}: {e}", ep.host_ifname));
            }
        }
        Err(e) => errors.push(format!("open netlink socket: {e}")),
    }
    // Release the endpoint's row and count the others under the lock, so that of two
    // endpoints leaving at once, the second sees the first gone and removes the bridge.
    let mut retired = 0;
    let others = store.write(|tx| -> Result<usize> {
        tx.delete_endpoint(&ep.id)?;
        release_cursors(tx, net, ep)?;
        if bridge::fast(net) && bridge::hooks_ahead() {
            // Nothing for a name that is not pooled.
            retired = tx.retire_hook_name(&ep.host_ifname)?;
        }
        Ok(tx.count_endpoints_of_network(&net.id)?)
    });
    if retired >= bridge::HOOK_BLOCK {
        if let Err(e) = unhook_retired(store, fw.as_deref_mut()) {
            errors.push(e.to_string());
        }
    }
    match others {
        Ok(0) if bridge::lives_with_endpoints(net) && host_end != HostEnd::Handoff => {
            errors.extend(bridge::deactivate_with(net, fw))
        }
        Ok(_) => {}
        Err(e) => errors.push(e.to_string()),
    }
    errors
}

/// Adds to `u` what takes the endpoint off the fast path: its element and, unless its name is
/// pooled (it stays listed, retired at detach), its name on the chain.
pub(crate) fn leave_fast_path_in(
    tx: &berth_store::Tx<'_>,
    net: &Network,
    ep: &Endpoint,
    u: &mut Update,
) -> Result<()> {
    let Some(port) = bridge::fast_port(net, ep, 0) else {
        return Ok(());
    };
    if !(bridge::hooks_ahead() && tx.is_hook_name(&ep.host_ifname)?) {
        u.unhook(std::slice::from_ref(&ep.host_ifname));
    }
    u.remove_fast(&[port]);
    Ok(())
}

/// Takes the retired names off the chain, in one batch, and forgets them.
fn unhook_retired(store: &mut Store, fw: Option<&mut Firewall>) -> Result<()> {
    let names = store.read(|tx| -> Result<_> { Ok(tx.retired_hook_names()?) })?;
    crate::fw::apply_installed(fw, Update::new().unhook(&names))?;
    store.write(|tx| -> Result<()> { Ok(tx.forget_hook_names(&names)?) })
}

/// Gives the endpoint's addresses back to their subnets' cursors where they were the last
/// ones given out (see `Tx::release_address_cursor`).
fn release_cursors(tx: &berth_store::Tx<'_>, net: &Network, ep: &Endpoint) -> Result<()> {
    let specs = crate::container::create::specs(net);
    for a in &ep.addresses {
        let Some(spec) = specs.iter().find(|s| s.subnet.contains(&a.addr)) else {
            continue;
        };
        if let Some(after) = berth_ipam::after(spec, a.addr) {
            tx.release_address_cursor(&net.id, &spec.subnet, a.addr, after)?;
        }
    }
    Ok(())
}
