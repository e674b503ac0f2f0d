//! The overlay driver: networks that span hosts, kept in the cluster store (etcd).
//!
//! The record in etcd is the truth; each host keeps a *mirror* row of the overlay networks it
//! has seen in its SQLite store (driver `overlay`, bridge `ov-<id>`, the same id everywhere),
//! so that endpoints, ports, DNS and gc treat an overlay like a bridge network. The mirror
//! is refreshed from etcd whenever a command needs the global state (`network create`,
//! `ls`, `inspect`, `rm`, `run` on an overlay); those commands fail with an error naming the
//! store when it is unreachable. Per host the network is a bridge plus a VXLAN device
//! (`device`); addresses are claimed one by one in etcd (`claims`).

pub(crate) mod claims;
pub(crate) mod device;

pub use device::vxlan_name;

use crate::ids::{new_id, now};
use crate::{validate, Engine, Error, Result};
use berth_cluster::{Claim, Cluster, EndpointRecord, NetworkRecord};
use berth_ipam::{self as ipam, IpNet, Pool};
use berth_store::{Network, SubnetRow};
use std::collections::BTreeMap;

/// VNIs berth hands out (below 4096 is left to VLAN-mapped setups).
const VNI_MIN: u32 = 4096;
const VNI_MAX: u32 = (1 << 24) - 1;

/// The pool of overlay subnets: /24s of 10.0.0.0/8.
fn pool() -> Pool {
    Pool {
        base: "10.0.0.0/8".parse().expect("constant"),
        prefix_len: 24,
    }
}

/// The cluster connection, or the error that says how to configure one.
pub(crate) fn connect(engine: &Engine) -> Result<Cluster> {
    let cfg = engine.paths.cluster.as_ref().ok_or_else(|| {
        Error::Invalid(
            "overlay networks need a cluster store: give --store etcd://HOST:PORT or set store in /etc/berth/config.toml".into(),
        )
    })?;
    Ok(Cluster::connect(cfg)?)
}

/// Whether a cluster store is configured.
pub(crate) fn configured(engine: &Engine) -> bool {
    engine.paths.cluster.is_some()
}

/// The local mirror row of an overlay network record.
pub(crate) fn mirror(rec: &NetworkRecord, mtu: u32) -> Network {
    let mut options = BTreeMap::new();
    options.insert("vni".to_string(), rec.vni.to_string());
    Network {
        id: rec.id.clone(),
        name: rec.name.clone(),
        driver: "overlay".into(),
        bridge: Some(device::bridge_name(&rec.id)),
        internal: rec.internal,
        icc: true,
        mtu: Some(mtu),
        ipv6: false,
        builtin: false,
        options,
        labels: rec.labels.clone(),
        subnets: vec![SubnetRow {
            subnet: rec.subnet,
            gateway: rec.gateway,
            range: rec.ip_range,
        }],
        created: rec.created.clone(),
    }
}

/// The VNI of a mirrored overlay network.
pub(crate) fn vni(net: &Network) -> Result<u32> {
    net.options
        .get("vni")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Error::Invalid(format!("overlay network {} has no VNI", net.name)))
}

/// Creates an overlay network in the cluster store and mirrors it here.
pub(crate) fn create(engine: &mut Engine, req: &crate::network::CreateRequest) -> Result<Network> {
    validate::name("network", &req.name)?;
    if req.ipv6 {
        return Err(Error::Invalid(
            "IPv6 on overlay networks is not supported yet: leave out --ipv6".into(),
        ));
    }
    if req.subnets.len() > 1 || req.gateways.len() > req.subnets.len() {
        return Err(Error::Invalid(
            "an overlay network takes one --subnet (and at most one --gateway for it)".into(),
        ));
    }
    if req.ip_range.is_some() && req.subnets.is_empty() {
        return Err(Error::Invalid("--ip-range needs a --subnet".into()));
    }
    let mtu = req.mtu.as_deref().map(validate::mtu).transpose()?;
    if let Some(o) = req.options.first() {
        return Err(Error::Invalid(format!(
            "unknown option {o:?} for the overlay driver: it takes none (use --mtu)"
        )));
    }
    let mut labels = BTreeMap::new();
    for l in &req.labels {
        let (k, v) = crate::network::key_value("label", l)?;
        labels.insert(k, v);
    }
    let explicit = match req.subnets.first() {
        Some(s) => {
            let subnet = ipam::parse_subnet(s)?;
            if subnet.addr().is_ipv6() {
                return Err(Error::Invalid(format!(
                    "subnet {subnet} is IPv6: overlay networks are IPv4 only for now"
                )));
            }
            let gw = req
                .gateways
                .first()
                .map(|g| ipam::parse_ip(g))
                .transpose()?;
            let range = req
                .ip_range
                .as_deref()
                .map(ipam::parse_subnet)
                .transpose()?;
            Some(ipam::subnet_spec(subnet, gw, range)?)
        }
        None => None,
    };
    // Local networks and routes must not collide with the overlay's subnet on this host.
    let (local, local_mtu) = {
        let nets = crate::network::list(engine)?;
        if nets.iter().any(|n| n.name == req.name) {
            return Err(Error::Conflict(format!(
                "network {} already exists",
                req.name
            )));
        }
        let mut taken: Vec<(IpNet, String)> = nets
            .iter()
            .flat_map(|n| n.subnets.iter().map(|s| (s.subnet, n.name.clone())))
            .collect();
        for s in crate::bridge::host_view()?.subnets {
            taken.push((s, "a route of this host".into()));
        }
        (taken, device::underlay_mtu(engine)?)
    };
    let mut cluster = connect(engine)?;
    let id = new_id();
    let rec = cluster.create_network(|existing| {
        if existing.iter().any(|n| n.name == req.name) {
            return Err(berth_cluster::Error::Conflict(format!(
                "network {} already exists in the cluster",
                req.name
            )));
        }
        let mut taken = local.clone();
        taken.extend(existing.iter().map(|n| (n.subnet, n.name.clone())));
        let spec = match &explicit {
            Some(s) => {
                ipam::check_overlap(s.subnet, &taken)
                    .map_err(|e| berth_cluster::Error::Conflict(e.to_string()))?;
                s.clone()
            }
            None => {
                let avoid: Vec<IpNet> = taken.iter().map(|(s, _)| *s).collect();
                let subnet = ipam::choose_subnet(&[pool()], &avoid).ok_or_else(|| {
                    berth_cluster::Error::Conflict(
                        "no free /24 left in 10.0.0.0/8 for an overlay: give one with --subnet"
                            .into(),
                    )
                })?;
                ipam::subnet_spec(subnet, None, None)
                    .map_err(|e| berth_cluster::Error::Invalid(e.to_string()))?
            }
        };
        let vni = (VNI_MIN..=VNI_MAX)
            .find(|v| !existing.iter().any(|n| n.vni == *v))
            .ok_or_else(|| berth_cluster::Error::Conflict("no free VNI left".into()))?;
        Ok(NetworkRecord {
            id: id.clone(),
            name: req.name.clone(),
            vni,
            subnet: spec.subnet,
            gateway: spec.gateway,
            ip_range: spec.range,
            internal: req.internal,
            mtu,
            labels: labels.clone(),
            created: now(),
        })
    })?;
    let net = mirror(&rec, effective_mtu(rec.mtu, local_mtu));
    engine
        .store
        .write(|tx| -> Result<()> { Ok(tx.insert_network(&net)?) })?;
    Ok(net)
}

