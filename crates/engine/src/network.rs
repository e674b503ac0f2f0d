//! Network verbs: create, list, inspect, remove, prune, and the built-in networks.

use crate::bridge;
use crate::ids::{new_id, now};
use crate::lock::Lock;
use crate::observe::events;
use crate::validate;
use crate::{Engine, Error, Result};
use berth_ipam::{self as ipam, IpNet, SubnetSpec};
use berth_store::{Network, SubnetRow};
use std::collections::BTreeMap;

/// The default network: name, bridge device, subnet and gateway (as Docker's `docker0`).
pub const DEFAULT_NETWORK: &str = "bridge";
pub const DEFAULT_BRIDGE: &str = "berth0";
const DEFAULT_SUBNET: &str = "172.17.0.0/16";

/// A `network create` request, as typed by the user (validated by [`create`]).
#[derive(Clone, Debug, Default)]
pub struct CreateRequest {
    pub name: String,
    pub driver: Option<String>,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub ip_range: Option<String>,
    pub internal: bool,
    pub ipv6: bool,
    pub mtu: Option<String>,
    /// `KEY=VALUE` driver options.
    pub options: Vec<String>,
    /// `KEY=VALUE` labels.
    pub labels: Vec<String>,
}

/// Options of the bridge driver, under berth's short key or Docker's long one.
const OPT_BRIDGE_NAME: [&str; 2] = ["bridge_name", "com.docker.network.bridge.name"];
const OPT_ICC: [&str; 2] = ["icc", "com.docker.network.bridge.enable_icc"];
const OPT_MTU: [&str; 2] = ["mtu", "com.docker.network.driver.mtu"];
/// `fastpath=false` keeps the network's container-to-container traffic on the bridge
/// (`bridge::fast`).
pub(crate) const OPT_FASTPATH: &str = "fastpath";

pub(crate) fn key_value(what: &str, s: &str) -> Result<(String, String)> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(Error::Invalid(format!(
            "invalid {what} {s:?}: use KEY=VALUE"
        ))),
    }
}

/// Makes sure `bridge`, `host` and `none` exist in the store.
pub(crate) fn ensure_builtin(engine: &mut Engine) -> Result<()> {
    let present = engine
        .store
        .read(|tx| -> Result<usize> { Ok(tx.count_builtin_networks()?) })?;
    if present == 3 {
        return Ok(());
    }
    engine.store.write(|tx| -> Result<()> {
        for (name, driver) in [
            (DEFAULT_NETWORK, "bridge"),
            ("host", "host"),
            ("none", "none"),
        ] {
            if tx.network(name)?.is_some() {
                continue;
            }
            let subnets = match driver {
                "bridge" => {
                    let subnet: IpNet = DEFAULT_SUBNET.parse().expect("constant subnet");
                    let spec = ipam::subnet_spec(subnet, None, None)?;
                    vec![SubnetRow {
                        subnet: spec.subnet,
                        gateway: spec.gateway,
                        range: spec.range,
                    }]
                }
                _ => Vec::new(),
            };
            tx.insert_network(&Network {
                id: new_id(),
                name: name.to_string(),
                driver: driver.to_string(),
                bridge: (driver == "bridge").then(|| DEFAULT_BRIDGE.to_string()),
                internal: false,
                icc: true,
                mtu: None,
                ipv6: false,
                builtin: true,
                options: BTreeMap::new(),
                labels: BTreeMap::new(),
                subnets,
                created: now(),
            })?;
        }
        Ok(())
    })
}

/// Validated settings of a new bridge network, before a subnet is chosen.
struct BridgeSettings {
    bridge: Option<String>,
    icc: bool,
    mtu: Option<u32>,
    options: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
}

