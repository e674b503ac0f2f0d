//! What an overlay network looks like on this host, for `topology` and `diagnose`: its
//! VXLAN device and the FDB, flood and permanent neighbour entries the agent programmed on
//! it, and the cluster's endpoint records (who is behind each remote VTEP).

use crate::error::KernelContext;
use crate::{Engine, Result};
use berth_cluster::EndpointRecord;
use berth_kernel::netlink::{FdbEntry, Link, Netlink, StaticNeighbour, FLOOD_MAC};
use berth_store::Network;
use std::net::IpAddr;

/// An overlay's VXLAN device on this host and the entries it holds.
#[derive(Clone, Debug, Default)]
pub(crate) struct Programmed {
    /// The device name (`vx-<id>`), present or not.
    pub(crate) name: String,
    pub(crate) vni: Option<u32>,
    pub(crate) link: Option<Link>,
    /// Unicast FDB entries (MAC -> VTEP).
    pub(crate) fdb: Vec<FdbEntry>,
    /// VTEPs of the flood (all-zero MAC) entries.
    pub(crate) flood: Vec<IpAddr>,
    pub(crate) neighbours: Vec<StaticNeighbour>,
}

impl Programmed {
    /// Reads the VXLAN device of overlay `net` in the caller's namespace (the host's).
    pub(crate) fn read(nl: &mut Netlink, net: &Network) -> Result<Programmed> {
        let name = crate::overlay::vxlan_name(&net.id);
        let link = nl
            .link_by_name(&name)
            .op(|| format!("look up {name}"))?
            .filter(|l| l.kind.as_deref() == Some("vxlan"));
        let mut p = Programmed {
            vni: crate::overlay::vni(net).ok(),
            name,
            ..Programmed::default()
        };
        if let Some(l) = &link {
            for e in nl
                .fdb_entries(l.index)
                .op(|| format!("list the FDB of {}", p.name))?
            {
                match e.mac == FLOOD_MAC {
                    true => p.flood.push(e.vtep),
                    false => p.fdb.push(e),
                }
            }
            p.neighbours = nl
                .static_neighbours(l.index)
                .op(|| format!("list the neighbours of {}", p.name))?;
        }
        p.link = link;
        Ok(p)
    }

    /// The VTEP the FDB sends `mac` to.
    pub(crate) fn vtep_of(&self, mac: [u8; 6]) -> Option<IpAddr> {
        self.fdb.iter().find(|e| e.mac == mac).map(|e| e.vtep)
    }

    /// The MAC the permanent neighbour entry gives `ip`.
    pub(crate) fn mac_of(&self, ip: IpAddr) -> Option<[u8; 6]> {
        self.neighbours.iter().find(|n| n.ip == ip).map(|n| n.mac)
    }
}

/// This host's name in the cluster, when a store is configured.
pub(crate) fn host_name(engine: &Engine) -> Option<String> {
    engine.paths.cluster.as_ref().map(|c| c.host.clone())
}

/// Every endpoint record of the given overlay networks, from the cluster store; `None`
/// when no store is configured or it does not answer.
pub(crate) fn records(engine: &Engine, nets: &[Network]) -> Option<Vec<EndpointRecord>> {
    let overlays: Vec<&Network> = nets.iter().filter(|n| n.driver == "overlay").collect();
    if overlays.is_empty() || !crate::overlay::configured(engine) {
        return None;
    }
    let mut cluster = crate::overlay::connect(engine).ok()?;
    let mut out = Vec::new();
    for n in overlays {
        out.extend(cluster.endpoints(&n.id).ok()?);
    }
    Some(out)
}
