//! `-p/--publish` values: `[HOSTIP:][HOSTPORT[-END]:]CTRPORT[-END][/tcp|/udp|/sctp]`.
//!
//! An IPv6 host address goes in brackets (`[::1]:8080:80`). A host address of `0.0.0.0`
//! means every IPv4 address of the host, `::` every IPv6 address, none at all both.

use crate::{Error, Result};
use std::fmt;
use std::net::IpAddr;

/// The transport protocol of a published port.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Proto {
    Tcp,
    Udp,
    Sctp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Sctp => "sctp",
        }
    }

    /// The IP protocol number.
    pub fn number(self) -> u8 {
        match self {
            Proto::Tcp => 6,
            Proto::Udp => 17,
            Proto::Sctp => 132,
        }
    }

    pub fn parse(s: &str) -> Option<Proto> {
        match s.to_ascii_lowercase().as_str() {
            "tcp" => Some(Proto::Tcp),
            "udp" => Some(Proto::Udp),
            "sctp" => Some(Proto::Sctp),
            _ => None,
        }
    }
}

/// Which host addresses a mapping listens on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HostIp {
    /// Every address of both families (no host address given).
    Any,
    /// `0.0.0.0`: every IPv4 address.
    AnyV4,
    /// `::`: every IPv6 address.
    AnyV6,
    /// One host address.
    Addr(IpAddr),
}

impl HostIp {
    /// The form kept in the store.
    pub fn to_store(self) -> String {
        match self {
            HostIp::Any => String::new(),
            HostIp::AnyV4 => "0.0.0.0".into(),
            HostIp::AnyV6 => "::".into(),
            HostIp::Addr(a) => a.to_string(),
        }
    }

    pub fn from_store(s: &str) -> Option<HostIp> {
        match s {
            "" => Some(HostIp::Any),
            _ => Self::from_addr(s.parse().ok()?).into(),
        }
    }

    fn from_addr(a: IpAddr) -> HostIp {
        match a {
            a if a.is_unspecified() && a.is_ipv4() => HostIp::AnyV4,
            a if a.is_unspecified() => HostIp::AnyV6,
            a => HostIp::Addr(a),
        }
    }

    /// Whether a mapping on `self` covers IPv4 (resp. IPv6) traffic.
    pub fn has_v4(self) -> bool {
        match self {
            HostIp::Any | HostIp::AnyV4 => true,
            HostIp::AnyV6 => false,
            HostIp::Addr(a) => a.is_ipv4(),
        }
    }

    pub fn has_v6(self) -> bool {
        match self {
            HostIp::Any | HostIp::AnyV6 => true,
            HostIp::AnyV4 => false,
            HostIp::Addr(a) => a.is_ipv6(),
        }
    }

    /// Whether two mappings of the same protocol and port would take the same packets.
    pub fn overlaps(self, other: HostIp) -> bool {
        match (self, other) {
            (HostIp::Addr(a), HostIp::Addr(b)) => a == b,
            (HostIp::Addr(a), wide) | (wide, HostIp::Addr(a)) => match a {
                IpAddr::V4(_) => wide.has_v4(),
                IpAddr::V6(_) => wide.has_v6(),
            },
            (a, b) => (a.has_v4() && b.has_v4()) || (a.has_v6() && b.has_v6()),
        }
    }
}

impl fmt::Display for HostIp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostIp::Any | HostIp::AnyV4 => write!(f, "0.0.0.0"),
            HostIp::AnyV6 => write!(f, "[::]"),
            HostIp::Addr(IpAddr::V6(a)) => write!(f, "[{a}]"),
            HostIp::Addr(a) => write!(f, "{a}"),
        }
    }
}

/// One parsed `-p` value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishSpec {
    pub host_ip: HostIp,
    /// First and last host port; `None` picks free ports from the ephemeral range.
    pub host_ports: Option<(u16, u16)>,
    /// First and last container port.
    pub container_ports: (u16, u16),
    pub proto: Proto,
}

fn bad(s: &str, why: &str) -> Error {
    Error::Invalid(format!(
        "invalid published port {s:?}: {why} (expected [HOSTIP:][HOSTPORT[-END]:]CTRPORT[-END][/tcp|/udp|/sctp])"
    ))
}

fn port_range(s: &str, whole: &str, what: &str) -> Result<(u16, u16)> {
    let port = |p: &str| -> Result<u16> {
        match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(whole, &format!("{what} {p:?} is not a port (1-65535)"))),
        }
    };
    let (a, b) = match s.split_once('-') {
        Some((a, b)) => (port(a)?, port(b)?),
        None => (port(s)?, port(s)?),
    };
    if b < a {
        return Err(bad(
            whole,
            &format!("{what} range {s} ends before it starts"),
        ));
    }
    Ok((a, b))
}

