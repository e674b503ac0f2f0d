//! The firewall as the engine sees it: opened (and repaired from the store when its tables are
//! missing or damaged) before each change, and rebuilt whole on demand.

use crate::{bridge, ports, Result};
use berth_firewall::{Firewall, Update};
use berth_store::{Endpoint, Network, Store, Tx};
use std::collections::{BTreeMap, BTreeSet};

/// Opens the firewall, reinstalling it with every element the store implies when it is
/// missing (first use on this host, or flushed by someone).
pub(crate) fn open(store: &mut Store) -> Result<Firewall> {
    let mut fw = Firewall::open()?;
    fw.ensure(|| everything_here(store))?;
    Ok(fw)
}

/// Applies `u` through `fw`, or a firewall opened for it, when berth's tables are installed:
/// a missing table (or one of another version) holds nothing to remove, and the next setup
/// rebuilds it from the store.
pub(crate) fn apply_installed(fw: Option<&mut Firewall>, u: &Update) -> berth_firewall::Result<()> {
    if u.is_empty() {
        return Ok(());
    }
    let mut opened = None;
    let fw = match fw {
        Some(fw) => fw,
        None => opened.insert(Firewall::open()?),
    };
    match fw.is_installed()? {
        true => fw.apply(u),
        false => Ok(()),
    }
}

/// Reinstalls the ruleset and every element, whatever state the table is in. Returns the
/// number of elements restored.
pub(crate) fn reload(store: &mut Store) -> Result<usize> {
    let mut fw = Firewall::open()?;
    let all = everything_here(store)?;
    fw.reinstall(&all)?;
    Ok(all.len())
}

/// The endpoint a container's published ports lead to: its first endpoint (by interface
/// name) on a network that is not internal.
pub(crate) fn published_endpoint<'a>(
    eps: &'a [Endpoint],
    nets: &BTreeMap<String, Network>,
) -> Option<&'a Endpoint> {
    let mut eps: Vec<&Endpoint> = eps.iter().collect();
    eps.sort_by_key(|e| {
        e.ifname
            .trim_start_matches("eth")
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    eps.into_iter()
        .find(|e| nets.get(&e.network_id).is_some_and(|n| !n.internal))
}

/// [`everything`] for this host: its bridges are read from the kernel.
fn everything_here(store: &mut Store) -> Result<Update> {
    use crate::error::KernelContext;
    let mut nl = berth_kernel::netlink::Netlink::open().op(|| "open netlink socket".into())?;
    let links = nl.links().op(|| "list links".into())?;
    let bridges: BTreeSet<String> = links
        .iter()
        .filter(|l| l.kind.as_deref() == Some("bridge"))
        .map(|l| l.name.clone())
        .collect();
    // Host ends that are ports of a bridge, by name: the fast path's devices and targets.
    let ports: BTreeMap<String, u32> = links
        .into_iter()
        .filter(|l| l.master.is_some())
        .map(|l| (l.name, l.index))
        .collect();
    store.read(|tx| everything(tx, &bridges, &ports))
}

/// Every element the store implies: networks active here (their bridge is in `bridges`, or
/// they have endpoints), published ports, and the fast path of every endpoint whose host
/// end is in `ports` (name to ifindex).
pub(crate) fn everything(
    tx: &Tx<'_>,
    bridges: &BTreeSet<String>,
    ports: &BTreeMap<String, u32>,
) -> Result<Update> {
    let nets: BTreeMap<String, Network> = tx
        .networks()?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let eps = tx.all_endpoints()?;
    let mut u = Update::new();
    for net in nets.values() {
        let present = net.bridge.as_ref().is_some_and(|b| bridges.contains(b));
        if present || eps.iter().any(|e| e.network_id == net.id) {
            if let Some(el) = bridge::elements(net) {
                u.add_network(&el);
            }
        }
    }
    let fast: Vec<_> = eps
        .iter()
        .filter_map(|ep| {
            let index = *ports.get(&ep.host_ifname)?;
            bridge::fast_port(nets.get(&ep.network_id)?, ep, index)
        })
        .collect();
    let mut hooked: BTreeSet<String> = fast.iter().map(|p| p.host_ifname.clone()).collect();
    if bridge::hooks_ahead() {
        hooked.extend(tx.hook_names()?);
    }
    u.add_fast(&fast);
    u.hook(&hooked.into_iter().collect::<Vec<_>>());
    let mut by_container: BTreeMap<&str, Vec<berth_store::PortMapping>> = BTreeMap::new();
    let all_ports = tx.all_ports()?;
    for p in &all_ports {
        by_container
            .entry(&p.container_id)
            .or_default()
            .push(p.clone());
    }
    for (cid, ps) in by_container {
        let mine: Vec<Endpoint> = eps
            .iter()
            .filter(|e| e.container_id == cid)
            .cloned()
            .collect();
        if let Some(ep) = published_endpoint(&mine, &nets) {
            let (v4, v6) = ports::targets(std::slice::from_ref(ep));
            u.add_ports(&ports::elements(&ps, v4, v6));
        }
    }
    Ok(u)
}
