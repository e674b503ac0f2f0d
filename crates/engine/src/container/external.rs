//! External containers: another runtime owns the process and the network namespace.
//!
//! podman (through the netavark door) and CNI runtimes hand berth a namespace path they
//! created. berth records a container row with an `owner` (the door), gives it endpoints on
//! berth networks exactly as `run` does (same IPAM, veth, firewall elements, published
//! ports, DNS records), and removes them again — never the namespace itself. The runtime's
//! container id becomes berth's id when it is 64 lower-case hex characters (podman's and
//! containerd's are), else a stable 64-hex digest of it, so `berth ps` and `podman ps` agree.
//!
//! [`attach`] is all or nothing; [`detach`] is idempotent, best effort, and works when the
//! namespace is already gone.

use super::create::plan_endpoint;
use crate::endpoint;
use crate::error::KernelContext;
use crate::ids::{name_for, now, parse_mac};
use crate::ports;
use crate::validate;
use crate::{Engine, Error, Result};
use berth_firewall::Update;
use berth_kernel::{netlink::Netlink, netns};
use berth_store::{Container, ContainerState, Endpoint, Network, NetworkMode};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Instant;

/// One network attachment a runtime asks for.
#[derive(Clone, Debug, Default)]
pub struct Attachment {
    /// A berth network name or id.
    pub network: String,
    /// The interface name inside the container (`eth0`).
    pub ifname: String,
    /// Static addresses, at most one per subnet of the network.
    pub ips: Vec<IpAddr>,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub aliases: Vec<String>,
}

/// What a runtime asks for when it attaches its container.
#[derive(Clone, Debug, Default)]
pub struct AttachRequest {
    /// The door: `netavark` or `cni`.
    pub owner: String,
    /// The container id as the runtime knows it.
    pub runtime_id: String,
    /// The container's name; a generated one when `None`.
    pub name: Option<String>,
    /// The runtime's network namespace file.
    pub netns: PathBuf,
    pub attachments: Vec<Attachment>,
    /// Published ports in `-p` syntax; applied when the container has none yet. The runtime
    /// reserves the host ports (podman binds them), so host listeners are not probed.
    pub publish: Vec<String>,
    /// DNS servers the container's names should be forwarded to.
    pub dns: Vec<String>,
    /// Extra arguments for `berth agent` when this call has to start it (`--dns-port N`).
    pub agent_args: Vec<String>,
}

/// berth's id for a runtime's container id.
pub fn berth_id(runtime_id: &str) -> String {
    let hex64 = runtime_id.len() == 64
        && runtime_id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if hex64 {
        return runtime_id.to_string();
    }
    // Four FNV-1a 64 streams with different offsets: stable across releases, 256 bits.
    (0u64..4)
        .map(|k| {
            let mut h = 0xcbf2_9ce4_8422_2325u64 ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for b in runtime_id.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
            format!("{h:016x}")
        })
        .collect()
}

/// The external container with this runtime id and its endpoints, if berth has it.
pub fn find(
    engine: &mut Engine,
    owner: &str,
    runtime_id: &str,
) -> Result<Option<(Container, Vec<Endpoint>)>> {
    let id = berth_id(runtime_id);
    let found = engine.store.read(|tx| -> Result<_> {
        match tx.container(&id)? {
            Some(c) if c.id == id => {
                let eps = tx.endpoints_of_container(&c.id)?;
                Ok(Some((c, eps)))
            }
            _ => Ok(None),
        }
    })?;
    match found {
        Some((c, _)) if c.owner.as_deref() != Some(owner) => Err(Error::Conflict(format!(
            "container {} exists in berth but does not belong to the {owner} door",
            c.name
        ))),
        f => Ok(f),
    }
}

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
    let checked = check(engine, req)?;
    let ns =
        netns::open(&req.netns).op(|| format!("open network namespace {}", req.netns.display()))?;
    let id = berth_id(&req.runtime_id);
    let name = req.name.clone().unwrap_or_else(|| name_for(&id));
    let fresh = Container {
        id: id.clone(),
        name: name.clone(),
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
    let nets: BTreeMap<String, Network> = crate::network::list(engine)?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let (created, eps, published) = engine.store.write(|tx| -> Result<_> {
        let existing = tx.container(&id)?.filter(|c| c.id == id);
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
            Some(_) => false,
            None => {
                if tx.container(&name)?.is_some_and(|o| o.name == name) {
                    return Err(Error::Conflict(format!(
                        "container name {name} is already in use in berth"
                    )));
                }
                tx.insert_container(&fresh)?;
                true
            }
        };
        let before = tx.endpoints_of_container(&id)?;
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
            let ep = plan_endpoint(tx, &id, net, a.ifname.clone(), &a.ips, *mac, &a.aliases)?;
            tx.insert_endpoint(&ep)?;
            eps.push(ep);
        }
        let mut published = Vec::new();
        if !checked.publish.is_empty() && tx.ports_of_container(&id)?.is_empty() {
            let all: Vec<Endpoint> = before.iter().chain(&eps).cloned().collect();
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
        }
        Ok((created, eps, published))
    })?;
    let mut out = Vec::new();
    let built = (|| -> Result<()> {
        let mut fw = crate::fw::open(&mut engine.store)?;
        for (ep, net) in eps.iter().zip(&checked.nets) {
            let default_route = !net.internal && !endpoint::has_default_route(&ns)?;
            endpoint::attach(&engine.paths, &mut fw, net, ep, &ns, default_route)?;
            out.push(Attached {
                endpoint: ep.clone(),
                default_route,
            });
        }
        if !published.is_empty() {
            fw.apply(Update::new().add_ports(&published))?;
        }
        Ok(())
    })();
    if let Err(e) = built {
        let _ = undo(engine, &id, &eps, created, !published.is_empty());
        return Err(e);
    }
    crate::agent::notify_with(
        &engine.paths,
        Some(("setup", t0.elapsed())),
        &req.agent_args,
    );
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
        return super::remove::teardown(engine, &c, eps);
    }
    if published {
        let all = super::endpoints(engine, id)?;
        super::remove::unpublish(engine, &c, &all)?;
        engine
            .store
            .write(|tx| -> Result<()> { Ok(tx.delete_ports(id)?) })?;
    }
    let errors = detach_endpoints(engine, eps);
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Incomplete(errors)),
    }
}

