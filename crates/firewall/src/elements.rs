//! What networks and published ports add to the ruleset, as encoded set and map elements.
//!
//! An [`Update`] collects element additions and removals and is sent as one nf_tables
//! netlink batch by [`crate::Firewall::apply`]: all of it takes effect, or none.

use crate::fastpath::FastPort;
use crate::ruleset::sets;
use berth_kernel::nftables::{encode, Element};
use ipnet::IpNet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// What one active bridge network contributes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkElements {
    /// The bridge device.
    pub bridge: String,
    /// Internal networks: no traffic leaves or enters the bridge except to the host.
    pub internal: bool,
    /// Subnets whose outbound traffic is masqueraded (empty for internal networks).
    pub subnets: Vec<IpNet>,
    /// Every subnet of the network (internal ones too) with its gateway address on the
    /// bridge. The subnet's other addresses are the containers': packets to them are bridged
    /// between containers and skip conntrack (`bridged4`/`bridged6`, see the ruleset).
    pub bridged: Vec<(IpNet, IpAddr)>,
}

/// One published host port (of one address family) and where it leads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortElement {
    /// IP protocol number (6 tcp, 17 udp, 132 sctp).
    pub proto: u8,
    /// One host address, or `None` for every host address of `dest`'s family.
    pub host_ip: Option<IpAddr>,
    pub host_port: u16,
    /// The container's address; its family picks the map.
    pub dest: IpAddr,
    pub dest_port: u16,
}

