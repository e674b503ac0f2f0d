//! VXLAN devices and their static forwarding state: FDB entries (MAC -> remote VTEP),
//! flood entries (all-zero MAC -> remote VTEP) and neighbour entries (IP -> MAC) that a
//! device with `proxy` on answers ARP from.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_APPEND, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::link::{link_message, Link};
use super::{check_ifname, Netlink};
use crate::Result;

/// The IANA VXLAN port.
pub const VXLAN_PORT: u16 = 4789;

/// The all-zero MAC of a flood (BUM) entry.
pub const FLOOD_MAC: [u8; 6] = [0; 6];

/// One static FDB entry of a VXLAN device (`bridge fdb ... dev VX dst VTEP self`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FdbEntry {
    pub mac: [u8; 6],
    pub vtep: IpAddr,
}

/// A permanent neighbour entry of a device, as berth programs them (`ip neigh ... lladdr MAC dev DEV nud permanent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StaticNeighbour {
    pub ip: IpAddr,
    pub mac: [u8; 6],
}

/// `RTM_NEWLINK` creating a VXLAN device: VNI `vni`, source `local`, UDP `port`, learning
/// off, proxy ARP on (answered from the device's neighbour entries).
pub(crate) fn vxlan_message(
    name: &str,
    vni: u32,
    local: Ipv4Addr,
    port: u16,
    mtu: u32,
) -> LinkMessage {
    let mut msg = link_message(0);
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    msg.attributes.push(LinkAttribute::Mtu(mtu));
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Vxlan),
        LinkInfo::Data(InfoData::Vxlan(vec![
            InfoVxlan::Id(vni),
            InfoVxlan::Local(local),
            InfoVxlan::Port(port),
            InfoVxlan::Learning(false),
            InfoVxlan::Proxy(true),
        ])),
    ]));
    msg
}

fn neigh_message(family: AddressFamily, ifindex: u32) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.family = family;
    msg.header.ifindex = ifindex;
    msg.header.state = NeighbourState::Permanent;
    msg
}

/// `RTM_NEWNEIGH`/`RTM_DELNEIGH` body of an FDB entry on the VXLAN device itself (`self`).
pub(crate) fn fdb_message(ifindex: u32, entry: &FdbEntry) -> NeighbourMessage {
    let mut msg = neigh_message(AddressFamily::Bridge, ifindex);
    msg.header.flags = NeighbourFlags::Own;
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(entry.mac.to_vec()));
    msg.attributes
        .push(NeighbourAttribute::Destination(address(entry.vtep)));
    msg
}

/// `RTM_NEWNEIGH`/`RTM_DELNEIGH` body of a permanent neighbour entry.
pub(crate) fn neighbour_message(ifindex: u32, n: &StaticNeighbour) -> NeighbourMessage {
    let family = match n.ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    let mut msg = neigh_message(family, ifindex);
    msg.attributes
        .push(NeighbourAttribute::Destination(address(n.ip)));
    msg.attributes
        .push(NeighbourAttribute::LinkLayerAddress(n.mac.to_vec()));
    msg
}

fn address(ip: IpAddr) -> NeighbourAddress {
    match ip {
        IpAddr::V4(a) => NeighbourAddress::Inet(a),
        IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }
}

fn parse_parts(msg: &NeighbourMessage) -> (Option<IpAddr>, Option<[u8; 6]>) {
    let mut ip = None;
    let mut mac = None;
    for a in &msg.attributes {
        match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v)) => ip = Some(IpAddr::V4(*v)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v)) => {
                ip = Some(IpAddr::V6(*v))
            }
            // An AF_BRIDGE message carries its VTEP as raw bytes.
            NeighbourAttribute::Destination(NeighbourAddress::Other(b)) => {
                ip = match b.len() {
                    4 => <[u8; 4]>::try_from(b.as_slice()).ok().map(IpAddr::from),
                    16 => <[u8; 16]>::try_from(b.as_slice()).ok().map(IpAddr::from),
                    _ => None,
                }
            }
            NeighbourAttribute::LinkLayerAddress(b) => mac = <[u8; 6]>::try_from(b.as_slice()).ok(),
            _ => {}
        }
    }
    (ip, mac)
}

