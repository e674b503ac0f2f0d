//! Neighbour (ARP / NDP) entries: read only (`ip neigh show`).

use std::net::IpAddr;

use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::Netlink;
use crate::Result;

/// One neighbour entry: which link-layer address an IP address resolves to on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbour {
    /// Interface index the entry belongs to.
    pub index: u32,
    pub addr: IpAddr,
    /// The resolved hardware address, when there is one.
    pub mac: Option<[u8; 6]>,
    /// `ip neigh`'s state word: `REACHABLE`, `STALE`, `FAILED`, `PERMANENT`, ...
    pub state: &'static str,
}

fn state_name(s: NeighbourState) -> &'static str {
    match s {
        NeighbourState::Incomplete => "INCOMPLETE",
        NeighbourState::Reachable => "REACHABLE",
        NeighbourState::Stale => "STALE",
        NeighbourState::Delay => "DELAY",
        NeighbourState::Probe => "PROBE",
        NeighbourState::Failed => "FAILED",
        NeighbourState::Noarp => "NOARP",
        NeighbourState::Permanent => "PERMANENT",
        _ => "NONE",
    }
}

fn from_message(msg: &NeighbourMessage) -> Option<Neighbour> {
    let mut addr = None;
    let mut mac = None;
    for attr in &msg.attributes {
        match attr {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => addr = Some((*a).into()),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(a)) => addr = Some((*a).into()),
            NeighbourAttribute::LinkLayerAddress(l) => mac = <[u8; 6]>::try_from(&l[..]).ok(),
            _ => {}
        }
    }
    Some(Neighbour {
        index: msg.header.ifindex,
        addr: addr?,
        mac,
        state: state_name(msg.header.state),
    })
}

impl Netlink {
    /// `ip neigh show`: the IPv4 and IPv6 neighbour entries of this namespace.
    pub fn neighbours(&mut self) -> Result<Vec<Neighbour>> {
        let replies = self.dump(
            "list neighbours",
            RouteNetlinkMessage::GetNeighbour(NeighbourMessage::default()),
        )?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewNeighbour(msg) => from_message(msg),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_with_address_and_mac() {
        let mut msg = NeighbourMessage::default();
        msg.header.ifindex = 4;
        msg.header.state = NeighbourState::Permanent;
        msg.attributes
            .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                "172.18.0.3".parse().unwrap(),
            )));
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(vec![2, 0, 0, 0, 0, 9]));
        let n = from_message(&msg).unwrap();
        assert_eq!(n.index, 4);
        assert_eq!(n.addr, "172.18.0.3".parse::<IpAddr>().unwrap());
        assert_eq!(n.mac, Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(n.state, "PERMANENT");
        assert_eq!(from_message(&NeighbourMessage::default()), None);
    }
}