fn settings(req: &CreateRequest) -> Result<BridgeSettings> {
    validate::name("network", &req.name)?;
    match req.driver.as_deref().unwrap_or("bridge") {
        "bridge" => {}
        d @ ("host" | "none") => {
            return Err(Error::Invalid(format!(
                "only one {d:?} network can exist: use the built-in network {d}"
            )))
        }
        d => {
            return Err(Error::Invalid(format!(
                "unknown driver {d:?}: use bridge, overlay, host or none"
            )))
        }
    }
    let mut out = BridgeSettings {
        bridge: None,
        icc: true,
        mtu: req.mtu.as_deref().map(validate::mtu).transpose()?,
        options: BTreeMap::new(),
        labels: BTreeMap::new(),
    };
    for o in &req.options {
        let (k, v) = key_value("option", o)?;
        if OPT_BRIDGE_NAME.contains(&k.as_str()) {
            validate::ifname(&v)?;
            out.bridge = Some(v.clone());
        } else if OPT_ICC.contains(&k.as_str()) {
            out.icc = validate::boolean(&k, &v)?;
        } else if k == OPT_FASTPATH {
            validate::boolean(&k, &v)?;
        } else if OPT_MTU.contains(&k.as_str()) {
            if out.mtu.is_some_and(|m| Some(m) != validate::mtu(&v).ok()) {
                return Err(Error::Invalid(format!("option {k}={v} contradicts --mtu")));
            }
            out.mtu = Some(validate::mtu(&v)?);
        } else {
            return Err(Error::Invalid(format!(
                "unknown option {k:?} for the bridge driver: use bridge_name, icc, mtu or fastpath"
            )));
        }
        out.options.insert(k, v);
    }
    for l in &req.labels {
        let (k, v) = key_value("label", l)?;
        out.labels.insert(k, v);
    }
    Ok(out)
}

/// Subnets given by the user, checked; `None` when the default pools should choose.
fn explicit_subnets(req: &CreateRequest) -> Result<Vec<SubnetSpec>> {
    if req.gateways.len() > req.subnets.len() {
        return Err(Error::Invalid(
            "every --gateway needs a --subnet to belong to".into(),
        ));
    }
    if req.ip_range.is_some() && req.subnets.is_empty() {
        return Err(Error::Invalid("--ip-range needs a --subnet".into()));
    }
    let range = req
        .ip_range
        .as_deref()
        .map(ipam::parse_subnet)
        .transpose()?;
    let mut specs = Vec::new();
    for (i, s) in req.subnets.iter().enumerate() {
        let subnet = ipam::parse_subnet(s)?;
        if matches!(subnet, IpNet::V6(_)) && !req.ipv6 {
            return Err(Error::Invalid(format!(
                "subnet {subnet} is IPv6: add --ipv6 to create an IPv6 network"
            )));
        }
        let gateway = req.gateways.get(i).map(|g| ipam::parse_ip(g)).transpose()?;
        let r = range.filter(|r| subnet.contains(r));
        specs.push(ipam::subnet_spec(subnet, gateway, r)?);
    }
    if let Some(r) = range {
        if !specs.iter().any(|s| s.range == Some(r)) {
            return Err(Error::Invalid(format!(
                "ip range {r} is not inside any of the subnets"
            )));
        }
    }
    for (i, a) in specs.iter().enumerate() {
        for b in &specs[i + 1..] {
            if a.subnet.contains(&b.subnet.network()) || b.subnet.contains(&a.subnet.network()) {
                return Err(Error::Conflict(format!(
                    "subnet {} overlaps subnet {}",
                    a.subnet, b.subnet
                )));
            }
        }
    }
    Ok(specs)
}