/// The FDB entry a dumped message describes, when it is a device (`self`) entry of
/// `ifindex` with a remote destination (the bridge's own `master` entries have none).
pub(crate) fn fdb_from_message(msg: &NeighbourMessage, ifindex: u32) -> Option<FdbEntry> {
    if msg.header.ifindex != ifindex || !msg.header.flags.contains(NeighbourFlags::Own) {
        return None;
    }
    match parse_parts(msg) {
        (Some(vtep), Some(mac)) => Some(FdbEntry { mac, vtep }),
        _ => None,
    }
}

/// The neighbour entry a dumped message describes, when it is a permanent entry of `ifindex`.
pub(crate) fn neighbour_from_message(
    msg: &NeighbourMessage,
    ifindex: u32,
) -> Option<StaticNeighbour> {
    if msg.header.ifindex != ifindex || msg.header.state != NeighbourState::Permanent {
        return None;
    }
    match parse_parts(msg) {
        (Some(ip), Some(mac)) => Some(StaticNeighbour { ip, mac }),
        _ => None,
    }
}

impl Netlink {
    /// `ip link add NAME mtu MTU type vxlan id VNI local LOCAL dstport PORT nolearning
    /// proxy`. Returns the new ifindex; an existing name is an error with
    /// [`crate::Error::is_exists`].
    pub fn create_vxlan(
        &mut self,
        name: &str,
        vni: u32,
        local: Ipv4Addr,
        port: u16,
        mtu: u32,
    ) -> Result<u32> {
        check_ifname(name)?;
        if vni == 0 || vni >= 1 << 24 {
            return Err(crate::Error::Invalid(format!(
                "VNI {vni} of {name}: it must be between 1 and 16777215"
            )));
        }
        let op = format!("create vxlan {name} (vni {vni}, local {local})");
        self.request(
            &op,
            RouteNetlinkMessage::NewLink(vxlan_message(name, vni, local, port, mtu)),
            NLM_F_CREATE | NLM_F_EXCL,
        )?;
        self.link_by_name(name)?
            .map(|l: Link| l.index)
            .ok_or_else(|| {
                super::socket::protocol(&op, "the link is gone right after its creation")
            })
    }

    /// `bridge fdb append MAC dev INDEX dst VTEP self permanent`. Appending lets several
    /// flood entries (all-zero MAC) point at different VTEPs; an existing entry is success.
    pub fn add_fdb(&mut self, ifindex: u32, entry: &FdbEntry) -> Result<()> {
        let op = format!(
            "add fdb entry {} dst {} on link {ifindex}",
            fmt_mac(&entry.mac),
            entry.vtep
        );
        let flags = if entry.mac == FLOOD_MAC {
            NLM_F_CREATE | NLM_F_APPEND
        } else {
            NLM_F_CREATE | NLM_F_REPLACE
        };
        match self.request(
            &op,
            RouteNetlinkMessage::NewNeighbour(fdb_message(ifindex, entry)),
            flags,
        ) {
            Err(e) if e.is_exists() => Ok(()),
            other => other.map(drop),
        }
    }

    /// `bridge fdb del MAC dev INDEX dst VTEP self`. A missing entry is success.
    pub fn delete_fdb(&mut self, ifindex: u32, entry: &FdbEntry) -> Result<()> {
        let op = format!(
            "delete fdb entry {} dst {} on link {ifindex}",
            fmt_mac(&entry.mac),
            entry.vtep
        );
        match self.request(
            &op,
            RouteNetlinkMessage::DelNeighbour(fdb_message(ifindex, entry)),
            0,
        ) {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// The device (`self`) FDB entries of `ifindex` that have a destination
    /// (`bridge fdb show dev INDEX self`).
    pub fn fdb_entries(&mut self, ifindex: u32) -> Result<Vec<FdbEntry>> {
        let mut q = NeighbourMessage::default();
        q.header.family = AddressFamily::Bridge;
        q.header.ifindex = ifindex;
        let replies = self.dump("list fdb entries", RouteNetlinkMessage::GetNeighbour(q))?;
        Ok(replies
            .iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(m) => fdb_from_message(m, ifindex),
                _ => None,
            })
            .collect())
    }