impl PublishSpec {
    pub fn parse(s: &str) -> Result<PublishSpec> {
        let (rest, proto) = match s.rsplit_once('/') {
            Some((r, p)) => (
                r,
                Proto::parse(p).ok_or_else(|| bad(s, &format!("unknown protocol {p:?}")))?,
            ),
            None => (s, Proto::Tcp),
        };
        let (ip, rest) = match rest.strip_prefix('[') {
            Some(r) => {
                let (ip, after) = r
                    .split_once(']')
                    .ok_or_else(|| bad(s, "missing ] after an IPv6 address"))?;
                let after = after
                    .strip_prefix(':')
                    .ok_or_else(|| bad(s, "a host port must follow the host address"))?;
                (Some(ip), after)
            }
            None => match rest.matches(':').count() {
                0 | 1 => (None, rest),
                2 => {
                    let (ip, r) = rest.split_once(':').expect("two colons");
                    (Some(ip), r)
                }
                _ => return Err(bad(s, "an IPv6 host address must be in brackets")),
            },
        };
        let host_ip = match ip {
            None => HostIp::Any,
            Some(ip) => HostIp::from_addr(
                ip.parse()
                    .map_err(|_| bad(s, &format!("{ip:?} is not an IP address")))?,
            ),
        };
        let (host, ctr) = match rest.split_once(':') {
            Some((h, c)) => (Some(h).filter(|h| !h.is_empty()), c),
            None => (None, rest),
        };
        let container_ports = port_range(ctr, s, "container port")?;
        let host_ports = host.map(|h| port_range(h, s, "host port")).transpose()?;
        if let Some((a, b)) = host_ports {
            let (c, d) = container_ports;
            if c != d && b - a != d - c {
                return Err(bad(
                    s,
                    "host and container port ranges must have the same length",
                ));
            }
        }
        Ok(PublishSpec {
            host_ip,
            host_ports,
            container_ports,
            proto,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PublishSpec {
        PublishSpec::parse(s).unwrap()
    }

    #[test]
    fn forms_parse() {
        assert_eq!(
            p("80"),
            PublishSpec {
                host_ip: HostIp::Any,
                host_ports: None,
                container_ports: (80, 80),
                proto: Proto::Tcp
            }
        );
        assert_eq!(p("8080:80").host_ports, Some((8080, 8080)));
        assert_eq!(p("8080:80/udp").proto, Proto::Udp);
        assert_eq!(p("8080:80/SCTP").proto, Proto::Sctp);
        let s = p("127.0.0.1:8080:80");
        assert_eq!(s.host_ip, HostIp::Addr("127.0.0.1".parse().unwrap()));
        let s = p("127.0.0.1::80");
        assert_eq!((s.host_ports, s.container_ports), (None, (80, 80)));
        assert_eq!(p("0.0.0.0:1:2").host_ip, HostIp::AnyV4);
        assert_eq!(p("[::]:1:2").host_ip, HostIp::AnyV6);
        assert_eq!(
            p("[::1]:8080:80").host_ip,
            HostIp::Addr("::1".parse().unwrap())
        );
        let s = p("9000-9009:8000-8009");
        assert_eq!(
            (s.host_ports, s.container_ports),
            (Some((9000, 9009)), (8000, 8009))
        );
        let s = p("9000-9009:80");
        assert_eq!(
            (s.host_ports, s.container_ports),
            (Some((9000, 9009)), (80, 80))
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_reason() {
        for (s, why) in [
            ("", "not a port"),
            ("0", "not a port"),
            ("70000", "not a port"),
            ("80/icmp", "unknown protocol"),
            ("1.2.3:80:80", "not an IP address"),
            ("::1:80:80", "brackets"),
            ("[::1:80:80", "missing ]"),
            ("9000-9001:80-82", "same length"),
            ("90-80:80", "ends before"),
            ("a:80", "not a port"),
        ] {
            let e = PublishSpec::parse(s).unwrap_err().to_string();
            assert!(e.contains(why), "{s}: {e}");
        }
    }

    #[test]
    fn overlap_follows_families() {
        let v4: IpAddr = "10.0.0.1".parse().unwrap();
        let v6: IpAddr = "fd00::1".parse().unwrap();
        assert!(HostIp::Any.overlaps(HostIp::Addr(v4)));
        assert!(HostIp::AnyV4.overlaps(HostIp::Addr(v4)));
        assert!(!HostIp::AnyV6.overlaps(HostIp::Addr(v4)));
        assert!(!HostIp::AnyV4.overlaps(HostIp::AnyV6));
        assert!(HostIp::Any.overlaps(HostIp::AnyV6));
        assert!(!HostIp::Addr(v4).overlaps(HostIp::Addr(v6)));
        assert!(!HostIp::Addr(v4).overlaps(HostIp::Addr("10.0.0.2".parse().unwrap())));
        for h in [HostIp::Any, HostIp::AnyV4, HostIp::AnyV6, HostIp::Addr(v6)] {
            assert_eq!(HostIp::from_store(&h.to_store()), Some(h));
        }
    }
}
