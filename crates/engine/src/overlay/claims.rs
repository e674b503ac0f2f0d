//! Addresses and endpoint records of overlay endpoints in the cluster store.
//!
//! Addresses are claimed one by one: the lowest address free in etcd is taken by a
//! transaction that succeeds only if its `ipam/` key does not exist yet, retried when another
//! host wins the race. This costs one list and one transaction per endpoint and needs no
//! per-host block bookkeeping; at the sizes berth targets (hundreds of endpoints per
//! network) that is cheaper than blocks, and no address is stranded in a dead host's block.
//! Claims and endpoint records live under this host's lease, which the agent keeps alive:
//! so the agent must be running (it is started here when it is not).

use crate::{Error, Paths, Result};
use berth_cluster::{Claim, Cluster, EndpointRecord};
use berth_ipam::{self as ipam, SubnetSpec};
use berth_store::{Container, Endpoint, Network};
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// How long `run` waits for a starting agent to register this host.
const REGISTER_TIMEOUT: Duration = Duration::from_secs(10);

/// The address claims of one container being created; released unless it succeeds.
pub(crate) struct Claims {
    cluster: Option<Cluster>,
    lease: i64,
    claim: Claim,
    held: Vec<(String, IpAddr)>,
}

/// The lease this host's records live under, starting the agent if it has not registered.
fn host_lease(paths: &Paths, cluster: &mut Cluster) -> Result<i64> {
    if let Some((_, lease)) = cluster.host_lease()? {
        return Ok(lease);
    }
    if !crate::agent::enabled() {
        return Err(Error::Invalid(
            "overlay networks need the agent, which keeps this host's lease in the cluster store: unset BERTH_NO_AGENT".into(),
        ));
    }
    crate::agent::start(paths, &[]).map_err(|e| Error::Io {
        op: "start the agent".into(),
        source: e,
    })?;
    let deadline = Instant::now() + REGISTER_TIMEOUT;
    loop {
        if let Some((_, lease)) = cluster.host_lease()? {
            return Ok(lease);
        }
        if Instant::now() >= deadline {
            return Err(Error::Conflict(format!(
                "the agent did not register host {} in the cluster store: see {}",
                cluster.config().host,
                paths.agent_log().display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Claims {
    /// Opens the cluster when any of `nets` is an overlay.
    pub(crate) fn begin(paths: &Paths, container_id: &str, nets: &[Network]) -> Result<Claims> {
        let mut claims = Claims {
            cluster: None,
            lease: 0,
            claim: Claim {
                host: String::new(),
                container: container_id.to_string(),
            },
            held: Vec::new(),
        };
        if nets.iter().any(|n| n.driver == "overlay") {
            let cfg = paths.cluster.as_ref().ok_or_else(|| {
                Error::Invalid("overlay networks need a cluster store: give --store".into())
            })?;
            let mut cluster = Cluster::connect(cfg)?;
            claims.lease = host_lease(paths, &mut cluster)?;
            claims.claim.host = cfg.host.clone();
            claims.cluster = Some(cluster);
        }
        Ok(claims)
    }

    /// Claims an address on overlay `net` (`wanted`, or the lowest free one).
    pub(crate) fn claim(&mut self, net: &Network, wanted: Option<IpAddr>) -> Result<IpAddr> {
        let cluster = self.cluster.as_mut().expect("begun with an overlay");
        let s = &net.subnets[0];
        let spec = SubnetSpec {
            subnet: s.subnet,
            gateway: s.gateway,
            range: s.range,
        };
        if let Some(ip) = wanted {
            if !spec.subnet.contains(&ip) {
                return Err(Error::Invalid(format!(
                    "address {ip} is outside the subnet of network {} ({})",
                    net.name, spec.subnet
                )));
            }
            ipam::check_static(&spec, ip, &Default::default())?;
        }
        let addr = cluster.claim_address(
            (&net.id, &net.name),
            self.lease,
            &self.claim,
            wanted,
            |used| {
                ipam::allocate(&spec, used)
                    .map_err(|e| berth_cluster::Error::Conflict(e.to_string()))
            },
        )?;
        self.held.push((net.id.clone(), addr));
        Ok(addr)
    }

    /// Writes the endpoint records of the container's overlay endpoints: other hosts' agents
    /// program their peers from them.
    pub(crate) fn publish(
        &mut self,
        c: &Container,
        eps: &[Endpoint],
        nets: &[Network],
    ) -> Result<()> {
        let Some(cluster) = self.cluster.as_mut() else {
            return Ok(());
        };
        let vtep = cluster.config().vtep()?;
        for (ep, net) in eps.iter().zip(nets) {
            if net.driver != "overlay" {
                continue;
            }
            let rec = endpoint_record(&self.claim.host, vtep.into(), c, ep);
            cluster.publish_endpoint(&rec, self.lease)?;
        }
        self.held.clear();
        Ok(())
    }

    /// Gives back every address claimed so far (a failed create).
    pub(crate) fn release(mut self) {
        if let Some(cluster) = self.cluster.as_mut() {
            for (net, addr) in std::mem::take(&mut self.held) {
                if let Err(e) = cluster.release_address(&net, addr, &self.claim) {
                    tracing::warn!("release address {addr}: {e}");
                }
            }
        }
    }
}

/// The record other hosts see of one endpoint.
pub(crate) fn endpoint_record(
    host: &str,
    vtep: IpAddr,
    c: &Container,
    ep: &Endpoint,
) -> EndpointRecord {
    EndpointRecord {
        id: ep.id.clone(),
        network_id: ep.network_id.clone(),
        host: host.to_string(),
        vtep,
        container_id: c.id.clone(),
        container_name: c.name.clone(),
        aliases: ep.aliases.clone(),
        ip: ep
            .addresses
            .iter()
            .map(|a| a.addr)
            .find(IpAddr::is_ipv4)
            .unwrap_or(IpAddr::from([0, 0, 0, 0])),
        mac: ep.mac.clone(),
    }
}

/// Removes an overlay endpoint's record and address claim; returns the failures.
pub(crate) fn withdraw(paths: &Paths, ep: &Endpoint) -> Vec<String> {
    let Some(cfg) = paths.cluster.as_ref() else {
        return vec![format!(
            "endpoint {} is on an overlay but no cluster store is configured: its record stays until this host's lease expires",
            ep.host_ifname
        )];
    };
    let claim = Claim {
        host: cfg.host.clone(),
        container: ep.container_id.clone(),
    };
    let mut errors = Vec::new();
    match Cluster::connect(cfg) {
        Ok(mut cluster) => {
            if let Err(e) = cluster.withdraw_endpoint(&ep.network_id, &ep.id) {
                errors.push(e.to_string());
            }
            for a in &ep.addresses {
                if let Err(e) = cluster.release_address(&ep.network_id, a.addr, &claim) {
                    errors.push(e.to_string());
                }
            }
        }
        Err(e) => errors.push(e.to_string()),
    }
    errors
}