    /// `ip neigh replace IP lladdr MAC dev INDEX nud permanent`.
    pub fn add_neighbour(&mut self, ifindex: u32, n: &StaticNeighbour) -> Result<()> {
        let op = format!(
            "add neighbour {} lladdr {} on link {ifindex}",
            n.ip,
            fmt_mac(&n.mac)
        );
        self.request(
            &op,
            RouteNetlinkMessage::NewNeighbour(neighbour_message(ifindex, n)),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .map(drop)
    }

    /// `ip neigh del IP dev INDEX`. A missing entry is success.
    pub fn delete_neighbour(&mut self, ifindex: u32, n: &StaticNeighbour) -> Result<()> {
        let op = format!("delete neighbour {} on link {ifindex}", n.ip);
        match self.request(
            &op,
            RouteNetlinkMessage::DelNeighbour(neighbour_message(ifindex, n)),
            0,
        ) {
            Err(e) if e.is_not_found() => Ok(()),
            other => other.map(drop),
        }
    }

    /// The permanent IPv4 and IPv6 neighbour entries of `ifindex` (`ip neigh show dev INDEX
    /// nud permanent`).
    pub fn static_neighbours(&mut self, ifindex: u32) -> Result<Vec<StaticNeighbour>> {
        let mut out = Vec::new();
        for family in [AddressFamily::Inet, AddressFamily::Inet6] {
            let mut q = NeighbourMessage::default();
            q.header.family = family;
            q.header.ifindex = ifindex;
            let replies = self.dump("list neighbours", RouteNetlinkMessage::GetNeighbour(q))?;
            out.extend(replies.iter().filter_map(|r| match r {
                RouteNetlinkMessage::NewNeighbour(m) => neighbour_from_message(m, ifindex),
                _ => None,
            }));
        }
        Ok(out)
    }
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn fmt_mac(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{Emitable, Parseable};

    use super::*;

    fn roundtrip(msg: &NeighbourMessage) -> NeighbourMessage {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        NeighbourMessage::parse(&bytes[..]).unwrap()
    }

    #[test]
    fn fdb_entry_roundtrips_as_a_self_bridge_entry() {
        let e = FdbEntry {
            mac: [2, 0, 0, 0, 0, 9],
            vtep: "10.100.0.3".parse().unwrap(),
        };
        let msg = roundtrip(&fdb_message(5, &e));
        assert_eq!(msg.header.family, AddressFamily::Bridge);
        assert_eq!(msg.header.state, NeighbourState::Permanent);
        assert_eq!(fdb_from_message(&msg, 5), Some(e));
        assert_eq!(fdb_from_message(&msg, 6), None);
        let mut master = msg.clone();
        master.header.flags = NeighbourFlags::Controller;
        assert_eq!(fdb_from_message(&master, 5), None);
    }

    #[test]
    fn neighbour_entry_roundtrips() {
        let n = StaticNeighbour {
            ip: "10.0.0.7".parse().unwrap(),
            mac: [2, 0, 10, 0, 0, 7],
        };
        let msg = roundtrip(&neighbour_message(9, &n));
        assert_eq!(msg.header.family, AddressFamily::Inet);
        assert_eq!(neighbour_from_message(&msg, 9), Some(n));
        let mut stale = msg.clone();
        stale.header.state = NeighbourState::Stale;
        assert_eq!(neighbour_from_message(&stale, 9), None);
    }

    #[test]
    fn vxlan_message_turns_learning_off_and_proxy_on() {
        let msg = vxlan_message(
            "vx-a",
            4096,
            "10.100.0.1".parse().unwrap(),
            VXLAN_PORT,
            1450,
        );
        let data = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(i) => i.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Vxlan(v)) => Some(v.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap();
        assert!(data.contains(&InfoVxlan::Id(4096)));
        assert!(data.contains(&InfoVxlan::Learning(false)));
        assert!(data.contains(&InfoVxlan::Proxy(true)));
        assert!(data.contains(&InfoVxlan::Port(4789)));
        assert!(msg.attributes.contains(&LinkAttribute::Mtu(1450)));
        assert_eq!(fmt_mac(&[0xaa, 0, 1, 2, 3, 0xff]), "aa:00:01:02:03:ff");
    }
}
