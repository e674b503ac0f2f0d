//! `attach`: all or nothing — record, plan, build, publish; undo on any failure.

use super::{berth_id, AttachRequest};
use crate::container::create::plan_endpoint;
use crate::endpoint;
use crate::error::KernelContext;
use crate::ids::{now, parse_mac};
use crate::ports;
use crate::validate;
use crate::{Engine, Error, Result};
use berth_firewall::Update;
use berth_kernel::netns;
use berth_store::{Container, ContainerState, Endpoint, Network, NetworkMode};
use std::time::Instant;

struct Checked {
    nets: Vec<Network>,
    macs: Vec<Option<[u8; 6]>>,
    publish: Vec<ports::Spec>,
}

fn check(engine: &mut Engine, req: &AttachRequest) -> Result<Checked> {
    if req.runtime_id.is_empty() {
        return Err(Error::Invalid("empty container id".into()));
    }
    if let Some(n) = &req.name {
        validate::name("container", n)?;
    }
    if req.attachments.is_empty() {
        return Err(Error::Invalid("no network to attach".into()));
    }
    for d in &req.dns {
        berth_ipam::parse_ip(d)?;
    }
    let mut nets: Vec<Network> = Vec::new();
    let mut macs = Vec::new();
    for (i, a) in req.attachments.iter().enumerate() {
        validate::ifname(&a.ifname)?;
        for al in &a.aliases {
            validate::name("alias", al)?;
        }
        let net = crate::network::find(engine, &a.network)?;
        if net.driver != "bridge" {
            return Err(Error::Invalid(format!(
                "network {} uses the {} driver: only bridge networks take endpoints",
                net.name, net.driver
            )));
        }
        if nets.iter().any(|n| n.id == net.id) {
            return Err(Error::Invalid(format!("network {} given twice", net.name)));
        }
        if req.attachments[..i].iter().any(|o| o.ifname == a.ifname) {
            return Err(Error::Invalid(format!(
                "interface name {} given twice",
                a.ifname
            )));
        }
        let mac = match &a.mac {
            None => None,
            Some(m) => Some(parse_mac(m).filter(|b| b[0] & 1 == 0).ok_or_else(|| {
                Error::Invalid(format!(
                    "invalid MAC address {m:?}: use a unicast aa:bb:cc:dd:ee:ff"
                ))
            })?),
        };
        super::ipam::check(&net, a)?;
        nets.push(net);
        macs.push(mac);
    }
    let publish = ports::parse_all(&req.publish)?;
    Ok(Checked {
        nets,
        macs,
        publish,
    })
}

/// One endpoint [`attach`] made, and whether it carries the namespace's default route.
#[derive(Clone, Debug)]
pub struct Attached {
    pub endpoint: Endpoint,
    pub default_route: bool,
}