/// Creates a network. Nothing changes when any input is bad.
pub fn create(engine: &mut Engine, req: &CreateRequest) -> Result<Network> {
    if req.driver.as_deref() == Some("overlay") {
        let net = crate::overlay::create(engine, req)?;
        events::record(
            &mut engine.store,
            "network",
            "create",
            (&net.id, &net.name),
            &[("driver", "overlay")],
        );
        return Ok(net);
    }
    let set = settings(req)?;
    let explicit = explicit_subnets(req)?;
    let id = new_id();
    let bridge_name = set
        .bridge
        .clone()
        .unwrap_or_else(|| format!("br-{}", &id[..12]));
    // What the host already routes: auto-chosen subnets must not collide with it, and a
    // chosen bridge name must not belong to some other interface.
    let host = bridge::host_view()?;
    let net = engine.store.write(|tx| -> Result<Network> {
        let existing = tx.networks()?;
        if existing.iter().any(|n| n.name == req.name) {
            return Err(Error::Conflict(format!(
                "network {} already exists",
                req.name
            )));
        }
        if let Some(other) = existing
            .iter()
            .find(|n| n.bridge.as_deref() == Some(&bridge_name))
        {
            return Err(Error::Conflict(format!(
                "bridge {bridge_name} is already used by network {}",
                other.name
            )));
        }
        if set.bridge.is_some() && host.links.contains(&bridge_name) {
            return Err(Error::Conflict(format!(
                "interface {bridge_name} already exists on the host: choose another bridge_name"
            )));
        }
        let taken: Vec<(IpNet, String)> = existing
            .iter()
            .flat_map(|n| n.subnets.iter().map(|s| (s.subnet, n.name.clone())))
            .collect();
        for s in &explicit {
            ipam::check_overlap(s.subnet, &taken)?;
        }
        // A family the user gave no subnet for gets one from the default pools: IPv4
        // always, IPv6 with --ipv6.
        let mut avoid: Vec<IpNet> = taken.iter().map(|(s, _)| *s).collect();
        avoid.extend(host.subnets.iter().copied());
        let mut specs = Vec::new();
        let families = [
            (true, ipam::default_pools_v4()),
            (req.ipv6, ipam::default_pools_v6()),
        ];
        for (wanted, pools) in families {
            let v4 = pools[0].base.addr().is_ipv4();
            let given: Vec<&SubnetSpec> = explicit
                .iter()
                .filter(|s| s.subnet.addr().is_ipv4() == v4)
                .collect();
            if !given.is_empty() {
                specs.extend(given.into_iter().cloned());
            } else if wanted {
                let subnet = ipam::choose_subnet(&pools, &avoid).ok_or_else(|| {
                    Error::Conflict(format!(
                        "no free {} subnet left in the default pools: give one with --subnet",
                        if v4 { "IPv4" } else { "IPv6" }
                    ))
                })?;
                specs.push(ipam::subnet_spec(subnet, None, None)?);
            }
        }
        let net = Network {
            id: id.clone(),
            name: req.name.clone(),
            driver: "bridge".into(),
            bridge: Some(bridge_name.clone()),
            internal: req.internal,
            icc: set.icc,
            mtu: set.mtu,
            ipv6: req.ipv6,
            builtin: false,
            options: set.options.clone(),
            labels: set.labels.clone(),
            subnets: specs
                .iter()
                .map(|s| SubnetRow {
                    subnet: s.subnet,
                    gateway: s.gateway,
                    range: s.range,
                })
                .collect(),
            created: now(),
        };
        tx.insert_network(&net)?;
        Ok(net)
    })?;
    if !bridge::lives_with_endpoints(&net) {
        if let Err(e) = activate_here(engine, &net) {
            // All or nothing: the row goes again (activation undid its own kernel state).
            let _ = engine
                .store
                .write(|tx| -> Result<()> { Ok(tx.delete_network(&net.id)?) });
            let _ = std::fs::remove_file(engine.paths.network_lock(&net.id));
            return Err(e);
        }
    }
    let driver = net.driver.clone();
    events::record(
        &mut engine.store,
        "network",
        "create",
        (&net.id, &net.name),
        &[("driver", &driver)],
    );
    Ok(net)
}

/// Activates a bridge network on this host (installing the firewall's ruleset first if this
/// host has none): its bridge, gateway addresses and elements exist from here on, so its
/// first container pays for none of them.
fn activate_here(engine: &mut Engine, net: &Network) -> Result<()> {
    use crate::error::KernelContext;
    let _lock = Lock::exclusive(&engine.paths.network_lock(&net.id))?;
    let mut fw = crate::fw::open(&mut engine.store)?;
    let mut nl = berth_kernel::netlink::Netlink::open().op(|| "open netlink socket".into())?;
    bridge::activate(&mut nl, &mut fw, net, None).map(drop)
}

