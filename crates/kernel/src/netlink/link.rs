//! Links (network devices): dump, look up, create bridges and veth pairs,
//! change and delete them.

use std::fs::File;
use std::os::fd::AsRawFd;

use netlink_packet_core::{DefaultNla, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL};
use netlink_packet_route::AddressFamily;

use netlink_packet_route::link::{
    AfSpecInet6, AfSpecUnspec, In6AddrGenMode, InfoBridge, InfoBridgePort, InfoData, InfoKind,
    InfoPortData, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
    LinkProtoInfoBridge,
};
use netlink_packet_route::RouteNetlinkMessage;

use super::socket::protocol;
use super::{check_ifname, Netlink};
use crate::Result;

/// `IFLA_BRPORT_STATE` and its `BR_STATE_DISABLED` (linux/if_bridge.h, if_link.h).
const IFLA_BRPORT_STATE: u16 = 1;
const BR_STATE_DISABLED: u8 = 0;

/// A network device as the kernel reports it (`ip -d link show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Link kind from `IFLA_INFO_KIND`: "bridge", "veth", ...; `None` for
    /// devices without one (e.g. `lo`, physical NICs).
    pub kind: Option<String>,
    /// Hardware address, when it is an Ethernet (6-byte) address.
    pub mac: Option<[u8; 6]>,
    /// MTU.
    pub mtu: u32,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// Index of the master device (the bridge this device is a port of).
    pub master: Option<u32>,
    /// `IFLA_LINK_NETNSID`: the peer of this veth lives in another namespace
    /// with this id (as seen from the socket's namespace).
    pub netnsid: Option<i32>,
    /// For a bridge port: whether `IFLA_BRPORT_ISOLATED` is set.
    pub port_isolated: Option<bool>,
    /// Traffic counters (`IFLA_STATS64`, `ip -s link show`).
    pub stats: Option<LinkStats>,
}

/// A link's traffic counters since it was created (`ip -s link show`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

impl Link {
    /// Builds a [`Link`] from an `RTM_NEWLINK` reply.
    pub(crate) fn from_message(msg: &LinkMessage) -> Link {
        let mut link = Link {
            index: msg.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            mtu: 0,
            up: msg.header.flags.contains(LinkFlags::Up),
            master: None,
            netnsid: None,
            port_isolated: None,
            stats: None,
        };
        for attr in &msg.attributes {
            match attr {
                LinkAttribute::IfName(name) => link.name.clone_from(name),
                LinkAttribute::Address(addr) => {
                    link.mac = <[u8; 6]>::try_from(addr.as_slice()).ok()
                }
                LinkAttribute::Mtu(mtu) => link.mtu = *mtu,
                LinkAttribute::Controller(master) => link.master = Some(*master),
                LinkAttribute::LinkNetNsId(id) => link.netnsid = Some(*id),
                LinkAttribute::Stats64(st) => {
                    link.stats = Some(LinkStats {
                        rx_bytes: st.rx_bytes,
                        tx_bytes: st.tx_bytes,
                        rx_packets: st.rx_packets,
                        tx_packets: st.tx_packets,
                        rx_errors: st.rx_errors,
                        tx_errors: st.tx_errors,
                        rx_dropped: st.rx_dropped,
                        tx_dropped: st.tx_dropped,
                    })
                }
                LinkAttribute::LinkInfo(infos) => {
                    for info in infos {
                        match info {
                            LinkInfo::Kind(kind) => link.kind = Some(kind.to_string()),
                            LinkInfo::PortData(InfoPortData::BridgePort(port)) => {
                                link.port_isolated = port.iter().find_map(|p| match p {
                                    InfoBridgePort::Isolated(on) => Some(*on),
                                    _ => None,
                                });
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        link
    }
}

pub(crate) fn link_message(index: u32) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.header.index = index;
    msg
}

/// `RTM_NEWLINK` creating a bridge.
pub(crate) fn bridge_message(name: &str, mtu: Option<u32>) -> LinkMessage {
    let mut msg = link_message(0);
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    // No multicast snooping: multicast is flooded to every port, as an unmanaged switch does
    // (and as a snooping bridge does anyway with no querier on the segment). With snooping
    // on, every port change (a port added, a carrier coming up) re-enables multicast on
    // every port of the bridge with timers: a cost per container that grew with the number
    // of containers on the network (~2 ms per setup at 1000 here).
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Bridge),
        LinkInfo::Data(InfoData::Bridge(vec![InfoBridge::MulticastSnooping(false)])),
    ]));
    msg
}

/// `RTM_NEWLINK` creating a veth pair whose peer is created in the
/// namespace behind `peer_netns_fd`.
pub(crate) fn veth_message(
    host_name: &str,
    peer_name: &str,
    peer_netns_fd: i32,
    mtu: Option<u32>,
    peer_mac: Option<[u8; 6]>,
) -> LinkMessage {
    // One TX and one RX queue on each end, asked for up front: left unset, the kernel makes
    // one per possible CPU and then cuts the real count to one on the registered device,
    // and each cut waits for an expedited RCU grace period (`synchronize_net`), two per pair.
    let queues = [LinkAttribute::NumTxQueues(1), LinkAttribute::NumRxQueues(1)];
    let mut peer = link_message(0);
    peer.attributes.extend(queues.clone());
    peer.attributes
        .push(LinkAttribute::IfName(peer_name.to_string()));
    if let Some(mtu) = mtu {
        peer.attributes.push(LinkAttribute::Mtu(mtu));
    }
    if let Some(mac) = peer_mac {
        peer.attributes.push(LinkAttribute::Address(mac.to_vec()));
    }
    peer.attributes.push(LinkAttribute::NetNsFd(peer_netns_fd));

    let mut msg = link_message(0);
    msg.attributes
        .push(LinkAttribute::IfName(host_name.to_string()));
    msg.attributes.extend(queues);
    if let Some(mtu) = mtu {
        msg.attributes.push(LinkAttribute::Mtu(mtu));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::Kind(InfoKind::Veth),
        LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
    ]));
    msg
}