/// Attaches a runtime's container to berth networks: records it (or adds to the record of an
/// earlier call), creates the endpoints inside `req.netns`, publishes its ports. All or
/// nothing. Returns the new endpoints, in the order of `req.attachments`.
pub fn attach(engine: &mut Engine, req: &AttachRequest) -> Result<Vec<Attached>> {
    let t0 = Instant::now();
    let mut phases = crate::timing::Phases::new("attach");
    let checked = check(engine, req)?;
    let ns =
        netns::open(&req.netns).op(|| format!("open network namespace {}", req.netns.display()))?;
    let id = berth_id(&req.runtime_id);
    // The name is settled in the transaction below: the recorded one, or a free one.
    let mut fresh = Container {
        id: id.clone(),
        name: String::new(),
        hostname: id[..12].to_string(),
        command: Vec::new(),
        mode: NetworkMode::Bridge,
        netns: Some(req.netns.display().to_string()),
        pid: None,
        pid_start: None,
        state: ContainerState::Running,
        exit_code: None,
        auto_remove: false,
        dns: req.dns.clone(),
        created: now(),
        started: Some(now()),
        finished: None,
        owner: Some(req.owner.clone()),
    };
    // A record left from a namespace that is gone (a reboot, a runtime that crashed before
    // its teardown) is stale: clear it so that the container can start again.
    if let Some((old, eps)) = super::find(engine, &req.owner, &req.runtime_id)? {
        if old.netns != fresh.netns && !super::namespace_exists(&old) {
            crate::container::remove::teardown(engine, &old, &eps)?;
        }
    }
    phases.mark("check");
    let (created, eps, published, relays) = engine.store.write(|tx| -> Result<_> {
        let existing = tx.container_by_id(&id)?;
        let created = match &existing {
            Some(c) if c.owner != fresh.owner => {
                return Err(Error::Conflict(format!(
                    "container id {} is taken by berth container {}",
                    req.runtime_id, c.name
                )))
            }
            Some(c) if c.netns != fresh.netns => {
                return Err(Error::Conflict(format!(
                    "container {} is attached in namespace {}, not {}",
                    c.name,
                    c.netns.as_deref().unwrap_or("-"),
                    req.netns.display()
                )))
            }
            Some(c) => {
                fresh.name = c.name.clone();
                false
            }
            None => {
                fresh.name = crate::container::free_name(tx, &id, req.name.as_deref())?
                    .ok_or_else(|| {
                        Error::Conflict(format!(
                            "container name {} is already in use in berth",
                            req.name.as_deref().unwrap_or_default()
                        ))
                    })?;
                tx.insert_container(&fresh)?;
                true
            }
        };
        let name = &fresh.name;
        // A container recorded just now has no endpoints or ports yet.
        let before = match created {
            true => Vec::new(),
            false => tx.endpoints_of_container(&id)?,
        };
        let mut eps = Vec::new();
        for ((a, net), mac) in req.attachments.iter().zip(&checked.nets).zip(&checked.macs) {
            if let Some(e) = before.iter().find(|e| e.network_id == net.id) {
                return Err(Error::Conflict(format!(
                    "container {name} is already attached to network {} (as {})",
                    net.name, e.ifname
                )));
            }
            if before.iter().any(|e| e.ifname == a.ifname) {
                return Err(Error::Conflict(format!(
                    "container {name} already has an interface {}",
                    a.ifname
                )));
            }
            let ips = super::ipam::addresses(tx, net, a)?;
            let ep = plan_endpoint(tx, &id, net, a.ifname.clone(), &ips, *mac, &a.aliases)?;
            tx.insert_endpoint(&ep)?;
            eps.push(ep);
        }
        let mut published = Vec::new();
        let mut relays = Vec::new();
        if !checked.publish.is_empty() && (created || tx.ports_of_container(&id)?.is_empty()) {
            let all: Vec<Endpoint> = before.iter().chain(&eps).cloned().collect();
            // The networks of those endpoints: this call's, and those of an earlier call's.
            let mut nets = tx.networks_of(&before)?;
            for n in &checked.nets {
                nets.insert(n.id.clone(), n.clone());
            }
            let ep = crate::fw::published_endpoint(&all, &nets).ok_or_else(|| {
                Error::Invalid(format!(
                    "ports need a network that is not internal, not {}",
                    checked
                        .nets
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            let (v4, v6) = ports::targets(std::slice::from_ref(ep));
            ports::check_targets(&checked.publish, v4, v6)?;
            let rows = ports::allocate(tx, &id, &checked.publish, false)?;
            tx.insert_ports(&rows)?;
            published = ports::elements(&rows, v4, v6);
            // The container's `[::1]` relays (these are all its ports), for the agent.
            relays = rows
                .iter()
                .filter_map(|p| ports::relay::relay_of(p, &all, &nets))
                .collect();
            relays.sort();
        }
        Ok((created, eps, published, relays))
    })?;
    phases.mark("record");
    let mut out = Vec::new();
    let built = (|| -> Result<()> {
        let mut fw = crate::fw::open(&mut engine.store)?;
        // Ports first, as `create` does: their elements lead nowhere until the address
        // exists, and the commit's RCU grace period (which the process's exit would wait
        // for when it closes the socket) passes while the links are made.
        if !published.is_empty() {
            fw.apply(Update::new().add_ports(&published))?;
        }
        // One socket in the runtime's namespace serves every endpoint below.
        let mut inner = netns::open_in(&ns, berth_kernel::netlink::Netlink::open)
            .op(|| "enter container namespace".into())?
            .op(|| "open netlink socket in container".into())?;
        for ((ep, net), a) in eps.iter().zip(&checked.nets).zip(&req.attachments) {
            let default_route = !net.internal && !endpoint::has_default_route_via(&mut inner)?;
            let inside = endpoint::Inside {
                netns: &ns,
                nl: Some(&mut inner),
            };
            endpoint::attach(
                &engine.paths,
                &mut engine.store,
                &mut fw,
                net,
                ep,
                inside,
                default_route,
            )?;
            super::ipam::add_routes(&ns, ep, &a.routes, default_route)?;
            out.push(Attached {
                endpoint: ep.clone(),
                default_route,
            });
        }
        Ok(())
    })();
    if let Err(e) = built {
        let _ = undo(engine, &id, &eps, created, !published.is_empty());
        return Err(e);
    }
    phases.mark("build");
    // Ports and names must be served when the runtime starts the container; anything
    // else the agent may pick up just after.
    let timing = Some(("setup", t0.elapsed()));
    let wait = match (req.uses_names, checked.publish.is_empty()) {
        (true, _) => crate::agent::Wait::Names(&id),
        (false, false) => crate::agent::Wait::Ports(&id),
        (false, true) => crate::agent::Wait::No,
    };
    // Ports and no names: the door binds the `[::1]` relays itself and hands them over.
    match wait {
        crate::agent::Wait::Ports(_) => {
            crate::agent::adopt_ports(&engine.paths, timing, &req.agent_args, &id, &relays)
        }
        _ => crate::agent::notify_with(&engine.paths, timing, &req.agent_args, wait),
    }
    phases.mark("agent");
    Ok(out)
}

/// Undoes a failed attach: its endpoints, its ports, and the row when it made it.
fn undo(
    engine: &mut Engine,
    id: &str,
    eps: &[Endpoint],
    created: bool,
    published: bool,
) -> Result<()> {
    let c = engine
        .store
        .read(|tx| -> Result<_> { Ok(tx.container(id)?) })?
        .filter(|c| c.id == id);
    let Some(c) = c else { return Ok(()) };
    if created {
        return crate::container::remove::teardown(engine, &c, eps);
    }
    if published {
        let all = crate::container::endpoints(engine, id)?;
        let mut fw = berth_firewall::Firewall::open()?;
        crate::container::remove::unpublish(engine, &mut fw, &c, &all, &[])?;
        engine
            .store
            .write(|tx| -> Result<()> { Ok(tx.delete_ports(id)?) })?;
    }
    let errors = super::detach::detach_endpoints(engine, eps);
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Incomplete(errors)),
    }
}