/// All networks, after bringing overlay networks up to date from the cluster store (when
/// one is configured; then it must be reachable).
pub fn list_global(engine: &mut Engine) -> Result<Vec<Network>> {
    crate::overlay::sync(engine)?;
    list(engine)
}

/// Brings this host's view of overlay networks up to date from the cluster store (nothing
/// without one).
pub fn sync_global(engine: &mut Engine) -> Result<()> {
    crate::overlay::sync(engine)
}

/// All networks this host knows, without asking the cluster store.
pub fn list(engine: &mut Engine) -> Result<Vec<Network>> {
    engine
        .store
        .read(|tx| -> Result<Vec<Network>> { Ok(tx.networks()?) })
}

/// Finds one network by name, id or id prefix.
/// An overlay network created on another host is looked up in the cluster store.
pub fn find(engine: &mut Engine, reference: &str) -> Result<Network> {
    let local = engine
        .store
        .read(|tx| -> Result<_> { Ok(tx.network(reference)?) })?;
    let found = match local {
        Some(n) => Some(n),
        None if crate::overlay::configured(engine) => {
            crate::overlay::sync(engine)?;
            engine
                .store
                .read(|tx| -> Result<_> { Ok(tx.network(reference)?) })?
        }
        None => None,
    };
    found.ok_or_else(|| Error::NotFound {
        kind: "network",
        name: reference.to_string(),
    })
}

/// Refuses to remove built-in networks and networks with endpoints.
fn check_removable(tx: &berth_store::Tx<'_>, net: &Network) -> Result<()> {
    if net.builtin {
        return Err(Error::Conflict(format!(
            "network {} is a built-in network and cannot be removed",
            net.name
        )));
    }
    let eps = tx.endpoints_of_network(&net.id)?;
    if eps.is_empty() {
        return Ok(());
    }
    let mut names = Vec::new();
    for ep in &eps {
        if let Some(c) = tx.container_by_id(&ep.container_id)? {
            names.push(c.name);
        }
    }
    Err(Error::Conflict(format!(
        "network {} has {} attached container(s) ({}): remove or disconnect them first",
        net.name,
        eps.len(),
        names.join(", ")
    )))
}

/// Removes a network that has no containers. Returns its name. All or nothing: a bridge
/// that a crash left behind is removed first, and the row only when that worked.
pub fn remove(engine: &mut Engine, reference: &str) -> Result<String> {
    // `find` looks an overlay created elsewhere up in the cluster store.
    let net = find(engine, reference)?;
    engine
        .store
        .read(|tx| -> Result<()> { check_removable(tx, &net) })?;
    // An overlay goes from the cluster first: refused while any host has endpoints on it.
    if net.driver == "overlay" {
        crate::overlay::remove(engine, &net)?;
    }
    // Under the network's lock no endpoint can activate it meanwhile.
    let _lock = Lock::exclusive(&engine.paths.network_lock(&net.id))?;
    if let Some(name) = &net.bridge {
        if bridge::host_view()?.links.contains(name) {
            let errors = bridge::deactivate(&net);
            if !errors.is_empty() {
                return Err(Error::Incomplete(errors));
            }
        }
    }
    engine.store.write(|tx| -> Result<()> {
        check_removable(tx, &net)?;
        Ok(tx.delete_network(&net.id)?)
    })?;
    let _ = std::fs::remove_file(engine.paths.network_lock(&net.id));
    events::record(
        &mut engine.store,
        "network",
        "remove",
        (&net.id, &net.name),
        &[],
    );
    Ok(net.name)
}

