//! The picture of this host's berth networks: networks with their bridges, containers with
//! their endpoints, addresses and published ports, and the links between them — from the
//! store, checked against the kernel (is the bridge there and up, is the veth a port of it,
//! which addresses the container's interface really has).
//!
//! [`build`] gathers; [`Topology`] is plain data, rendered by [`text`] and [`dot`] (in
//! `render`; SVG is graphviz's rendering of the DOT, done by the caller). Overlay networks
//! add their VNI, VXLAN device and remote peers to [`NetworkNode`] and the other hosts to
//! [`Topology::hosts`] (in `overlay`); bridge networks leave those empty.

use super::overlay::Programmed;
use super::NsView;
use crate::container::{self, live_state};
use crate::error::KernelContext;
use crate::{Engine, Result};
use berth_kernel::netlink::Netlink;
use berth_store::{Container, Endpoint, Network, PortMapping};
use serde::Serialize;

mod overlay;
mod render;
pub use overlay::{PeerNode, RemoteEndpointNode};
pub use render::{dot, text};

/// Everything `berth topology` shows.
#[derive(Debug, Serialize)]
pub struct Topology {
    /// This host first, then the other hosts behind the VTEPs of overlay networks.
    pub hosts: Vec<HostNode>,
    pub networks: Vec<NetworkNode>,
    pub containers: Vec<ContainerNode>,
    /// Container endpoint -> network edges.
    pub links: Vec<LinkEdge>,
}