/// `RTM_NEWLINK` setting a bridge port flag through the port ("slave") data.
pub(crate) fn port_flag_message(index: u32, flag: InfoBridgePort) -> LinkMessage {
    let mut msg = link_message(index);
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(vec![flag])),
    ]));
    msg
}

/// The ifindex of the link `name` among the replies to an `NLM_F_ECHO` request.
fn echoed_index(replies: &[RouteNetlinkMessage], name: &str) -> Option<u32> {
    replies.iter().find_map(|reply| match reply {
        RouteNetlinkMessage::NewLink(msg)
            if msg
                .attributes
                .iter()
                .any(|a| matches!(a, LinkAttribute::IfName(n) if n == name)) =>
        {
            Some(msg.header.index)
        }
        _ => None,
    })
}

impl Netlink {
    /// All links of this socket's namespace (`ip -d link show`).
    pub fn links(&mut self) -> Result<Vec<Link>> {
        let replies = self.dump(
            "list links",
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
        )?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewLink(msg) => Some(Link::from_message(msg)),
                _ => None,
            })
            .collect())
    }

    fn get_link(&mut self, op: &str, msg: LinkMessage) -> Result<Option<Link>> {
        match self.request(op, RouteNetlinkMessage::GetLink(msg), 0) {
            Ok(replies) => replies
                .iter()
                .find_map(|reply| match reply {
                    RouteNetlinkMessage::NewLink(msg) => Some(Link::from_message(msg)),
                    _ => None,
                })
                .map(Some)
                .ok_or_else(|| protocol(op, "no RTM_NEWLINK in the reply")),
            Err(err) if err.is_not_found() => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// The link called `name`, or `None` (`ip link show NAME`).
    pub fn link_by_name(&mut self, name: &str) -> Result<Option<Link>> {
        check_ifname(name)?;
        let mut msg = link_message(0);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.get_link(&format!("look up link {name}"), msg)
    }

    /// The link with index `index`, or `None` (`ip link show dev INDEX`).
    pub fn link_by_index(&mut self, index: u32) -> Result<Option<Link>> {
        self.get_link(&format!("look up link {index}"), link_message(index))
    }

    fn index_of(&mut self, name: &str, op: &str) -> Result<u32> {
        self.link_by_name(name)?
            .map(|link| link.index)
            .ok_or_else(|| protocol(op, format!("link {name} is gone right after its creation")))
    }

    /// Sends an `RTM_NEWLINK` that creates the link `name` and returns its ifindex. The
    /// request carries `NLM_F_ECHO`, so a kernel that honours it for new links (6.x does)
    /// sends the link back before its acknowledgement; only an older one costs a lookup. That
    /// lookup is not free: `RTM_GETLINK` first runs the link's pending link-state events
    /// (`linkwatch_sync_dev`), and for an up link without a carrier that waits for an RCU
    /// grace period.
    fn create_link(&mut self, op: &str, name: &str, msg: LinkMessage) -> Result<u32> {
        let replies = self.request(
            op,
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
        )?;
        match echoed_index(&replies, name) {
            Some(index) => Ok(index),
            None => self.index_of(name, op),
        }
    }

    /// `ip link add NAME [mtu MTU] type bridge`. Returns the new ifindex. An
    /// existing device of that name is an error with [`crate::Error::is_exists`].
    pub fn create_bridge(&mut self, name: &str, mtu: Option<u32>) -> Result<u32> {
        check_ifname(name)?;
        let op = format!("create bridge {name}");
        self.create_link(&op, name, bridge_message(name, mtu))
    }

    /// `ip link add HOST [mtu MTU] type veth peer name PEER [mtu MTU]
    /// [address MAC] netns NS`: one `RTM_NEWLINK` that creates the host end
    /// in this socket's namespace and the peer directly inside `peer_netns`.
    /// Returns the host end's ifindex.
    pub fn create_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: &File,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
    ) -> Result<u32> {
        self.add_veth(host_name, peer_name, peer_netns, mtu, peer_mac, None)
    }

    /// [`Netlink::create_veth`] whose host end is made a port of the bridge `bridge` in the
    /// same `RTM_NEWLINK` (`ip link add HOST master BR type veth ...`). Both ends are down:
    /// the caller brings the host end up after the peer ([`Netlink::set_up`]), and the pair
    /// gets its carrier then. Up any earlier, the host end would sit up without a carrier,
    /// and the kernel's handling of that state (`dev_deactivate`, run by the link-state
    /// worker or by the next `RTM_GETLINK` of the link) waits for an RCU grace period while
    /// it holds the RTNL lock that every other link request needs. `group` is the host end's
    /// interface group (`ip link ... group N`; 0, the kernel's default, sends none).
    #[allow(clippy::too_many_arguments)]
    pub fn create_veth_port(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: &File,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
        bridge: u32,
        group: u32,
    ) -> Result<u32> {
        self.add_veth(
            host_name,
            peer_name,
            peer_netns,
            mtu,
            peer_mac,
            Some((bridge, group)),
        )
    }

    fn add_veth(
        &mut self,
        host_name: &str,
        peer_name: &str,
        peer_netns: &File,
        mtu: Option<u32>,
        peer_mac: Option<[u8; 6]>,
        port: Option<(u32, u32)>,
    ) -> Result<u32> {
        check_ifname(host_name)?;
        check_ifname(peer_name)?;
        let mut msg = veth_message(host_name, peer_name, peer_netns.as_raw_fd(), mtu, peer_mac);
        let op = match port {
            None => format!("create veth {host_name} with peer {peer_name} in container namespace"),
            Some((bridge, group)) => {
                msg.attributes.push(LinkAttribute::Controller(bridge));
                if group != 0 {
                    msg.attributes.push(LinkAttribute::Group(group));
                }
                format!("create veth {host_name} on bridge {bridge} with peer {peer_name}")
            }
        };
        self.create_link(&op, host_name, msg)
    }

    fn set_link(&mut self, op: &str, msg: LinkMessage) -> Result<()> {
        self.request(op, RouteNetlinkMessage::SetLink(msg), 0)
            .map(drop)
    }

    /// `ip link set DEV master BR`.
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link(&format!("set master of link {index} to {master}"), msg)
    }

    /// `ip link set DEV nomaster`.
    pub fn set_nomaster(&mut self, index: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::Controller(0));
        self.set_link(&format!("remove master of link {index}"), msg)
    }

    /// `ip link set NAME nomaster`. Returns `Ok(false)` if there was no such link.
    pub fn set_nomaster_by_name(&mut self, name: &str) -> Result<bool> {
        check_ifname(name)?;
        let mut msg = link_message(0);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        msg.attributes.push(LinkAttribute::Controller(0));
        match self.set_link(&format!("remove master of link {name}"), msg) {
            Ok(()) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// `bridge link set dev NAME state 0` (`disabled`): the bridge port forwards nothing
    /// either way, and it stays a port. Unlike leaving the bridge (`nomaster`), which waits
    /// for an RCU grace period while it unhooks the port's receive handler, this waits for
    /// nothing. It goes as the bridge's own `RTM_SETLINK` (`AF_BRIDGE`, `IFLA_PROTINFO`):
    /// the same state set through the port's link data (`ip link set NAME type
    /// bridge_slave state 0`) ends in a link-change event after which the bridge enables
    /// the port again at once. The kernel also enables it again when its link gets a
    /// carrier anew (the peer going down and up). `Ok(false)` if there was no such link; a
    /// link that is down (which forwards nothing anyway) is left as it is.
    pub fn disable_port_by_name(&mut self, name: &str) -> Result<bool> {
        let Some(link) = self.link_by_name(name)? else {
            return Ok(false);
        };
        let mut msg = link_message(link.index);
        msg.header.interface_family = AddressFamily::Bridge;
        msg.attributes.push(LinkAttribute::ProtoInfoBridge(vec![
            LinkProtoInfoBridge::Other(DefaultNla::new(IFLA_BRPORT_STATE, vec![BR_STATE_DISABLED])),
        ]));
        match self.request(
            &format!("disable bridge port {name}"),
            RouteNetlinkMessage::SetLink(msg),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) if err.errno() == Some(libc::ENETDOWN) => Ok(true),
            Err(err) => Err(err),
        }
    }

    /// `ip link set DEV addrgenmode none`: the link gets no IPv6 link-local address, so no
    /// DAD, router solicitation or multicast report leaves it (an IPv4-only link). Set it
    /// before the link comes up.
    pub fn set_ipv6_addr_gen_none(&mut self, index: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes
            .push(LinkAttribute::AfSpecUnspec(vec![AfSpecUnspec::Inet6(
                vec![AfSpecInet6::AddrGenMode(In6AddrGenMode::None)],
            )]));
        self.set_link(
            &format!("set IPv6 address generation of link {index} to none"),
            msg,
        )
    }

    /// `ip link set DEV up`.
    pub fn set_up(&mut self, index: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.header.flags = LinkFlags::Up;
        msg.header.change_mask = LinkFlags::Up;
        self.set_link(&format!("set link {index} up"), msg)
    }

    /// `ip link set DEV down`.
    pub fn set_down(&mut self, index: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.header.change_mask = LinkFlags::Up;
        self.set_link(&format!("set link {index} down"), msg)
    }

    /// `ip link set DEV mtu MTU`.
    pub fn set_mtu(&mut self, index: u32, mtu: u32) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::Mtu(mtu));
        self.set_link(&format!("set mtu of link {index} to {mtu}"), msg)
    }

    /// `ip link set DEV address MAC`.
    pub fn set_mac(&mut self, index: u32, mac: [u8; 6]) -> Result<()> {
        let mut msg = link_message(index);
        msg.attributes.push(LinkAttribute::Address(mac.to_vec()));
        self.set_link(&format!("set mac address of link {index}"), msg)
    }

    /// `ip link set DEV type bridge_slave isolated on|off`: isolated ports
    /// of a bridge cannot talk to each other, only to non-isolated ports.
    pub fn set_port_isolated(&mut self, index: u32, isolated: bool) -> Result<()> {
        let op = format!(
            "set bridge port isolation of link {index} {}",
            if isolated { "on" } else { "off" }
        );
        self.request(
            &op,
            RouteNetlinkMessage::NewLink(port_flag_message(
                index,
                InfoBridgePort::Isolated(isolated),
            )),
            0,
        )
        .map(drop)
    }

    /// `ip link set DEV type bridge_slave hairpin on|off`: whether the bridge may send a
    /// frame back out of the port it came in by (needed when a container reaches its own
    /// published port and the DNAT'd packet is bridged back to it).
    pub fn set_port_hairpin(&mut self, index: u32, on: bool) -> Result<()> {
        self.request(
            &format!("set bridge port hairpin mode of link {index}"),
            RouteNetlinkMessage::NewLink(port_flag_message(index, InfoBridgePort::HairpinMode(on))),
            0,
        )
        .map(drop)
    }

    /// `ip link del dev INDEX`. A missing link is an error with
    /// [`crate::Error::is_not_found`].
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        self.request(
            &format!("delete link {index}"),
            RouteNetlinkMessage::DelLink(link_message(index)),
            0,
        )
        .map(drop)
    }

    /// `ip link del NAME`. Returns `Ok(false)` if there was no such link.
    /// Deleting one end of a veth pair deletes both.
    pub fn delete_link_by_name(&mut self, name: &str) -> Result<bool> {
        check_ifname(name)?;
        let mut msg = link_message(0);
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        match self.request(
            &format!("delete link {name}"),
            RouteNetlinkMessage::DelLink(msg),
            0,
        ) {
            Ok(_) => Ok(true),
            Err(err) if err.is_not_found() => Ok(false),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{Emitable, Parseable};

    use super::*;

    fn roundtrip(msg: &LinkMessage) -> LinkMessage {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        LinkMessage::parse(&bytes[..]).unwrap()
    }

    #[test]
    fn bridge_message_names_kind_and_mtu() {
        let msg = roundtrip(&bridge_message("berth0", Some(1400)));
        assert_eq!(msg.header.index, 0);
        let link = Link::from_message(&msg);
        assert_eq!(link.name, "berth0");
        assert_eq!(link.kind.as_deref(), Some("bridge"));
        assert_eq!(link.mtu, 1400);
        let snooping = msg.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Data(InfoData::Bridge(b)) => Some(b.clone()),
                _ => None,
            }),
            _ => None,
        });
        assert_eq!(snooping, Some(vec![InfoBridge::MulticastSnooping(false)]));
    }

    #[test]
    fn echoed_index_is_the_named_new_link_only() {
        let mut other = link_message(7);
        other.attributes.push(LinkAttribute::IfName("eth0".into()));
        let mut ours = link_message(42);
        ours.attributes.push(LinkAttribute::IfName("bth1".into()));
        let replies = [
            RouteNetlinkMessage::NewLink(other),
            RouteNetlinkMessage::NewLink(ours),
        ];
        assert_eq!(echoed_index(&replies, "bth1"), Some(42));
        assert_eq!(echoed_index(&replies, "bth2"), None);
        assert_eq!(echoed_index(&[], "bth1"), None);
    }

    #[test]
    fn veth_message_puts_netns_fd_on_the_peer() {
        let mac = [0x02, 0, 0, 0, 0, 1];
        let msg = veth_message("bth1", "eth0", 42, Some(1450), Some(mac));
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, LinkAttribute::NetNsFd(_))));
        let peer = msg
            .attributes
            .iter()
            .find_map(|a| match a {
                LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                    LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))) => Some(peer.clone()),
                    _ => None,
                }),
                _ => None,
            })
            .unwrap();
        assert!(peer.attributes.contains(&LinkAttribute::NetNsFd(42)));
        assert!(peer
            .attributes
            .contains(&LinkAttribute::IfName("eth0".into())));
        assert!(peer.attributes.contains(&LinkAttribute::Mtu(1450)));
        assert!(peer
            .attributes
            .contains(&LinkAttribute::Address(mac.to_vec())));
        assert!(msg.attributes.contains(&LinkAttribute::Mtu(1450)));
        // One queue each way on both ends (no queue cut, so no RCU wait, at creation).
        for attrs in [&msg.attributes, &peer.attributes] {
            assert!(attrs.contains(&LinkAttribute::NumTxQueues(1)));
            assert!(attrs.contains(&LinkAttribute::NumRxQueues(1)));
        }
        // It survives serialization.
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        LinkMessage::parse(&bytes[..]).unwrap();
    }

    #[test]
    fn port_isolation_is_read_back_from_port_data() {
        let msg = roundtrip(&port_flag_message(7, InfoBridgePort::Isolated(true)));
        let link = Link::from_message(&msg);
        assert_eq!(link.index, 7);
        assert_eq!(link.port_isolated, Some(true));
        assert!(!link.up);
    }
}