fn detach_endpoints(engine: &mut Engine, eps: &[Endpoint]) -> Vec<String> {
    let mut errors = Vec::new();
    for ep in eps {
        match crate::network::find(engine, &ep.network_id) {
            Ok(net) => errors.extend(endpoint::detach(&engine.paths, &mut engine.store, &net, ep)),
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

/// Detaches a runtime's container from `networks` (names or ids; empty: from all). The row
/// goes with its last endpoint. Idempotent: what is already gone — the container, an
/// endpoint, the namespace — is success. Returns whether anything was removed.
pub fn detach(
    engine: &mut Engine,
    owner: &str,
    runtime_id: &str,
    networks: &[String],
) -> Result<bool> {
    let t0 = Instant::now();
    let Some((c, eps)) = find(engine, owner, runtime_id)? else {
        return Ok(false);
    };
    let mut ids = Vec::new();
    for n in networks {
        match crate::network::find(engine, n) {
            Ok(net) => ids.push(net.id),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (gone, stay): (Vec<Endpoint>, Vec<Endpoint>) = eps
        .into_iter()
        .partition(|e| networks.is_empty() || ids.contains(&e.network_id));
    if stay.is_empty() {
        super::remove::teardown(engine, &c, &gone)?;
        return Ok(true);
    }
    if gone.is_empty() {
        return Ok(false);
    }
    let mut errors = Vec::new();
    let nets: BTreeMap<String, Network> = crate::network::list(engine)?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let all: Vec<Endpoint> = gone.iter().chain(&stay).cloned().collect();
    let target = crate::fw::published_endpoint(&all, &nets).map(|e| e.id.clone());
    if target.is_some_and(|t| gone.iter().any(|e| e.id == t)) {
        // The ports lead into an endpoint that goes: they go too.
        if let Err(e) = super::remove::unpublish(engine, &c, &all) {
            errors.push(e.to_string());
        }
        if let Err(e) = engine
            .store
            .write(|tx| -> Result<()> { Ok(tx.delete_ports(&c.id)?) })
        {
            errors.push(e.to_string());
        }
    }
    errors.extend(detach_endpoints(engine, &gone));
    crate::agent::notify_if_running(&engine.paths, Some(("teardown", t0.elapsed())));
    match errors.is_empty() {
        true => Ok(true),
        false => Err(Error::Incomplete(errors)),
    }
}

/// Sets the DNS servers of every `owner` container on `network` (netavark's `update
/// --network-dns-servers`): their names are forwarded there from now on. Returns how many
/// containers changed.
pub fn set_network_dns(
    engine: &mut Engine,
    owner: &str,
    network: &str,
    servers: &[String],
) -> Result<usize> {
    for d in servers {
        berth_ipam::parse_ip(d)?;
    }
    let net = crate::network::find(engine, network)?;
    let n = engine.store.write(|tx| -> Result<usize> {
        let mut n = 0;
        for c in tx.containers()? {
            let on = tx
                .endpoints_of_container(&c.id)?
                .iter()
                .any(|e| e.network_id == net.id);
            if on && c.owner.as_deref() == Some(owner) {
                tx.set_dns(&c.id, servers)?;
                n += 1;
            }
        }
        Ok(n)
    })?;
    crate::agent::notify_if_running(&engine.paths, None);
    Ok(n)
}

/// Every external container of `owner` with its endpoints.
pub fn list(engine: &mut Engine, owner: &str) -> Result<Vec<(Container, Vec<Endpoint>)>> {
    Ok(super::list(engine)?
        .into_iter()
        .filter(|(c, _)| c.owner.as_deref() == Some(owner))
        .collect())
}

/// How the kernel differs from the endpoint berth recorded for `ifname` of a runtime's
/// container: missing host end, namespace, interface, address or MAC, or a wrong bridge.
/// `Ok(None)` when berth has no such attachment; `Ok(Some(vec![]))` when all is in place.
pub fn verify(
    engine: &mut Engine,
    owner: &str,
    runtime_id: &str,
    network: &str,
    ifname: &str,
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
    Ok(Some(problems))
}

#[cfg(test)]
mod tests {
    use super::berth_id;

    #[test]
    fn runtime_ids_map_to_stable_64_hex_ids() {
        let podman = "a".repeat(64);
        assert_eq!(berth_id(&podman), podman);
        let a = berth_id("pod-1");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, berth_id("pod-1"));
        assert_ne!(a, berth_id("pod-2"));
        assert_ne!(berth_id(&"A".repeat(64)), "A".repeat(64));
    }
}