/// Element additions and removals, by set, and the fast path's container ports (elements
/// of the netdev table and devices of its chain, see [`crate::fastpath`]).
#[derive(Clone, Debug, Default)]
pub struct Update {
    pub(crate) removals: Vec<(&'static str, Element)>,
    pub(crate) additions: Vec<(&'static str, Element)>,
    pub(crate) fast_removals: Vec<FastPort>,
    pub(crate) fast_additions: Vec<FastPort>,
    pub(crate) hooks_removed: Vec<String>,
    pub(crate) hooks_added: Vec<String>,
}

use encode::ip as addr;

fn elem(key: Vec<u8>) -> Element {
    Element::key(key)
}

impl NetworkElements {
    fn elements(&self) -> Vec<(&'static str, Element)> {
        // Bridge names are checked to be interface names when the network is created.
        let b = encode::ifname(&self.bridge).expect("a valid interface name");
        let mut v = vec![
            (sets::BRIDGES, elem(b.clone())),
            (sets::SAME_BRIDGE, elem(encode::concat(&[&b, &b]))),
        ];
        for (net, gateway) in &self.bridged {
            let set = match net {
                IpNet::V4(_) => sets::BRIDGED4,
                IpNet::V6(_) => sets::BRIDGED6,
            };
            v.extend(without(*net, *gateway).into_iter().map(|e| (set, e)));
        }
        if self.internal {
            v.push((sets::INTERNAL_BRIDGES, elem(b)));
        } else {
            for net in &self.subnets {
                let set = match net {
                    IpNet::V4(_) => sets::MASQ4,
                    IpNet::V6(_) => sets::MASQ6,
                };
                v.extend(encode::prefix(*net).into_iter().map(|e| (set, e)));
            }
        }
        v
    }
}

/// The interval elements of `net`'s addresses but `gateway`: the ranges before and after it
/// (the whole subnet when the gateway is outside it).
fn without(net: IpNet, gateway: IpAddr) -> Vec<Element> {
    let net = net.trunc();
    if !net.contains(&gateway) {
        return encode::prefix(net);
    }
    let (first, last) = (net.network(), net.broadcast());
    let mut out = Vec::new();
    if gateway > first {
        let before = beside(gateway, false);
        out.extend(encode::range(first, before).expect("one family, in order"));
    }
    if gateway < last {
        let after = beside(gateway, true);
        out.extend(encode::range(after, last).expect("one family, in order"));
    }
    out
}

/// The address after (`up`) or before `a`; the caller knows there is one.
fn beside(a: IpAddr, up: bool) -> IpAddr {
    let step = |n: u128| if up { n + 1 } else { n - 1 };
    match a {
        IpAddr::V4(a) => Ipv4Addr::from(step(u32::from(a).into()) as u32).into(),
        IpAddr::V6(a) => Ipv6Addr::from(step(a.into())).into(),
    }
}

impl PortElement {
    fn element(&self) -> (&'static str, Element) {
        let proto = encode::proto(self.proto);
        let port = encode::port(self.host_port);
        let data = encode::concat(&[&addr(self.dest), &encode::port(self.dest_port)]);
        let (set, key) = match (self.host_ip, self.dest.is_ipv4()) {
            (None, true) => (sets::PUB4, encode::concat(&[&proto, &port])),
            (None, false) => (sets::PUB6, encode::concat(&[&proto, &port])),
            (Some(h), v4) => (
                if v4 { sets::PUB4_ADDR } else { sets::PUB6_ADDR },
                encode::concat(&[&addr(h), &proto, &port]),
            ),
        };
        (
            set,
            Element {
                data: Some(data),
                ..elem(key)
            },
        )
    }
}

impl Update {
    pub fn new() -> Update {
        Update::default()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn add_network(&mut self, n: &NetworkElements) -> &mut Self {
        self.additions.extend(n.elements());
        self
    }

    pub fn remove_network(&mut self, n: &NetworkElements) -> &mut Self {
        self.removals.extend(n.elements());
        self
    }

    pub fn add_ports(&mut self, ports: &[PortElement]) -> &mut Self {
        self.additions
            .extend(ports.iter().map(PortElement::element));
        self
    }

    pub fn remove_ports(&mut self, ports: &[PortElement]) -> &mut Self {
        self.removals.extend(ports.iter().map(PortElement::element));
        self
    }

    /// Adds container interfaces to the fast path: their map elements (frames from a host
    /// end take the fast path once the chain lists it: [`Update::hook`]).
    pub fn add_fast(&mut self, ports: &[FastPort]) -> &mut Self {
        self.fast_additions.extend_from_slice(ports);
        self
    }

    /// Takes container interfaces off the fast path (the host ends' index is not used).
    pub fn remove_fast(&mut self, ports: &[FastPort]) -> &mut Self {
        self.fast_removals.extend_from_slice(ports);
        self
    }

    /// Lists host-end names on the fast path's chain (devices that need not exist yet on
    /// kernels from 6.16, which keep a name listed and hook the device that takes it).
    pub fn hook(&mut self, names: &[String]) -> &mut Self {
        self.hooks_added.extend_from_slice(names);
        self
    }

    /// Takes host-end names off the chain. One the chain does not list is no error (see
    /// [`crate::Firewall::apply`]).
    pub fn unhook(&mut self, names: &[String]) -> &mut Self {
        self.hooks_removed.extend_from_slice(names);
        self
    }

    /// How many elements this update touches.
    pub fn len(&self) -> usize {
        self.removals.len()
            + self.additions.len()
            + self.fast_removals.len()
            + self.fast_additions.len()
            + self.hooks_removed.len()
            + self.hooks_added.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_networks_get_no_masquerade() {
        let mut e = NetworkElements {
            bridge: "br1".into(),
            internal: true,
            subnets: vec!["10.1.0.0/24".parse().unwrap()],
            bridged: Vec::new(),
        };
        let sets: Vec<_> = e.elements().into_iter().map(|(s, _)| s).collect();
        assert_eq!(
            sets,
            [sets::BRIDGES, sets::SAME_BRIDGE, sets::INTERNAL_BRIDGES]
        );
        e.internal = false;
        e.subnets.push("fd00:1::/64".parse().unwrap());
        let els = e.elements();
        let sets: Vec<_> = els.iter().map(|(s, _)| *s).collect();
        assert_eq!(
            sets,
            [
                sets::BRIDGES,
                sets::SAME_BRIDGE,
                sets::MASQ4,
                sets::MASQ4,
                sets::MASQ6,
                sets::MASQ6
            ]
        );
        assert_eq!(els[2].1.key, vec![10, 1, 0, 0]);
        assert_eq!(
            (els[3].1.key.clone(), els[3].1.interval_end),
            (vec![10, 1, 1, 0], true)
        );
    }

    #[test]
    fn bridged_addresses_are_the_subnet_without_its_gateway() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let keys = |net: &str, gw: &str| {
            without(net.parse().unwrap(), ip(gw))
                .into_iter()
                .map(|e| (e.key, e.interval_end))
                .collect::<Vec<_>>()
        };
        // 10.91.0.0, then 10.91.0.2-10.91.255.255
        assert_eq!(
            keys("10.91.0.0/16", "10.91.0.1"),
            [
                (vec![10, 91, 0, 0], false),
                (vec![10, 91, 0, 1], true),
                (vec![10, 91, 0, 2], false),
                (vec![10, 92, 0, 0], true)
            ]
        );
        // A gateway at either end leaves one range; one outside leaves the whole subnet.
        assert_eq!(keys("10.1.0.0/24", "10.1.0.0").len(), 2);
        assert_eq!(keys("10.1.0.0/24", "10.1.0.255")[1].0, [10, 1, 0, 255]);
        assert_eq!(
            keys("10.1.0.0/24", "10.9.0.1"),
            [(vec![10, 1, 0, 0], false), (vec![10, 1, 1, 0], true)]
        );
        let v6 = keys("fd00:1::/64", "fd00:1::1");
        assert_eq!((v6.len(), v6[1].0[15], v6[2].0[15]), (4, 1, 2));
        // Internal networks too, into the family's set.
        let e = NetworkElements {
            bridge: "br1".into(),
            internal: true,
            subnets: Vec::new(),
            bridged: vec![
                ("10.1.0.0/24".parse().unwrap(), ip("10.1.0.1")),
                ("fd00:1::/64".parse().unwrap(), ip("fd00:1::1")),
            ],
        };
        let sets: Vec<_> = e.elements().into_iter().map(|(s, _)| s).collect();
        assert_eq!(sets.iter().filter(|s| **s == sets::BRIDGED4).count(), 4);
        assert_eq!(sets.iter().filter(|s| **s == sets::BRIDGED6).count(), 4);
    }

    #[test]
    fn ports_pick_their_map_by_family_and_host_address() {
        let p = |host_ip: Option<&str>, dest: &str| {
            PortElement {
                proto: 6,
                host_ip: host_ip.map(|h| h.parse().unwrap()),
                host_port: 8080,
                dest: dest.parse().unwrap(),
                dest_port: 80,
            }
            .element()
        };
        let (set, e) = p(None, "172.17.0.2");
        assert_eq!(set, sets::PUB4);
        assert_eq!(e.key, vec![6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        assert_eq!(e.data.unwrap(), vec![172, 17, 0, 2, 0, 80, 0, 0]);
        assert_eq!(p(None, "fd00::2").0, sets::PUB6);
        let (set, e) = p(Some("127.0.0.1"), "172.17.0.2");
        assert_eq!(set, sets::PUB4_ADDR);
        assert_eq!(e.key.len(), 12);
        assert_eq!(p(Some("::1"), "fd00::2").0, sets::PUB6_ADDR);
    }
}
