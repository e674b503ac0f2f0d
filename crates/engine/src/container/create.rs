//! `run`'s first half: validate, record, and build the container's network.

use crate::endpoint;
use crate::error::KernelContext;
use crate::files;
use crate::ids::{format_mac, mac_for, new_id, now};
use crate::observe::events;
use crate::ports;
use crate::validate;
use crate::{Engine, Error, Result};
use berth_firewall::{Firewall, Update};
use berth_ipam::{self as ipam, SubnetSpec};
use berth_kernel::{netlink::Netlink, netns};
use berth_store::{Container, ContainerState, Endpoint, EndpointAddress, Network, NetworkMode};
use std::net::IpAddr;

/// What `berth run` asks for.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    pub name: Option<String>,
    /// Network names or ids; empty means the default `bridge`.
    pub networks: Vec<String>,
    /// Static IPv4 address on the first network.
    pub ip: Option<String>,
    pub aliases: Vec<String>,
    pub hostname: Option<String>,
    pub dns: Vec<String>,
    /// `-p` values.
    pub publish: Vec<String>,
    pub auto_remove: bool,
    pub command: Vec<String>,
}

struct Checked {
    id: String,
    hostname: String,
    mode: NetworkMode,
    networks: Vec<Network>,
    ip: Option<IpAddr>,
    publish: Vec<ports::Spec>,
}

