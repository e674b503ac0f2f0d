//! `berth gc`: reconcile this host's kernel state and files with the store.
//!
//! Leftovers of a crash are found by berth's naming (host veth ends `bth…`, bridges of
//! networks the store knows, VXLAN devices `vx-…` and bridges `ov-…` of no known overlay, namespace files and container directories under `<run-root>`)
//! and removed; nothing that berth did not name is touched.

use crate::bridge;
use crate::error::KernelContext;
use crate::ids::now;
use crate::{container, Engine, Result};
use berth_kernel::{netlink::Netlink, netns};
use berth_store::ContainerState;
use std::collections::BTreeSet;

pub(crate) fn run(engine: &mut Engine) -> Result<Vec<String>> {
    let mut done = Vec::new();
    // 1. Containers whose creator died mid-setup: remove what it built.
    //    Containers whose supervisor died: record the exit; honour --rm.
    //    External containers whose runtime's namespace is gone: their runtime lost them
    //    (its later DEL or teardown finds nothing, which is success). Live ones are its own.
    for (c, eps) in container::list(engine)? {
        if c.owner.is_some() {
            if !container::external::namespace_exists(&c) {
                container::remove::teardown(engine, &c, &eps)?;
                done.push(format!(
                    "container {}: removed (its runtime's namespace is gone)",
                    c.name
                ));
            }
            continue;
        }
        if c.state == ContainerState::Created && !container::creator_alive(&c) {
            container::remove(engine, &c.id, true)?;
            done.push(format!(
                "container {}: removed (its creator died during setup)",
                c.name
            ));
            continue;
        }
        if c.state == ContainerState::Running && !container::is_running(&c) {
            let at = now();
            engine
                .store
                .write(|tx| -> Result<()> { Ok(tx.set_exited(&c.id, -1, &at)?) })?;
            done.push(format!("container {}: marked exited", c.name));
            if c.auto_remove {
                container::remove(engine, &c.id, true)?;
                done.push(format!("container {}: removed (--rm)", c.name));
            }
        }
    }
    let (networks, endpoints, containers) = engine
        .store
        .read(|tx| -> Result<_> { Ok((tx.networks()?, tx.all_endpoints()?, tx.containers()?)) })?;
    // 2. Links: veth host ends no endpoint owns; bridges of door and overlay networks
    //    without endpoints.
    let owned: BTreeSet<&str> = endpoints.iter().map(|e| e.host_ifname.as_str()).collect();
    // VXLAN devices `vx-…` and bridges `ov-…` of overlays this host has no mirror of (a
    // bridge network's own bridge may be called `ov-…` too: every known name is kept).
    let known: BTreeSet<String> = networks
        .iter()
        .flat_map(|n| {
            let vx = (n.driver == "overlay").then(|| crate::overlay::vxlan_name(&n.id));
            n.bridge.clone().into_iter().chain(vx)
        })
        .collect();
    let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
    for link in nl.links().op(|| "list links".into())? {
        if link.name.starts_with("bth") && !owned.contains(link.name.as_str()) {
            // Deleting one end of a pair deletes its peer too: gone is fine.
            match nl.delete_link(link.index) {
                Err(e) if e.is_not_found() => continue,
                r => r.op(|| format!("delete stale veth {}", link.name))?,
            }
            done.push(format!("link {}: removed (no endpoint)", link.name));
        }
        let stale_overlay = match link.kind.as_deref() {
            Some("vxlan") => link.name.starts_with("vx-"),
            Some("bridge") => link.name.starts_with("ov-"),
            _ => false,
        } && !known.contains(&link.name);
        if stale_overlay {
            match nl.delete_link(link.index) {
                Err(e) if e.is_not_found() => continue,
                r => r.op(|| format!("delete stale overlay link {}", link.name))?,
            }
            done.push(format!("link {}: removed (no overlay network)", link.name));
        }
    }
    // Bridges of networks that live only with their endpoints and have none here.
    for net in networks
        .iter()
        .filter(|n| n.bridge.is_some() && bridge::lives_with_endpoints(n))
    {
        let active = endpoints.iter().any(|e| e.network_id == net.id);
        let name = net.bridge.as_deref().unwrap_or_default();
        let present = nl
            .link_by_name(name)
            .op(|| format!("look up {name}"))?
            .is_some();
        if !active && present {
            let errors = bridge::deactivate(net);
            done.push(format!("bridge {name}: removed (no endpoint)"));
            if !errors.is_empty() {
                return Err(crate::Error::Incomplete(errors));
            }
        }
    }
    // 3. The firewall: rebuilt whole from the store, which drops stale elements and
    //    restores missing ones.
    if !endpoints.is_empty() {
        let n = crate::fw::reload(&mut engine.store)?;
        done.push(format!("firewall: reinstalled with {n} elements"));
    }
    // 4. Namespace files and container directories that no container owns.
    let ids: BTreeSet<&str> = containers.iter().map(|c| c.id.as_str()).collect();
    for dir in [engine.paths.netns_dir(), engine.paths.containers_dir()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            if ids.contains(name.as_str()) {
                continue;
            }
            let path = entry.path();
            if dir == engine.paths.netns_dir() {
                netns::remove(&path).op(|| format!("remove {}", path.display()))?;
            } else {
                std::fs::remove_dir_all(&path).op(|| format!("remove {}", path.display()))?;
            }
            done.push(format!("{}: removed (no container)", path.display()));
        }
    }
    Ok(done)
}
