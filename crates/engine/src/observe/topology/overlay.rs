//! The overlay part of the topology: each overlay's VNI and VXLAN device on this host, its
//! remote peers (VTEPs and the endpoints behind them as programmed in the kernel, joined
//! with the cluster's records), and the other hosts.

use super::{DeviceNode, HostNode, Topology};
use crate::observe::overlay::Programmed;
use berth_cluster::EndpointRecord;
use berth_kernel::netlink::fmt_mac;
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A remote VTEP of an overlay network, as this host's VXLAN device knows it.
#[derive(Debug, Serialize)]
pub struct PeerNode {
    pub vtep: String,
    /// The host behind the VTEP, from the cluster's records.
    pub host: Option<String>,
    /// The device floods broadcast and unknown frames to this VTEP.
    pub flood: bool,
    pub endpoints: Vec<RemoteEndpointNode>,
}

/// A container endpoint on another host.
#[derive(Debug, Serialize)]
pub struct RemoteEndpointNode {
    pub mac: String,
    /// From the permanent neighbour entry (else from the record).
    pub ip: Option<String>,
    pub container: Option<String>,
    /// The FDB entry MAC -> VTEP is in the kernel (false: only the cluster knows it).
    pub programmed: bool,
}

/// Fills `vni`, `vxlan` and `peers` of each overlay network and adds the other hosts.
/// `overlays` maps network ids to their device; `records` are the cluster's endpoint
/// records (`None` when the store did not answer); `local` is this host's cluster name.
pub(crate) fn add(
    t: &mut Topology,
    overlays: &[(String, Programmed)],
    records: Option<&[EndpointRecord]>,
    local: Option<&str>,
) {
    let records = records.unwrap_or_default();
    let remote: Vec<&EndpointRecord> = records
        .iter()
        .filter(|r| Some(r.host.as_str()) != local)
        .collect();
    let mut hosts: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (id, p) in overlays {
        let Some(n) = t.networks.iter_mut().find(|n| &n.id == id) else {
            continue;
        };
        n.vni = p.vni;
        n.vxlan = Some(DeviceNode {
            name: p.name.clone(),
            present: p.link.is_some(),
            up: p.link.as_ref().is_some_and(|l| l.up),
            mtu: p.link.as_ref().map(|l| l.mtu),
        });
        let recs: Vec<&&EndpointRecord> = remote.iter().filter(|r| &r.network_id == id).collect();
        let host_of = |vtep: IpAddr| recs.iter().find(|r| r.vtep == vtep).map(|r| r.host.clone());
        let mut peers: BTreeMap<IpAddr, PeerNode> = BTreeMap::new();
        for vtep in &p.flood {
            let _ = entry(&mut peers, *vtep, host_of(*vtep), p.flood.contains(vtep));
        }
        for e in &p.fdb {
            let mac = fmt_mac(&e.mac);
            let rec = recs.iter().find(|r| r.mac.eq_ignore_ascii_case(&mac));
            let ip = p
                .neighbours
                .iter()
                .find(|x| x.mac == e.mac)
                .map(|x| x.ip)
                .or(rec.map(|r| r.ip));
            let node = RemoteEndpointNode {
                mac,
                ip: ip.map(|i| i.to_string()),
                container: rec.map(|r| r.container_name.clone()),
                programmed: true,
            };
            entry(
                &mut peers,
                e.vtep,
                host_of(e.vtep),
                p.flood.contains(&e.vtep),
            )
            .endpoints
            .push(node);
        }
        for r in &recs {
            let programmed = p
                .fdb
                .iter()
                .any(|e| fmt_mac(&e.mac).eq_ignore_ascii_case(&r.mac));
            if programmed {
                continue;
            }
            entry(
                &mut peers,
                r.vtep,
                host_of(r.vtep),
                p.flood.contains(&r.vtep),
            )
            .endpoints
            .push(RemoteEndpointNode {
                mac: r.mac.clone(),
                ip: Some(r.ip.to_string()),
                container: Some(r.container_name.clone()),
                programmed: false,
            });
        }
        for (vtep, pn) in &peers {
            hosts
                .entry(vtep.to_string())
                .or_insert_with(|| pn.host.clone());
        }
        n.peers = peers.into_values().collect();
    }
    for (vtep, name) in hosts {
        t.hosts.push(HostNode {
            name: name.unwrap_or_else(|| format!("unknown ({vtep})")),
            local: false,
            vtep: Some(vtep),
        });
    }
}

fn entry(
    peers: &mut BTreeMap<IpAddr, PeerNode>,
    vtep: IpAddr,
    host: Option<String>,
    flood: bool,
) -> &mut PeerNode {
    peers.entry(vtep).or_insert_with(|| PeerNode {
        vtep: vtep.to_string(),
        host,
        flood,
        endpoints: Vec::new(),
    })
}
