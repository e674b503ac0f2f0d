//! Interface addresses: add and list.

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressHeaderFlags, AddressMessage, AddressScope,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Netlink;
use crate::{Error, Result};

/// An address assigned to an interface (`ip addr show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Address {
    /// Interface index.
    pub index: u32,
    /// The address (`IFA_LOCAL` for IPv4, `IFA_ADDRESS` otherwise).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

/// The IPv4 broadcast address of `addr/prefix_len` (none for /31 and /32).
pub(crate) fn broadcast(addr: Ipv4Addr, prefix_len: u8) -> Option<Ipv4Addr> {
    if prefix_len >= 31 {
        return None;
    }
    let host_mask = u32::MAX >> prefix_len;
    Some(Ipv4Addr::from(u32::from(addr) | host_mask))
}

/// `RTM_NEWADDR` for `addr/prefix_len` on `index`.
pub(crate) fn address_message(index: u32, addr: IpAddr, prefix_len: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = prefix_len;
    msg.header.scope = AddressScope::Universe;
    match addr {
        IpAddr::V4(v4) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(addr));
            msg.attributes.push(AddressAttribute::Address(addr));
            if let Some(brd) = broadcast(v4, prefix_len) {
                msg.attributes.push(AddressAttribute::Broadcast(brd));
            }
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            // No duplicate address detection: the address is usable at once
            // and we allocate it ourselves.
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Address(addr));
        }
    }
    msg
}

/// Reads an [`Address`] from an `RTM_NEWADDR` reply.
pub(crate) fn from_message(msg: &AddressMessage) -> Option<Address> {
    let mut address = None;
    let mut local = None;
    for attr in &msg.attributes {
        match attr {
            AddressAttribute::Address(a) => address = Some(*a),
            AddressAttribute::Local(a) => local = Some(*a),
            _ => {}
        }
    }
    Some(Address {
        index: msg.header.index,
        addr: local.or(address)?,
        prefix_len: msg.header.prefix_len,
    })
}

impl Netlink {
    /// `ip addr add ADDR/PREFIX [brd +] dev DEV` (IPv6: `nodad`). An address
    /// that is already there is an error with [`Error::is_exists`].
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix_len > max {
            return Err(Error::Invalid(format!(
                "prefix length {prefix_len} for {addr}"
            )));
        }
        self.request(
            &format!("add address {addr}/{prefix_len} to link {index}"),
            RouteNetlinkMessage::NewAddress(address_message(index, addr, prefix_len)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// `ip addr del ADDR/PREFIX dev DEV`. A missing address is an error with
    /// [`Error::is_not_found`].
    pub fn delete_address(&mut self, index: u32, addr: IpAddr, prefix_len: u8) -> Result<()> {
        self.request(
            &format!("delete address {addr}/{prefix_len} from link {index}"),
            RouteNetlinkMessage::DelAddress(address_message(index, addr, prefix_len)),
            0,
        )
        .map(drop)
    }

    /// `ip addr show`: every address of every family in this namespace.
    pub fn addresses(&mut self) -> Result<Vec<Address>> {
        let replies = self.dump(
            "list addresses",
            RouteNetlinkMessage::GetAddress(AddressMessage::default()),
        )?;
        Ok(replies
            .iter()
            .filter_map(|reply| match reply {
                RouteNetlinkMessage::NewAddress(msg) => from_message(msg),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{Emitable, Parseable};

    use super::*;

    #[test]
    fn broadcast_addresses() {
        let a = Ipv4Addr::new(10, 88, 0, 1);
        assert_eq!(broadcast(a, 16), Some(Ipv4Addr::new(10, 88, 255, 255)));
        assert_eq!(broadcast(a, 24), Some(Ipv4Addr::new(10, 88, 0, 255)));
        assert_eq!(broadcast(a, 0), Some(Ipv4Addr::BROADCAST));
        assert_eq!(broadcast(a, 31), None);
        assert_eq!(broadcast(a, 32), None);
    }

    fn roundtrip(msg: &AddressMessage) -> AddressMessage {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        AddressMessage::parse(&bytes[..]).unwrap()
    }

    #[test]
    fn ipv4_message_has_local_and_broadcast() {
        let addr: IpAddr = "10.88.0.1".parse().unwrap();
        let msg = roundtrip(&address_message(3, addr, 16));
        assert_eq!(msg.header.family, AddressFamily::Inet);
        assert!(msg
            .attributes
            .contains(&AddressAttribute::Broadcast(Ipv4Addr::new(
                10, 88, 255, 255
            ))));
        assert_eq!(
            from_message(&msg),
            Some(Address {
                index: 3,
                addr,
                prefix_len: 16
            })
        );
    }

    #[test]
    fn ipv6_message_is_nodad() {
        let addr: IpAddr = "fd00::1".parse().unwrap();
        let msg = roundtrip(&address_message(3, addr, 64));
        assert_eq!(msg.header.family, AddressFamily::Inet6);
        assert!(msg.header.flags.contains(AddressHeaderFlags::Nodad));
        assert_eq!(from_message(&msg).unwrap().addr, addr);
    }
}
