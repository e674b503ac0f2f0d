//! What the DNS server answers from, read from berth's store.

use berth_dns::{Container, Endpoint, NetworkRecord, Snapshot, DEFAULT_DOMAIN};
use berth_engine::{container, network, Engine, Result};
use std::net::{IpAddr, SocketAddr};

/// The host's resolver configuration, read in the agent's (the host's) mount namespace.
const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

/// Counts for the metrics, taken with the snapshot.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Counts {
    pub(crate) networks: i64,
    pub(crate) endpoints: i64,
    pub(crate) published_ports: i64,
}

/// The records, the listen addresses (gateways of bridge networks with endpoints here) and
/// counts. Every bridge network has DNS, the default `bridge` included.
/// Overlay networks count as bridge networks; `remote` adds the containers of other hosts on
/// them.
pub(crate) fn read(
    engine: &mut Engine,
    port: u16,
    remote: &[berth_cluster::EndpointRecord],
) -> Result<(Snapshot, Vec<SocketAddr>, Counts)> {
    let nets = network::list(engine)?;
    let all = container::list(engine)?;
    let mut counts = Counts {
        networks: nets.len() as i64,
        published_ports: container::all_published_ports(engine)?.len() as i64,
        ..Counts::default()
    };
    let mut snap = Snapshot {
        domain: DEFAULT_DOMAIN.to_string(),
        upstreams: berth_dns::parse_resolv_conf(
            &std::fs::read_to_string(HOST_RESOLV_CONF).unwrap_or_default(),
        ),
        networks: Vec::new(),
        containers: Vec::new(),
    };
    let mut listeners = Vec::new();
    for n in nets.iter().filter(|n| has_dns(n)) {
        snap.networks.push(NetworkRecord {
            name: n.name.clone(),
            subnets: n.subnets.iter().map(|s| s.subnet).collect(),
        });
        if all
            .iter()
            .any(|(_, eps)| eps.iter().any(|e| e.network_id == n.id))
        {
            listeners.extend(n.subnets.iter().map(|s| SocketAddr::new(s.gateway, port)));
        }
    }
    for (c, eps) in &all {
        counts.endpoints += eps.len() as i64;
        snap.containers
            .extend(record(c, eps, |id| nets.iter().find(|n| n.id == id)));
    }
    for r in remote {
        let Some(n) = nets.iter().find(|n| n.id == r.network_id) else {
            continue;
        };
        snap.containers.push(Container {
            id: r.container_id.clone(),
            name: r.container_name.clone(),
            dns: Vec::new(),
            endpoints: vec![Endpoint {
                network: n.name.clone(),
                addresses: vec![r.ip],
                aliases: r.aliases.clone(),
            }],
        });
    }
    Ok((snap, listeners, counts))
}

/// Every bridge network has DNS, the default `bridge` included; overlay networks too.
fn has_dns(n: &berth_store::Network) -> bool {
    n.driver == "bridge" || n.driver == "overlay"
}

/// Container `c`'s records, its endpoints `eps` on the networks `network` finds by id; none
/// when it has no endpoint on a network with DNS.
fn record<'n>(
    c: &berth_store::Container,
    eps: &[berth_store::Endpoint],
    network: impl Fn(&str) -> Option<&'n berth_store::Network>,
) -> Option<Container> {
    let endpoints: Vec<Endpoint> = eps
        .iter()
        .filter_map(|e| {
            let n = network(&e.network_id).filter(|n| has_dns(n))?;
            Some(Endpoint {
                network: n.name.clone(),
                addresses: e.addresses.iter().map(|a| a.addr).collect(),
                aliases: e.aliases.clone(),
            })
        })
        .collect();
    if endpoints.is_empty() {
        return None;
    }
    Some(Container {
        id: c.id.clone(),
        name: c.name.clone(),
        dns: c
            .dns
            .iter()
            .filter_map(|d| d.parse::<IpAddr>().ok())
            .map(|a| SocketAddr::new(a, 53))
            .collect(),
        endpoints,
    })
}

/// One container's records, read by id (a few point lookups, whatever the number of
/// containers), with the networks they belong to and the DNS listen addresses those networks
/// need. `None` when the store has no such container.
pub(crate) fn one(engine: &mut Engine, id: &str, port: u16) -> Result<Option<One>> {
    let Some((c, eps, nets)) = container::by_id_with_networks(engine, id)? else {
        return Ok(None);
    };
    let with_dns = || nets.values().filter(|n| has_dns(n));
    Ok(Some(One {
        record: record(&c, &eps, |id| nets.get(id)),
        networks: with_dns()
            .map(|n| NetworkRecord {
                name: n.name.clone(),
                subnets: n.subnets.iter().map(|s| s.subnet).collect(),
            })
            .collect(),
        listeners: with_dns()
            .flat_map(|n| n.subnets.iter().map(|s| SocketAddr::new(s.gateway, port)))
            .collect(),
    }))
}

/// What [`one`] reads.
pub(crate) struct One {
    pub(crate) record: Option<Container>,
    pub(crate) networks: Vec<NetworkRecord>,
    pub(crate) listeners: Vec<SocketAddr>,
}