fn check(engine: &mut Engine, req: &RunRequest) -> Result<Checked> {
    if req.command.is_empty() {
        return Err(Error::Invalid("no command given to run".into()));
    }
    let id = new_id();
    // Without a name, the container gets a generated one in its transaction (`free_name`).
    if let Some(name) = &req.name {
        validate::name("container", name)?;
    }
    let hostname = req.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    validate::hostname(&hostname)?;
    for a in &req.aliases {
        validate::name("alias", a)?;
    }
    for d in &req.dns {
        ipam::parse_ip(d)?;
    }
    let ip = req.ip.as_deref().map(ipam::parse_ip).transpose()?;
    let publish = ports::parse_all(&req.publish)?;
    let refs = match req.networks.is_empty() {
        true => vec![crate::network::DEFAULT_NETWORK.to_string()],
        false => req.networks.clone(),
    };
    let mut networks: Vec<Network> = Vec::new();
    for r in &refs {
        let net = crate::network::find(engine, r)?;
        if networks.iter().any(|n| n.id == net.id) {
            return Err(Error::Invalid(format!("network {} given twice", net.name)));
        }
        networks.push(net);
    }
    for net in networks.iter_mut().filter(|n| n.driver == "overlay") {
        *net = crate::overlay::refresh(engine, net)?;
    }
    let special = networks
        .iter()
        .find(|n| n.driver != "bridge" && n.driver != "overlay");
    let mode = match special {
        Some(n) if networks.len() > 1 => {
            return Err(Error::Invalid(format!(
                "network {} ({} mode) cannot be combined with other networks",
                n.name, n.driver
            )))
        }
        Some(n) => NetworkMode::parse(&n.driver).unwrap_or(NetworkMode::None),
        None => NetworkMode::Bridge,
    };
    if !publish.is_empty() && (mode != NetworkMode::Bridge || networks.iter().all(|n| n.internal)) {
        return Err(Error::Invalid(format!(
            "-p needs a bridge network that is not internal, not {}",
            networks
                .iter()
                .map(|n| n.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if mode != NetworkMode::Bridge && (ip.is_some() || !req.aliases.is_empty()) {
        return Err(Error::Invalid(format!(
            "--ip and --alias need a bridge network, not {} mode",
            mode.as_str()
        )));
    }
    Ok(Checked {
        id,
        hostname,
        mode,
        networks: match mode {
            NetworkMode::Bridge => networks,
            _ => Vec::new(),
        },
        ip,
        publish,
    })
}

pub(crate) fn specs(net: &Network) -> Vec<SubnetSpec> {
    net.subnets
        .iter()
        .map(|s| SubnetSpec {
            subnet: s.subnet,
            gateway: s.gateway,
            range: s.range,
        })
        .collect()
}

/// Allocates addresses for a new endpoint of `container_id` on `net` inside a write
/// transaction: the static `ips` where given (each must fit a different subnet), else the
/// lowest free address of each subnet. The MAC is `mac` when given, else derived from the
/// first IPv4 address.
pub(crate) fn plan_endpoint(
    tx: &berth_store::Tx<'_>,
    container_id: &str,
    net: &Network,
    ifname: String,
    ips: &[IpAddr],
    mac: Option<[u8; 6]>,
    aliases: &[String],
) -> Result<Endpoint> {
    let specs = specs(net);
    let mut addresses = Vec::new();
    let mut taken_subnets = Vec::new();
    for &ip in ips {
        let i = ipam::subnet_for(&specs, ip).ok_or_else(|| {
            Error::Invalid(format!(
                "address {ip} is outside the subnets of network {} ({})",
                net.name,
                specs
                    .iter()
                    .map(|s| s.subnet.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        if taken_subnets.contains(&i) {
            return Err(Error::Invalid(format!(
                "two static addresses given for subnet {} of network {}",
                specs[i].subnet, net.name
            )));
        }
        taken_subnets.push(i);
        let used: std::collections::BTreeSet<IpAddr> = tx
            .address_taken(&net.id, ip)?
            .then_some(ip)
            .into_iter()
            .collect();
        ipam::check_static(&specs[i], ip, &used).map_err(|e| match e {
            ipam::Error::InUse { .. } => Error::Conflict(format!(
                "address {ip} is already in use on network {}",
                net.name
            )),
            other => Error::Ipam(other),
        })?;
    }
    for s in &specs {
        let addr = match ips.iter().find(|a| s.subnet.contains(*a)) {
            Some(a) => *a,
            None => {
                // After the last address given out, not the lowest free one (see
                // `ipam::allocate_next`); a few point lookups, whatever is in use.
                let from = tx.address_cursor(&net.id, &s.subnet)?;
                let addr = ipam::allocate_next(s, from, |a| tx.address_taken(&net.id, a))??;
                if let Some(next) = ipam::after(s, addr) {
                    tx.set_address_cursor(&net.id, &s.subnet, next)?;
                }
                addr
            }
        };
        addresses.push(EndpointAddress {
            addr,
            prefix_len: s.subnet.prefix_len(),
            gateway: Some(s.gateway),
        });
    }
    let id = new_id();
    let first_v4 = addresses.iter().map(|a| a.addr).find(IpAddr::is_ipv4);
    // On the fast path, a name the chain already lists (crate::bridge::hooks_ahead).
    let pooled = match crate::bridge::fast(net) && crate::bridge::hooks_ahead() {
        true => tx.take_hook_name()?,
        false => None,
    };
    Ok(Endpoint {
        host_ifname: pooled.unwrap_or_else(|| format!("bth{}", &id[..11])),
        id,
        container_id: container_id.to_string(),
        network_id: net.id.clone(),
        ifname,
        mac: format_mac(mac.unwrap_or_else(|| mac_for(first_v4))),
        aliases: aliases.to_vec(),
        addresses,
    })
}

/// Creates a container and its network (not its process). All or nothing.
pub fn create(engine: &mut Engine, req: &RunRequest) -> Result<Container> {
    let t0 = std::time::Instant::now();
    let mut phases = crate::timing::Phases::new("create");
    let c = check(engine, req)?;
    phases.mark("check");
    let netns_path = (c.mode != NetworkMode::Host).then(|| engine.paths.netns(&c.id));
    let mut container = Container {
        id: c.id.clone(),
        // Settled in the transaction below.
        name: String::new(),
        hostname: c.hostname.clone(),
        command: req.command.clone(),
        mode: c.mode,
        netns: netns_path.as_ref().map(|p| p.display().to_string()),
        // Until the container's process starts, the pid is the creating berth's: if that
        // dies mid-setup, `gc` knows the half-built container is a crash's leftover.
        pid: Some(std::process::id() as i32),
        pid_start: berth_kernel::process::start_time(std::process::id() as i32),
        state: ContainerState::Created,
        exit_code: None,
        auto_remove: req.auto_remove,
        dns: req.dns.clone(),
        created: now(),
        started: None,
        finished: None,
        owner: None,
    };
    // Overlay addresses are claimed in the cluster store first (given back on failure).
    let mut claims = crate::overlay::claims::Claims::begin(&engine.paths, &c.id, &c.networks)?;
    let mut fixed: Vec<Option<IpAddr>> = Vec::new();
    for (i, net) in c.networks.iter().enumerate() {
        let wanted = if i == 0 { c.ip } else { None };
        fixed.push(match net.driver.as_str() {
            "overlay" => match claims.claim(net, wanted) {
                Ok(a) => Some(a),
                Err(e) => {
                    claims.release();
                    return Err(e);
                }
            },
            _ => wanted,
        });
    }
    let recorded = engine.store.write(|tx| -> Result<_> {
        container.name = super::free_name(tx, &c.id, req.name.as_deref())?.ok_or_else(|| {
            Error::Conflict(format!(
                "container name {} is already in use",
                req.name.as_deref().unwrap_or_default()
            ))
        })?;
        tx.insert_container(&container)?;
        let mut eps = Vec::new();
        for (i, net) in c.networks.iter().enumerate() {
            let ep = plan_endpoint(
                tx,
                &c.id,
                net,
                format!("eth{i}"),
                fixed[i].as_slice(),
                None,
                &req.aliases,
            )?;
            tx.insert_endpoint(&ep)?;
            eps.push(ep);
        }
        let mut published = Vec::new();
        if !c.publish.is_empty() {
            let nets = c
                .networks
                .iter()
                .map(|n| (n.id.clone(), n.clone()))
                .collect();
            let ep = crate::fw::published_endpoint(&eps, &nets).expect("checked: not internal");
            let (v4, v6) = ports::targets(std::slice::from_ref(ep));
            ports::check_targets(&c.publish, v4, v6)?;
            let rows = ports::allocate(tx, &c.id, &c.publish, true)?;
            tx.insert_ports(&rows)?;
            published = ports::elements(&rows, v4, v6);
        }
        Ok((eps, published))
    });
    let (endpoints, published) = match recorded {
        Ok(r) => r,
        Err(e) => {
            claims.release();
            return Err(e);
        }
    };
    phases.mark("record");
    // The firewall opens after the rows exist: when it must be (re)installed from the store,
    // this container's ports are part of it, and a crash there leaves a row `gc` cleans up.
    // The port elements go in first: each nf_tables commit leaves the kernel an RCU grace
    // period of clean-up, which the process's exit (closing the socket) waits for; begun
    // now, it passes while the namespace and links are built. Until the container's address
    // exists the elements lead nowhere; a failure below removes them with the rest.
    let mut fw = None;
    let built = (|| {
        if !c.networks.is_empty() {
            let mut opened = crate::fw::open(&mut engine.store)?;
            if !published.is_empty() {
                opened.apply(Update::new().add_ports(&published))?;
            }
            fw = Some(opened);
        }
        phases.mark("firewall");
        build(engine, &c, &container, &endpoints, fw.as_mut(), &mut phases)
    })()
    .and_then(|()| claims.publish(&container, &endpoints, &c.networks));
    if let Err(e) = built {
        let _ = super::remove::teardown(engine, &container, &endpoints);
        claims.release();
        return Err(e);
    }
    if !c.networks.is_empty() {
        crate::agent::notify(&engine.paths, &container.id, Some(("setup", t0.elapsed())));
    }
    let nets: Vec<&str> = c.networks.iter().map(|n| n.name.as_str()).collect();
    let nets = match nets.is_empty() {
        true => c.mode.as_str().to_string(),
        false => nets.join(","),
    };
    let created = events::event(
        "container",
        "create",
        (&container.id, &container.name),
        &[("networks", &nets)],
    );
    events::with_endpoints(
        &mut engine.store,
        &[created],
        "connect",
        Some(&container),
        &endpoints,
        &[],
    );
    phases.mark("events");
    Ok(container)
}

/// The kernel and file side of `create`.
fn build(
    engine: &mut Engine,
    c: &Checked,
    container: &Container,
    endpoints: &[Endpoint],
    mut fw: Option<&mut Firewall>,
    phases: &mut crate::timing::Phases,
) -> Result<()> {
    if let Some(path) = &container.netns {
        let path = std::path::Path::new(path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).op(|| format!("create {}", dir.display()))?;
        }
        // One thread makes the namespace and, inside it, opens the socket everything below
        // uses (links on IPv4-only networks get no IPv6: see endpoint::veth).
        let mut inner = netns::create_with(path, Netlink::open)
            .op(|| format!("create network namespace {}", path.display()))?
            .op(|| "open netlink socket in container".into())?;
        let ns = netns::open(path).op(|| format!("open network namespace {}", path.display()))?;
        phases.mark("netns");
        if let Some(lo) = inner.link_by_name("lo").op(|| "look up lo".into())? {
            inner.set_up(lo.index).op(|| "bring lo up".into())?;
        }
        // The default route goes via the first network that lets traffic out.
        let routed = c.networks.iter().position(|n| !n.internal);
        for (i, (ep, net)) in endpoints.iter().zip(&c.networks).enumerate() {
            let default_route = Some(i) == routed;
            let fw = fw
                .as_deref_mut()
                .expect("bridge endpoints come with a firewall");
            let inside = endpoint::Inside {
                netns: &ns,
                nl: Some(&mut inner),
            };
            endpoint::attach(
                &engine.paths,
                &mut engine.store,
                fw,
                net,
                ep,
                inside,
                default_route,
            )?;
            phases.mark("endpoint");
        }
    }
    let addrs: Vec<IpAddr> = endpoints
        .iter()
        .flat_map(|e| e.addresses.iter().map(|a| a.addr))
        .collect();
    files::write(
        &engine.paths.container_dir(&container.id),
        &container.hostname,
        &container.name,
        &addrs,
        &container.dns,
        resolver(endpoints),
    )?;
    phases.mark("files");
    Ok(())
}

/// The agent's DNS address for a container: the gateway of its first network (IPv4 first),
/// unless the agent is turned off.
fn resolver(endpoints: &[Endpoint]) -> Option<IpAddr> {
    if !crate::agent::enabled() {
        return None;
    }
    let gws: Vec<IpAddr> = endpoints
        .first()?
        .addresses
        .iter()
        .filter_map(|a| a.gateway)
        .collect();
    gws.iter().find(|g| g.is_ipv4()).or(gws.first()).copied()
}
