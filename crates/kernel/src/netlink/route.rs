//! Routes: add and list.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteProtocol, RouteScope, RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::Netlink;
use crate::{Error, Result};

/// The main routing table (`RT_TABLE_MAIN`).
pub const TABLE_MAIN: u32 = 254;
/// The local routing table (`RT_TABLE_LOCAL`), left out of [`Netlink::routes`].
pub const TABLE_LOCAL: u32 = 255;

/// A route (`ip route show table all`, without the local table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Destination; `0.0.0.0/0` (or `::/0`) for the default route.
    pub dst: IpNet,
    /// Next hop, if any.
    pub gateway: Option<IpAddr>,
    /// Output interface index, if any.
    pub oif: Option<u32>,
    /// Routing table id.
    pub table: u32,
}

/// `RTM_NEWROUTE` for a unicast route in the main table.
pub(crate) fn route_message(dst: IpNet, gateway: Option<IpAddr>, oif: Option<u32>) -> RouteMessage {
    let mut msg = RouteMessage::default();
    msg.header.address_family = match dst {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    msg.header.destination_prefix_length = dst.prefix_len();
    msg.header.table = RouteHeader::RT_TABLE_MAIN;
    msg.header.protocol = RouteProtocol::Boot;
    msg.header.kind = RouteType::Unicast;
    // Like `ip route add`: a route without a gateway is on-link.
    msg.header.scope = if gateway.is_some() {
        RouteScope::Universe
    } else {
        RouteScope::Link
    };
    if dst.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(RouteAddress::from(
                dst.network(),
            )));
    }
    if let Some(gateway) = gateway {
        msg.attributes
            .push(RouteAttribute::Gateway(RouteAddress::from(gateway)));
    }
    if let Some(oif) = oif {
        msg.attributes.push(RouteAttribute::Oif(oif));
    }
    msg
}

fn ip_of(addr: &RouteAddress) -> Option<IpAddr> {
    match addr {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

/// Reads a [`Route`] from an `RTM_NEWROUTE` reply; `None` for families
/// other than IPv4/IPv6.
pub(crate) fn from_message(msg: &RouteMessage) -> Option<Route> {
    let unspecified: IpAddr = match msg.header.address_family {
        AddressFamily::Inet => IpAddr::from([0u8; 4]),
        AddressFamily::Inet6 => IpAddr::from([0u8; 16]),
        _ => return None,
    };
    let mut dst = unspecified;
    let mut gateway = None;
    let mut oif = None;
    let mut table = u32::from(msg.header.table);
    for attr in &msg.attributes {
        match attr {
            RouteAttribute::Destination(addr) => dst = ip_of(addr)?,
            RouteAttribute::Gateway(addr) => gateway = ip_of(addr),
            RouteAttribute::Oif(index) => oif = Some(*index),
            RouteAttribute::Table(id) => table = *id,
            _ => {}
        }
    }
    Some(Route {
        dst: IpNet::new(dst, msg.header.destination_prefix_length).ok()?,
        gateway,
        oif,
        table,
    })
}

impl Netlink {
    /// `ip route add DST [via GATEWAY] [dev OIF]` in the main table; the
    /// default route is `dst = 0.0.0.0/0`. An existing route is an error
    /// with [`Error::is_exists`].
    pub fn add_route(
        &mut self,
        dst: IpNet,
        gateway: Option<IpAddr>,
        oif: Option<u32>,
    ) -> Result<()> {
        if gateway.is_some_and(|gw| gw.is_ipv4() != matches!(dst, IpNet::V4(_))) {
            return Err(Error::Invalid(format!(
                "route to {dst}: gateway of another address family"
            )));
        }
        if gateway.is_none() && oif.is_none() {
            return Err(Error::Invalid(format!(
                "route to {dst}: needs a gateway or an interface"
            )));
        }
        let mut op = format!("add route to {dst}");
        if let Some(gw) = gateway {
            op.push_str(&format!(" via {gw}"));
        }
        if let Some(oif) = oif {
            op.push_str(&format!(" dev {oif}"));
        }
        self.request(
            &op,
            RouteNetlinkMessage::NewRoute(route_message(dst.trunc(), gateway, oif)),
            NLM_F_CREATE | NLM_F_EXCL,
        )
        .map(drop)
    }

    /// `ip route show table all` for IPv4 and IPv6, without the local table.
    pub fn routes(&mut self) -> Result<Vec<Route>> {
        self.routes_of(&[
            (AddressFamily::Inet, "ipv4"),
            (AddressFamily::Inet6, "ipv6"),
        ])
    }

    /// The IPv4 routes of [`Netlink::routes`] only: one dump instead of two.
    pub fn ipv4_routes(&mut self) -> Result<Vec<Route>> {
        self.routes_of(&[(AddressFamily::Inet, "ipv4")])
    }

    fn routes_of(&mut self, families: &[(AddressFamily, &str)]) -> Result<Vec<Route>> {
        let mut routes = Vec::new();
        for &(family, name) in families {
            let mut req = RouteMessage::default();
            req.header.address_family = family;
            let replies = self.dump(
                &format!("list {name} routes"),
                RouteNetlinkMessage::GetRoute(req),
            )?;
            routes.extend(replies.iter().filter_map(|reply| match reply {
                RouteNetlinkMessage::NewRoute(msg) => from_message(msg),
                _ => None,
            }));
        }
        routes.retain(|route| route.table != TABLE_LOCAL);
        Ok(routes)
    }
}

#[cfg(test)]
mod tests {
    use netlink_packet_core::{Emitable, Parseable};

    use super::*;

    fn roundtrip(msg: &RouteMessage) -> RouteMessage {
        let mut bytes = vec![0u8; msg.buffer_len()];
        msg.emit(&mut bytes);
        RouteMessage::parse(&bytes[..]).unwrap()
    }

    #[test]
    fn default_route_via_gateway() {
        let gw: IpAddr = "10.88.0.1".parse().unwrap();
        let msg = roundtrip(&route_message("0.0.0.0/0".parse().unwrap(), Some(gw), None));
        assert!(!msg
            .attributes
            .iter()
            .any(|a| matches!(a, RouteAttribute::Destination(_))));
        assert_eq!(msg.header.scope, RouteScope::Universe);
        assert_eq!(
            from_message(&msg),
            Some(Route {
                dst: "0.0.0.0/0".parse().unwrap(),
                gateway: Some(gw),
                oif: None,
                table: TABLE_MAIN,
            })
        );
    }

    #[test]
    fn on_link_ipv6_route() {
        let dst: IpNet = "fd00:88::/64".parse().unwrap();
        let msg = roundtrip(&route_message(dst, None, Some(4)));
        assert_eq!(msg.header.scope, RouteScope::Link);
        let route = from_message(&msg).unwrap();
        assert_eq!(route.dst, dst);
        assert_eq!(route.oif, Some(4));
        assert_eq!(route.gateway, None);
    }
}
