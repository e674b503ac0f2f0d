//! Is a host port free? Binding it (and letting go at once) answers for this namespace.

use super::spec::{HostIp, Proto};
use crate::{Error, Result};
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};

/// The kernel's ephemeral port range (`net.ipv4.ip_local_port_range`), where ports are
/// picked for `-p CTRPORT`.
pub(crate) fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|n| n.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32768, 60999))
}

fn bind(proto: Proto, addr: SocketAddr) -> std::io::Result<()> {
    match proto {
        // std sets SO_REUSEADDR on listeners: only another listening socket conflicts.
        Proto::Tcp => TcpListener::bind(addr).map(drop),
        Proto::Udp => UdpSocket::bind(addr).map(drop),
        // No SCTP sockets to probe with here; the store check is all there is.
        Proto::Sctp => Ok(()),
    }
}

/// Fails when a host socket already holds `port` on an address `host` covers, or when
/// `host` is not an address of this host.
pub(crate) fn check(host: HostIp, proto: Proto, port: u16) -> Result<()> {
    let addrs: Vec<IpAddr> = match host {
        HostIp::Any => vec![Ipv4Addr::UNSPECIFIED.into(), Ipv6Addr::UNSPECIFIED.into()],
        HostIp::AnyV4 => vec![Ipv4Addr::UNSPECIFIED.into()],
        HostIp::AnyV6 => vec![Ipv6Addr::UNSPECIFIED.into()],
        HostIp::Addr(a) => vec![a],
    };
    for a in addrs {
        match bind(proto, SocketAddr::new(a, port)) {
            Ok(()) => {}
            // A host without IPv6 has nothing listening there either.
            Err(e) if a.is_unspecified() && a.is_ipv6() && e.kind() != ErrorKind::AddrInUse => {}
            Err(e) if e.kind() == ErrorKind::AddrInUse => {
                return Err(Error::Conflict(format!(
                    "host port {host}:{port}/{} is in use by a process on the host: stop it or publish another port",
                    proto.as_str()
                )))
            }
            Err(e) if e.kind() == ErrorKind::AddrNotAvailable => {
                return Err(Error::Invalid(format!(
                    "cannot publish on {host}: it is not an address of this host"
                )))
            }
            Err(e) => {
                return Err(Error::Io {
                    op: format!("probe host port {host}:{port}/{}", proto.as_str()),
                    source: e,
                })
            }
        }
    }
    Ok(())
}
