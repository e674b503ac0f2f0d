//! `network connect` and `network disconnect` of a live or stopped container.

use super::create::plan_endpoint;
use crate::endpoint;
use crate::error::KernelContext;
use crate::files;
use crate::observe::events;
use crate::validate;
use crate::{Engine, Error, Result};
use berth_ipam as ipam;
use berth_kernel::netns;
use berth_store::{Container, NetworkMode};
use std::net::IpAddr;

fn rewrite_hosts(engine: &mut Engine, c: &Container) -> Result<()> {
    let eps = super::endpoints(engine, &c.id)?;
    let addrs: Vec<IpAddr> = eps
        .iter()
        .flat_map(|e| e.addresses.iter().map(|a| a.addr))
        .collect();
    let path = crate::files::ContainerFiles::at(&engine.paths.container_dir(&c.id)).hosts;
    // Written in place: the bind mount inside the container sees the same inode.
    std::fs::write(&path, files::hosts(&c.hostname, &c.name, &addrs))
        .op(|| format!("write {}", path.display()))
}

/// Attaches a container to one more network.
pub fn connect(
    engine: &mut Engine,
    network: &str,
    container: &str,
    ip: Option<&str>,
    aliases: &[String],
) -> Result<()> {
    for a in aliases {
        validate::name("alias", a)?;
    }
    let ip = ip.map(ipam::parse_ip).transpose()?;
    let net = crate::network::find(engine, network)?;
    let c = super::find(engine, container)?;
    super::require_own(&c)?;
    if net.driver != "bridge" {
        return Err(Error::Invalid(format!(
            "network {} uses the {} driver: containers cannot be connected to it",
            net.name, net.driver
        )));
    }
    if c.mode != NetworkMode::Bridge {
        return Err(Error::Invalid(format!(
            "container {} uses {} networking: it cannot join other networks",
            c.name,
            c.mode.as_str()
        )));
    }
    let mut fw = crate::fw::open(&mut engine.store)?;
    let path = c
        .netns
        .clone()
        .ok_or_else(|| Error::Invalid(format!("container {} has no network namespace", c.name)))?;
    let ns = netns::open(std::path::Path::new(&path))
        .op(|| format!("open network namespace of container {} ({path})", c.name))?;
    let ep = engine.store.write(|tx| -> Result<_> {
        let eps = tx.endpoints_of_container(&c.id)?;
        if eps.iter().any(|e| e.network_id == net.id) {
            return Err(Error::Conflict(format!(
                "container {} is already connected to network {}",
                c.name, net.name
            )));
        }
        let n = (0..).find(|i| !eps.iter().any(|e| e.ifname == format!("eth{i}")));
        let ifname = format!("eth{}", n.expect("unbounded range"));
        let ep = plan_endpoint(tx, &c.id, &net, ifname, ip.as_slice(), None, aliases)?;
        tx.insert_endpoint(&ep)?;
        Ok(ep)
    })?;
    let default_route = !net.internal && !endpoint::has_default_route(&ns).unwrap_or(true);
    if let Err(e) = endpoint::attach(
        &engine.paths,
        &mut engine.store,
        &mut fw,
        &net,
        &ep,
        endpoint::Inside {
            netns: &ns,
            nl: None,
        },
        default_route,
    ) {
        // A pooled host-end name is retired with the endpoint (it is never given again).
        let _ = engine.store.write(|tx| -> Result<()> {
            tx.retire_hook_name(&ep.host_ifname)?;
            Ok(tx.delete_endpoint(&ep.id)?)
        });
        return Err(e);
    }
    crate::agent::notify(&engine.paths, &c.id, None);
    events::endpoints(&mut engine.store, "connect", &c, std::slice::from_ref(&ep));
    rewrite_hosts(engine, &c)
}

/// Detaches a container from a network.
pub fn disconnect(engine: &mut Engine, network: &str, container: &str) -> Result<()> {
    let net = crate::network::find(engine, network)?;
    let c = super::find(engine, container)?;
    super::require_own(&c)?;
    let eps = super::endpoints(engine, &c.id)?;
    let ep = eps
        .into_iter()
        .find(|e| e.network_id == net.id)
        .ok_or_else(|| {
            Error::Conflict(format!(
                "container {} is not connected to network {}",
                c.name, net.name
            ))
        })?;
    let mut errors = endpoint::detach(
        &engine.paths,
        &mut engine.store,
        &net,
        &ep,
        None,
        endpoint::HostEnd::Delete,
        true,
    );
    events::endpoints(
        &mut engine.store,
        "disconnect",
        &c,
        std::slice::from_ref(&ep),
    );
    crate::agent::notify_if_running(&engine.paths, None);
    if let Err(e) = rewrite_hosts(engine, &c) {
        errors.push(e.to_string());
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Incomplete(errors)),
    }
}
