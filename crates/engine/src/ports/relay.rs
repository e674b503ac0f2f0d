//! `[::1]` host ports, which NAT cannot serve: IPv6 has no `route_localnet`, so the kernel
//! drops the replies of a DNAT'd `::1` flow. The agent relays them in userspace (one
//! listening socket per host port, `berth-agent`'s `relay`); this lists them from the store.
//!
//! A mapping needs a relay when its host address covers `::1`: `[::1]` itself, `[::]` and no
//! host address at all. Every other address of such a mapping stays a map element.

use super::spec::{HostIp, Proto};
use crate::{Engine, Result};
use berth_store::{Endpoint, Network};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// One `[::1]` host port and where the agent sends what arrives there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Relay {
    pub proto: Proto,
    pub host_port: u16,
    /// The container's address and port: its IPv6 address when it has one, else IPv4.
    pub target: SocketAddr,
}

impl Relay {
    /// The address the agent listens on: `[::1]:HOSTPORT`.
    pub fn listen(&self) -> SocketAddr {
        SocketAddr::new(Ipv6Addr::LOCALHOST.into(), self.host_port)
    }
}

/// A listening socket on `r`'s `[::1]` port: a TCP listener (`SO_REUSEADDR`, as the
/// engine's probe and the agent bind theirs) or a bound UDP socket. A door binds its
/// container's and hands them to the agent (`crate::agent::adopt_ports`), so the port takes
/// connections when the door returns without the door waiting for the agent.
pub fn listen(r: &Relay) -> std::io::Result<std::os::fd::OwnedFd> {
    match r.proto {
        Proto::Tcp => Ok(std::net::TcpListener::bind(r.listen())?.into()),
        Proto::Udp => Ok(std::net::UdpSocket::bind(r.listen())?.into()),
        Proto::Sctp => Err(std::io::Error::other("no SCTP relay")),
    }
}

/// Whether `e`, from binding `[::1]`, says the host has no IPv6 loopback (IPv6 off):
/// nothing to relay there.
pub fn no_v6_loopback(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EADDRNOTAVAIL | libc::EAFNOSUPPORT)
    )
}

/// Whether a mapping on `host` takes connections to `[::1]`.
pub(crate) fn covers_v6_loopback(host: HostIp) -> bool {
    match host {
        HostIp::Any | HostIp::AnyV6 => true,
        HostIp::AnyV4 => false,
        HostIp::Addr(a) => is_v6_loopback(a),
    }
}

pub(crate) fn is_v6_loopback(a: IpAddr) -> bool {
    a == IpAddr::V6(Ipv6Addr::LOCALHOST)
}

/// Every `[::1]` host port the store implies, sorted. SCTP mappings get none (no SCTP
/// sockets to relay with), nor do containers without a non-internal address.
pub fn relays(engine: &mut Engine) -> Result<Vec<Relay>> {
    engine.store.read(|tx| -> Result<_> {
        let nets: BTreeMap<String, Network> = tx
            .networks()?
            .into_iter()
            .map(|n| (n.id.clone(), n))
            .collect();
        let mut eps: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
        for e in tx.all_endpoints()? {
            eps.entry(e.container_id.clone()).or_default().push(e);
        }
        let mut out = Vec::new();
        for p in tx.all_ports()? {
            if let Some(mine) = eps.get(&p.container_id) {
                out.extend(relay_of(&p, mine, &nets));
            }
        }
        out.sort();
        Ok(out)
    })
}

/// The `[::1]` host ports of one container (what [`relays`] lists for it), sorted: a few
/// point reads, whatever the number of containers.
pub fn relays_of(engine: &mut Engine, container_id: &str) -> Result<Vec<Relay>> {
    engine.store.read(|tx| -> Result<_> {
        let eps = tx.endpoints_of_container(container_id)?;
        let nets = tx.networks_of(&eps)?;
        let mut out: Vec<Relay> = tx
            .ports_of_container(container_id)?
            .iter()
            .filter_map(|p| relay_of(p, &eps, &nets))
            .collect();
        out.sort();
        Ok(out)
    })
}

/// The relay of mapping `p` of a container with endpoints `eps` (on networks `nets`), if it
/// needs one.
pub fn relay_of(
    p: &berth_store::PortMapping,
    eps: &[Endpoint],
    nets: &BTreeMap<String, Network>,
) -> Option<Relay> {
    let host = HostIp::from_store(&p.host_ip).unwrap_or(HostIp::Any);
    let proto = match Proto::parse(&p.protocol) {
        Some(pr @ (Proto::Tcp | Proto::Udp)) if covers_v6_loopback(host) => pr,
        _ => return None,
    };
    let ep = crate::fw::published_endpoint(eps, nets)?;
    let (v4, v6) = super::targets(std::slice::from_ref(ep));
    Some(Relay {
        proto,
        host_port: p.host_port,
        target: SocketAddr::new(v6.or(v4)?, p.container_port),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_coverage_follows_the_host_address() {
        assert!(covers_v6_loopback(HostIp::Any));
        assert!(covers_v6_loopback(HostIp::AnyV6));
        assert!(!covers_v6_loopback(HostIp::AnyV4));
        assert!(covers_v6_loopback(HostIp::Addr("::1".parse().unwrap())));
        assert!(!covers_v6_loopback(HostIp::Addr(
            "fd00::1".parse().unwrap()
        )));
        assert!(!covers_v6_loopback(HostIp::Addr(
            "127.0.0.1".parse().unwrap()
        )));
    }
}