/// Removes every local user network without containers; returns their names. Overlay
/// networks are left alone: they belong to the cluster (`network rm` removes one).
pub fn prune(engine: &mut Engine) -> Result<Vec<String>> {
    let candidates = engine.store.read(|tx| -> Result<Vec<String>> {
        let mut out = Vec::new();
        for n in tx.networks()? {
            if !n.builtin && n.driver != "overlay" && tx.endpoints_of_network(&n.id)?.is_empty() {
                out.push(n.id);
            }
        }
        Ok(out)
    })?;
    let mut removed = Vec::new();
    for id in candidates {
        match remove(engine, &id) {
            Ok(name) => removed.push(name),
            // Someone attached a container in the meantime: keep it.
            Err(Error::Conflict(_)) | Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(removed)
}

/// The label a door puts on the networks it defines (`netavark`, `cni`): such a network
/// follows the runtime's definition and may be redefined while it has no endpoints.
pub const DOOR_LABEL: &str = "berth.door";

/// How `net` differs from what `req` asks for, if it does (only what `req` states counts).
fn difference(net: &Network, req: &CreateRequest) -> Option<String> {
    let set = settings(req).ok()?;
    let want_bridge = set.bridge.clone();
    if want_bridge.is_some() && want_bridge != net.bridge {
        return Some(format!(
            "bridge {} instead of {}",
            net.bridge.as_deref().unwrap_or("-"),
            want_bridge.unwrap_or_default()
        ));
    }
    if net.internal != req.internal {
        return Some(format!(
            "internal={} instead of {}",
            net.internal, req.internal
        ));
    }
    if set.mtu.is_some() && set.mtu != net.mtu {
        return Some(format!("mtu {:?} instead of {:?}", net.mtu, set.mtu));
    }
    if set.icc != net.icc {
        return Some(format!("icc={} instead of {}", net.icc, set.icc));
    }
    let specs = explicit_subnets(req).ok()?;
    let have: Vec<(IpNet, std::net::IpAddr)> =
        net.subnets.iter().map(|s| (s.subnet, s.gateway)).collect();
    let want: Vec<(IpNet, std::net::IpAddr)> =
        specs.iter().map(|s| (s.subnet, s.gateway)).collect();
    if !want.is_empty() && (want.len() != have.len() || want.iter().any(|w| !have.contains(w))) {
        let show = |v: &[(IpNet, std::net::IpAddr)]| {
            v.iter()
                .map(|(s, g)| format!("{s} via {g}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        return Some(format!(
            "subnets {} instead of {}",
            show(&have),
            show(&want)
        ));
    }
    None
}

/// The network `req` describes, as a runtime's door sees it: the existing network of that
/// name when it matches, else a new one. A door-defined network without endpoints whose
/// definition changed is redefined; any other mismatch is a conflict and changes nothing.
pub fn ensure(engine: &mut Engine, req: &CreateRequest) -> Result<Network> {
    ensure_made(engine, req).map(|(net, _)| net)
}

/// [`ensure`], and whether this call made the network (rather than finding it).
pub fn ensure_made(engine: &mut Engine, req: &CreateRequest) -> Result<(Network, bool)> {
    settings(req)?;
    explicit_subnets(req)?;
    for _ in 0..3 {
        let existing = engine
            .store
            .read(|tx| -> Result<_> { Ok(tx.network(&req.name)?) })?
            .filter(|n| n.name == req.name);
        let Some(net) = existing else {
            match create(engine, req) {
                // Another process created it meanwhile: compare with that one.
                Err(Error::Conflict(_)) if find(engine, &req.name).is_ok() => continue,
                r => return r.map(|net| (net, true)),
            }
        };
        let Some(diff) = difference(&net, req) else {
            return Ok((net, false));
        };
        let unused = engine
            .store
            .read(|tx| -> Result<_> { Ok(tx.endpoints_of_network(&net.id)?.is_empty()) })?;
        if !(net.labels.contains_key(DOOR_LABEL) && unused) {
            return Err(Error::Conflict(format!(
                "network {} exists in berth with another definition ({diff}): \
                 remove it from berth or use another name",
                net.name
            )));
        }
        match remove(engine, &net.id) {
            Ok(_) | Err(Error::NotFound { .. }) | Err(Error::Conflict(_)) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Error::Conflict(format!(
        "network {} keeps changing under concurrent definitions: try again",
        req.name
    )))
}
