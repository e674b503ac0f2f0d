//! `verify`: what CNI CHECK compares — berth's record against the kernel.

use super::{find, ExtraRoute};
use crate::error::KernelContext;
use crate::{Engine, Result};
use berth_kernel::{netlink::Netlink, netns};

/// How the kernel differs from the endpoint berth recorded for `ifname` of a runtime's
/// container: missing host end, namespace, interface, address, MAC or one of `routes` (the
/// attachment's extra routes, a default one excepted), or a wrong bridge.
/// `Ok(None)` when berth has no such attachment; `Ok(Some(vec![]))` when all is in place.
pub fn verify(
    engine: &mut Engine,
    owner: &str,
    runtime_id: &str,
    network: &str,
    ifname: &str,
    routes: &[ExtraRoute],
) -> Result<Option<Vec<String>>> {
    let Some((c, eps)) = find(engine, owner, runtime_id)? else {
        return Ok(None);
    };
    let net = crate::network::find(engine, network)?;
    let Some(ep) = eps
        .into_iter()
        .find(|e| e.network_id == net.id && e.ifname == ifname)
    else {
        return Ok(None);
    };
    let mut problems = Vec::new();
    let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
    let bridge = match &net.bridge {
        Some(b) => nl.link_by_name(b).op(|| format!("look up {b}"))?,
        None => None,
    };
    match nl
        .link_by_name(&ep.host_ifname)
        .op(|| format!("look up {}", ep.host_ifname))?
    {
        None => problems.push(format!("host interface {} is missing", ep.host_ifname)),
        Some(l) if bridge.as_ref().map(|b| b.index) != l.master => problems.push(format!(
            "host interface {} is not on bridge {}",
            ep.host_ifname,
            net.bridge.as_deref().unwrap_or("-")
        )),
        Some(_) => {}
    }
    let path = c.netns.clone().unwrap_or_default();
    let ns = match netns::open(std::path::Path::new(&path)) {
        Ok(ns) => ns,
        Err(e) => {
            problems.push(format!("network namespace {path}: {e}"));
            return Ok(Some(problems));
        }
    };
    let mut inner = Netlink::open_in(&ns).op(|| "open netlink socket in container".into())?;
    let Some(link) = inner
        .link_by_name(ifname)
        .op(|| format!("look up {ifname}"))?
    else {
        problems.push(format!("interface {ifname} is missing in {path}"));
        return Ok(Some(problems));
    };
    if link.mac.map(crate::ids::format_mac).as_deref() != Some(ep.mac.as_str()) {
        problems.push(format!("interface {ifname} does not have MAC {}", ep.mac));
    }
    let have = inner.addresses().op(|| "list container addresses".into())?;
    for a in &ep.addresses {
        if !have
            .iter()
            .any(|h| h.index == link.index && h.addr == a.addr && h.prefix_len == a.prefix_len)
        {
            problems.push(format!(
                "interface {ifname} lacks address {}/{}",
                a.addr, a.prefix_len
            ));
        }
    }
    let extra: Vec<&ExtraRoute> = routes.iter().filter(|r| r.dst.prefix_len() > 0).collect();
    if !extra.is_empty() {
        let have = inner.routes().op(|| "list container routes".into())?;
        for r in extra {
            let v4 = r.dst.addr().is_ipv4();
            let gw = r.gateway.or_else(|| {
                ep.addresses
                    .iter()
                    .find_map(|a| a.gateway.filter(|g| g.is_ipv4() == v4))
            });
            let found = have
                .iter()
                .any(|h| h.dst == r.dst && h.oif == Some(link.index) && h.gateway == gw);
            if !found {
                problems.push(format!(
                    "route to {} via {} on {ifname} is missing",
                    r.dst,
                    gw.map_or("-".to_string(), |g| g.to_string())
                ));
            }
        }
    }
    Ok(Some(problems))
}