#[derive(Debug, Serialize)]
pub struct HostNode {
    pub name: String,
    /// This machine.
    pub local: bool,
    /// The VTEP address (hosts in a cluster).
    pub vtep: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct NetworkNode {
    pub id: String,
    pub name: String,
    pub driver: String,
    pub subnets: Vec<String>,
    pub gateways: Vec<String>,
    pub internal: bool,
    pub icc: bool,
    /// The Linux bridge of a bridge network.
    pub bridge: Option<DeviceNode>,
    /// VXLAN network identifier (overlay networks).
    pub vni: Option<u32>,
    /// The VXLAN device on this host (overlay networks).
    pub vxlan: Option<DeviceNode>,
    /// The other hosts' VTEPs and their endpoints, as this host's VXLAN device holds them.
    pub peers: Vec<PeerNode>,
}

/// A kernel device as found on this host.
#[derive(Debug, Serialize)]
pub struct DeviceNode {
    pub name: String,
    /// The device exists (a bridge exists only while its network has endpoints here).
    pub present: bool,
    pub up: bool,
    pub mtu: Option<u32>,
}

#[derive(Debug, Serialize)]
pub struct ContainerNode {
    pub id: String,
    pub name: String,
    pub state: String,
    /// `bridge`, `host` or `none`.
    pub mode: String,
    pub ports: Vec<PortNode>,
    pub endpoints: Vec<EndpointNode>,
}

#[derive(Debug, Serialize)]
pub struct PortNode {
    pub protocol: String,
    /// `""` = every host address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

#[derive(Debug, Serialize)]
pub struct EndpointNode {
    pub network: String,
    pub ifname: String,
    pub host_ifname: String,
    pub mac: String,
    /// Addresses berth assigned (`addr/len`).
    pub addresses: Vec<String>,
    /// Addresses the container's interface has in the kernel.
    pub kernel_addresses: Vec<String>,
    /// The host end of the veth exists, is up, and is a port of the network's bridge.
    pub host_link_up: bool,
    pub attached: bool,
}

#[derive(Debug, Serialize)]
pub struct LinkEdge {
    pub container: String,
    pub network: String,
    pub ifname: String,
    pub host_ifname: String,
    pub addresses: Vec<String>,
}

fn device(host: &NsView, name: &str) -> DeviceNode {
    let link = host.link(name);
    DeviceNode {
        name: name.to_string(),
        present: link.is_some(),
        up: link.is_some_and(|l| l.up),
        mtu: link.map(|l| l.mtu),
    }
}

/// Reads the store and the kernel and builds the topology.
pub fn build(engine: &mut Engine) -> Result<Topology> {
    let nets = crate::network::list(engine)?;
    let containers = container::list(engine)?;
    let ports = container::all_published_ports(engine)?;
    let host = NsView::host()?;
    let mut inner = Vec::new();
    for (c, _) in &containers {
        inner.push(NsView::container(c)?);
    }
    let mut t = assemble(&nets, &containers, &ports, &host, &inner);
    let mut overlays = Vec::new();
    if nets.iter().any(|n| n.driver == "overlay") {
        let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
        for n in nets.iter().filter(|n| n.driver == "overlay") {
            overlays.push((n.id.clone(), Programmed::read(&mut nl, n)?));
        }
    }
    let records = super::overlay::records(engine, &nets);
    let local = super::overlay::host_name(engine);
    if let (Some(name), Some(cfg)) = (&local, &engine.paths.cluster) {
        t.hosts[0].name = name.clone();
        t.hosts[0].vtep = cfg.vtep().ok().map(|v| v.to_string());
    }
    overlay::add(&mut t, &overlays, records.as_deref(), local.as_deref());
    Ok(t)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

/// The pure part of [`build`]: `inner[i]` is the namespace of `containers[i]`.
fn assemble(
    nets: &[Network],
    containers: &[(Container, Vec<Endpoint>)],
    ports: &[PortMapping],
    host: &NsView,
    inner: &[Option<NsView>],
) -> Topology {
    let net_name = |id: &str| {
        nets.iter()
            .find(|n| n.id == id)
            .map_or_else(|| id.to_string(), |n| n.name.clone())
    };
    let networks = nets
        .iter()
        .map(|n| NetworkNode {
            id: n.id.clone(),
            name: n.name.clone(),
            driver: n.driver.clone(),
            subnets: n.subnets.iter().map(|s| s.subnet.to_string()).collect(),
            gateways: n.subnets.iter().map(|s| s.gateway.to_string()).collect(),
            internal: n.internal,
            icc: n.icc,
            bridge: n.bridge.as_deref().map(|b| device(host, b)),
            vni: None,
            vxlan: None,
            peers: Vec::new(),
        })
        .collect();
    let mut nodes = Vec::new();
    let mut links = Vec::new();
    for ((c, eps), view) in containers.iter().zip(inner) {
        let mut endpoints = Vec::new();
        for ep in eps {
            let net = nets.iter().find(|n| n.id == ep.network_id);
            let hl = host.link(&ep.host_ifname);
            let bridge = net
                .and_then(|n| n.bridge.as_deref())
                .and_then(|b| host.link(b));
            let addresses: Vec<String> = ep
                .addresses
                .iter()
                .map(|a| format!("{}/{}", a.addr, a.prefix_len))
                .collect();
            let kernel_addresses = view
                .as_ref()
                .map(|v| {
                    v.addresses_of(&ep.ifname)
                        .iter()
                        .map(|a| format!("{}/{}", a.addr, a.prefix_len))
                        .collect()
                })
                .unwrap_or_default();
            links.push(LinkEdge {
                container: c.name.clone(),
                network: net_name(&ep.network_id),
                ifname: ep.ifname.clone(),
                host_ifname: ep.host_ifname.clone(),
                addresses: addresses.clone(),
            });
            endpoints.push(EndpointNode {
                network: net_name(&ep.network_id),
                ifname: ep.ifname.clone(),
                host_ifname: ep.host_ifname.clone(),
                mac: ep.mac.clone(),
                addresses,
                kernel_addresses,
                host_link_up: hl.is_some_and(|l| l.up),
                attached: matches!((hl, bridge), (Some(l), Some(b)) if l.master == Some(b.index)),
            });
        }
        nodes.push(ContainerNode {
            id: c.id.clone(),
            name: c.name.clone(),
            state: live_state(c).as_str().to_string(),
            mode: c.mode.as_str().to_string(),
            ports: ports
                .iter()
                .filter(|p| p.container_id == c.id)
                .map(|p| PortNode {
                    protocol: p.protocol.clone(),
                    host_ip: p.host_ip.clone(),
                    host_port: p.host_port,
                    container_port: p.container_port,
                })
                .collect(),
            endpoints,
        });
    }
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    links.sort_by(|a, b| (&a.container, &a.network).cmp(&(&b.container, &b.network)));
    Topology {
        hosts: vec![HostNode {
            name: hostname(),
            local: true,
            vtep: None,
        }],
        networks,
        containers: nodes,
        links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_kernel::netlink::Link;
    use berth_store::{ContainerState, EndpointAddress, NetworkMode, SubnetRow};

    fn link(index: u32, name: &str, master: Option<u32>) -> Link {
        Link {
            index,
            name: name.into(),
            kind: None,
            mac: None,
            mtu: 1500,
            up: true,
            master,
            netnsid: None,
            port_isolated: None,
            stats: None,
        }
    }

    fn scenario() -> Topology {
        let net = Network {
            id: "n1".into(),
            name: "front".into(),
            driver: "bridge".into(),
            bridge: Some("br-front".into()),
            internal: false,
            icc: true,
            mtu: None,
            ipv6: false,
            builtin: false,
            options: Default::default(),
            labels: Default::default(),
            subnets: vec![SubnetRow {
                subnet: "172.18.0.0/16".parse().unwrap(),
                gateway: "172.18.0.1".parse().unwrap(),
                range: None,
            }],
            created: String::new(),
        };
        let c = Container {
            id: "c1c1c1c1c1c1c1".into(),
            name: "web".into(),
            hostname: "web".into(),
            command: vec!["sleep".into()],
            mode: NetworkMode::Bridge,
            netns: None,
            pid: None,
            pid_start: None,
            state: ContainerState::Created,
            exit_code: None,
            auto_remove: false,
            dns: vec![],
            created: String::new(),
            started: None,
            finished: None,
            owner: None,
        };
        let ep = Endpoint {
            id: "e1".into(),
            container_id: c.id.clone(),
            network_id: "n1".into(),
            ifname: "eth0".into(),
            host_ifname: "bth1".into(),
            mac: "02:00:00:00:00:01".into(),
            aliases: vec![],
            addresses: vec![EndpointAddress {
                addr: "172.18.0.2".parse().unwrap(),
                prefix_len: 16,
                gateway: None,
            }],
        };
        let host = NsView {
            links: vec![link(5, "br-front", None), link(6, "bth1", Some(5))],
            ..NsView::default()
        };
        let port = PortMapping {
            container_id: c.id.clone(),
            protocol: "tcp".into(),
            host_ip: String::new(),
            host_port: 8080,
            container_port: 80,
        };
        assemble(&[net], &[(c, vec![ep])], &[port], &host, &[None])
    }

    #[test]
    fn endpoint_is_attached_when_its_veth_is_a_port_of_the_bridge() {
        let t = scenario();
        assert!(t.networks[0].bridge.as_ref().unwrap().present);
        let e = &t.containers[0].endpoints[0];
        assert!(e.attached && e.host_link_up);
        assert_eq!(t.links[0].network, "front");
        assert_eq!(t.containers[0].ports[0].host_port, 8080);
    }

    #[test]
    fn text_and_dot_name_every_object() {
        let t = scenario();
        let txt = text(&t);
        assert!(txt.contains("network front (bridge, 172.18.0.0/16, bridge br-front up)"));
        assert!(
            txt.contains("web [created] eth0 172.18.0.2/16 via bth1 ports 0.0.0.0:8080->80/tcp")
        );
        let d = dot(&t);
        assert!(d.starts_with("digraph berth {"));
        assert!(d.contains("\"net:front\" -> \"ctr:web\" [label=\"eth0 172.18.0.2/16\"];"));
        assert!(d.trim_end().ends_with('}'));
    }

    #[test]
    fn overlay_peers_join_kernel_entries_with_the_cluster_records() {
        use berth_cluster::EndpointRecord;
        use berth_kernel::netlink::{FdbEntry, StaticNeighbour};
        let mut t = scenario();
        let rec = |host: &str, vtep: &str, name: &str, ip: &str, mac: &str| EndpointRecord {
            id: name.into(),
            network_id: "n1".into(),
            host: host.into(),
            vtep: vtep.parse().unwrap(),
            container_id: format!("id-{name}"),
            container_name: name.into(),
            aliases: vec![],
            ip: ip.parse().unwrap(),
            mac: mac.into(),
        };
        let records = vec![
            rec("h2", "10.100.0.2", "b2", "10.0.0.3", "02:42:0a:00:00:03"),
            rec("h2", "10.100.0.2", "c2", "10.0.0.4", "02:42:0a:00:00:04"),
            rec("h1", "10.100.0.1", "a1", "10.0.0.2", "02:42:0a:00:00:02"),
        ];
        let vtep: std::net::IpAddr = "10.100.0.2".parse().unwrap();
        let p = Programmed {
            name: "vx-n1".into(),
            vni: Some(4096),
            link: Some(link(9, "vx-n1", Some(5))),
            fdb: vec![FdbEntry {
                mac: [2, 0x42, 10, 0, 0, 3],
                vtep,
            }],
            flood: vec![vtep],
            neighbours: vec![StaticNeighbour {
                ip: "10.0.0.3".parse().unwrap(),
                mac: [2, 0x42, 10, 0, 0, 3],
            }],
        };
        overlay::add(&mut t, &[("n1".into(), p)], Some(&records), Some("h1"));
        let n = &t.networks[0];
        assert_eq!(n.vni, Some(4096));
        assert!(n.vxlan.as_ref().is_some_and(|v| v.present && v.up));
        assert_eq!(n.peers.len(), 1, "the local host is no peer");
        let peer = &n.peers[0];
        assert_eq!((peer.host.as_deref(), peer.flood), (Some("h2"), true));
        let eps: Vec<(Option<&str>, bool)> = peer
            .endpoints
            .iter()
            .map(|e| (e.container.as_deref(), e.programmed))
            .collect();
        assert_eq!(eps, [(Some("b2"), true), (Some("c2"), false)]);
        assert_eq!(t.hosts.len(), 2);
        assert_eq!(t.hosts[1].name, "h2");
        assert!(text(&t).contains("c2 10.0.0.4 02:42:0a:00:00:04 (NOT PROGRAMMED)"));
        assert!(dot(&t).contains("subgraph cluster_remote0"));
    }
}