/// The MTU an overlay uses on a host: the requested one, at most underlay - 50.
fn effective_mtu(requested: Option<u32>, underlay: u32) -> u32 {
    let max = underlay.saturating_sub(device::VXLAN_OVERHEAD);
    requested.map_or(max, |m| m.min(max))
}

/// Brings the local mirrors in line with the cluster: new overlays appear, removed ones
/// go (unless this host still has endpoints on them).
pub(crate) fn sync(engine: &mut Engine) -> Result<()> {
    if !configured(engine) {
        return Ok(());
    }
    let records = connect(engine)?.networks()?;
    let underlay = device::underlay_mtu(engine)?;
    engine.store.write(|tx| -> Result<()> {
        let local: Vec<Network> = tx
            .networks()?
            .into_iter()
            .filter(|n| n.driver == "overlay")
            .collect();
        for n in &local {
            let current = records.iter().find(|r| r.id == n.id);
            if current.is_none() && tx.endpoints_of_network(&n.id)?.is_empty() {
                tx.delete_network(&n.id)?;
            }
        }
        for r in &records {
            if local.iter().any(|n| n.id == r.id) {
                continue;
            }
            if let Some(other) = tx.network(&r.name)? {
                tracing::warn!(
                    network = r.name,
                    local = other.driver,
                    "a local network has the name of a cluster overlay: the overlay is hidden here"
                );
                continue;
            }
            tx.insert_network(&mirror(r, effective_mtu(r.mtu, underlay)))?;
        }
        Ok(())
    })
}

/// This host's overlay endpoints as the cluster should know them (for the agent to put
/// back after a restart or a lost lease).
pub fn local_records(engine: &mut Engine) -> Result<Vec<(EndpointRecord, Claim)>> {
    let Some(cfg) = engine.paths.cluster.clone() else {
        return Ok(Vec::new());
    };
    let vtep = cfg.vtep()?;
    let nets = crate::network::list(engine)?;
    let mut out = Vec::new();
    for (c, eps) in crate::container::list(engine)? {
        for ep in eps {
            if nets
                .iter()
                .any(|n| n.id == ep.network_id && n.driver == "overlay")
            {
                let rec = claims::endpoint_record(&cfg.host, vtep.into(), &c, &ep);
                let claim = Claim {
                    host: cfg.host.clone(),
                    container: c.id.clone(),
                };
                out.push((rec, claim));
            }
        }
    }
    Ok(out)
}

/// Checks that an overlay network still exists in the cluster; a removed one loses its
/// mirror here and is reported as not found.
pub(crate) fn refresh(engine: &mut Engine, net: &Network) -> Result<Network> {
    if connect(engine)?.networks()?.iter().any(|r| r.id == net.id) {
        return Ok(net.clone());
    }
    sync(engine)?;
    Err(Error::NotFound {
        kind: "network",
        name: net.name.clone(),
    })
}

/// Removes an overlay network from the cluster (refused while any host has endpoints on
/// it), then its mirror here.
pub(crate) fn remove(engine: &mut Engine, net: &Network) -> Result<()> {
    let mut cluster = connect(engine)?;
    let rec = cluster.networks()?.into_iter().find(|r| r.id == net.id);
    if let Some(rec) = rec {
        cluster.remove_network(&rec)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mtu_is_capped_by_the_underlay() {
        assert_eq!(effective_mtu(None, 1500), 1450);
        assert_eq!(effective_mtu(Some(1400), 1500), 1400);
        assert_eq!(effective_mtu(Some(9000), 1500), 1450);
    }

    #[test]
    fn pool_starts_at_ten() {
        assert_eq!(pool().subnets().next().unwrap().to_string(), "10.0.0.0/24");
    }
}
