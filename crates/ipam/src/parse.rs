//! Parsing and validation of user-given subnets, gateways, ranges and addresses.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::addr::{bounds, max_subnet_prefix, to_u128};
use crate::error::{Error, Reserved};
use crate::SubnetSpec;

/// Splits `s` into address and prefix length, or says why it can't.
fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let Some((addr, len)) = s.split_once('/') else {
        return Err("missing prefix length, expected CIDR notation such as 10.1.0.0/24".into());
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{addr:?} is not an IPv4 or IPv6 address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len: u8 = match len.parse() {
        Ok(n) if !len.starts_with('+') => n,
        _ => return Err(format!("prefix length {len:?} is not a number")),
    };
    if len > max {
        return Err(format!("prefix length /{len} is longer than /{max}"));
    }
    IpNet::new(addr, len).map_err(|e| e.to_string())
}

/// Parses user input "CIDR" for a network subnet.
///
/// Rejects malformed text, host bits set ("10.1.0.5/24" is an error naming
/// the network address 10.1.0.0/24) and prefixes too long to hold a gateway
/// and one container (IPv4 prefix > 30, IPv6 > 126).
pub fn parse_subnet(s: &str) -> Result<IpNet, Error> {
    let net = parse_cidr(s).map_err(|reason| Error::InvalidSubnet {
        input: s.to_owned(),
        reason,
    })?;
    check_subnet(s, net)?;
    Ok(net)
}

fn check_subnet(input: &str, net: IpNet) -> Result<(), Error> {
    if net.trunc() != net {
        return Err(Error::HostBitsSet {
            input: input.to_owned(),
            network: net.trunc(),
        });
    }
    let max = max_subnet_prefix(net.addr().is_ipv4());
    if net.prefix_len() > max {
        return Err(Error::PrefixTooLong {
            input: input.to_owned(),
            prefix_len: net.prefix_len(),
            max,
        });
    }
    Ok(())
}

/// Parses user input "CIDR" for an ip range (`--ip-range`).
///
/// Like [`parse_subnet`] but any prefix length is allowed (a /32 range is a
/// single address). Host bits must not be set.
pub fn parse_range(s: &str) -> Result<IpNet, Error> {
    let net = parse_cidr(s).map_err(|reason| Error::InvalidRange {
        input: s.to_owned(),
        reason,
    })?;
    check_range_bits(s, net)?;
    Ok(net)
}

fn check_range_bits(input: &str, net: IpNet) -> Result<(), Error> {
    if net.trunc() != net {
        return Err(Error::InvalidRange {
            input: input.to_owned(),
            reason: format!("host bits are set, the network address is {}", net.trunc()),
        });
    }
    Ok(())
}

/// Parses a single IPv4 or IPv6 address (`--ip`, `--gateway`).
pub fn parse_ip(s: &str) -> Result<IpAddr, Error> {
    s.parse().map_err(|_| Error::InvalidAddress {
        input: s.to_owned(),
        reason: if s.contains('/') {
            "expected an address without prefix length".to_owned()
        } else {
            "not an IPv4 or IPv6 address".to_owned()
        },
    })
}

/// Which reserved address of `subnet` (ignoring the gateway) `addr` is.
pub(crate) fn reserved_kind(subnet: &IpNet, addr: IpAddr) -> Option<Reserved> {
    let (lo, hi) = bounds(subnet);
    let a = to_u128(addr);
    if a == lo {
        Some(Reserved::NetworkAddress)
    } else if addr.is_ipv4() && a == hi {
        Some(Reserved::Broadcast)
    } else {
        None
    }
}

/// Builds a [`SubnetSpec`] from user inputs.
///
/// The gateway defaults to the first host address (172.17.0.0/16 ->
/// 172.17.0.1). A given gateway must be inside the subnet and be neither the
/// network address nor (IPv4) the broadcast address. `range` must be a
/// sub-CIDR of the subnet, of the same family, without host bits, and hold
/// at least one assignable address. The subnet itself is checked as in
/// [`parse_subnet`].
pub fn subnet_spec(
    subnet: IpNet,
    gateway: Option<IpAddr>,
    range: Option<IpNet>,
) -> Result<SubnetSpec, Error> {
    check_subnet(&subnet.to_string(), subnet)?;
    let v4 = subnet.addr().is_ipv4();
    let gateway = match gateway {
        None => crate::addr::from_u128(v4, bounds(&subnet).0 + 1),
        Some(gw) => {
            if gw.is_ipv4() != v4 {
                return Err(Error::FamilyMismatch {
                    what: "gateway",
                    value: gw.to_string(),
                    subnet,
                });
            }
            if !subnet.contains(&gw) {
                return Err(Error::GatewayOutsideSubnet {
                    gateway: gw,
                    subnet,
                });
            }
            if let Some(kind) = reserved_kind(&subnet, gw) {
                return Err(Error::GatewayReserved {
                    gateway: gw,
                    subnet,
                    kind,
                });
            }
            gw
        }
    };
    if let Some(r) = range {
        if r.addr().is_ipv4() != v4 {
            return Err(Error::FamilyMismatch {
                what: "ip range",
                value: r.to_string(),
                subnet,
            });
        }
        check_range_bits(&r.to_string(), r)?;
        if !subnet.contains(&r) {
            return Err(Error::RangeOutsideSubnet { range: r, subnet });
        }
    }
    let spec = SubnetSpec {
        subnet,
        gateway,
        range,
    };
    if let Some(r) = range {
        if crate::alloc::first_free(&spec, &Default::default()).is_none() {
            return Err(Error::RangeEmpty { range: r, subnet });
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }
    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_good_subnets() {
        assert_eq!(parse_subnet("10.1.0.0/24"), Ok(net("10.1.0.0/24")));
        assert_eq!(parse_subnet("10.1.0.0/30"), Ok(net("10.1.0.0/30")));
        assert_eq!(parse_subnet("0.0.0.0/0"), Ok(net("0.0.0.0/0")));
        assert_eq!(parse_subnet("fd00:1::/64"), Ok(net("fd00:1::/64")));
        assert_eq!(parse_subnet("fd00::/126"), Ok(net("fd00::/126")));
    }

    #[test]
    fn rejects_malformed_subnets() {
        let e = parse_subnet("10.0.0.0/33").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid subnet "10.0.0.0/33": prefix length /33 is longer than /32"#
        );
        let e = parse_subnet("10.0.0.0").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid subnet "10.0.0.0": missing prefix length, expected CIDR notation such as 10.1.0.0/24"#
        );
        for bad in [
            "",
            "/24",
            "10.0.0/24",
            "10.0.0.0/",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "fd00::/129",
            "a b/8",
            "10.0.0.256/24",
        ] {
            assert!(
                matches!(parse_subnet(bad), Err(Error::InvalidSubnet { ref input, .. }) if input == bad),
                "{bad}"
            );
        }
    }

    #[test]
    fn rejects_host_bits() {
        let e = parse_subnet("10.1.0.5/24").unwrap_err();
        assert_eq!(
            e,
            Error::HostBitsSet {
                input: "10.1.0.5/24".into(),
                network: net("10.1.0.0/24")
            }
        );
        assert_eq!(
            e.to_string(),
            r#"invalid subnet "10.1.0.5/24": host bits are set, the network address is 10.1.0.0/24"#
        );
        assert!(
            matches!(parse_subnet("fd00::1/64"), Err(Error::HostBitsSet { network, .. }) if network == net("fd00::/64"))
        );
    }

    #[test]
    fn rejects_too_long_prefixes() {
        let e = parse_subnet("10.0.0.0/31").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid subnet "10.0.0.0/31": prefix length /31 is too long to hold a gateway and a container (at most /30)"#
        );
        assert!(matches!(
            parse_subnet("10.0.0.1/32"),
            Err(Error::PrefixTooLong {
                prefix_len: 32,
                max: 30,
                ..
            })
        ));
        assert!(matches!(
            parse_subnet("fd00::/127"),
            Err(Error::PrefixTooLong {
                prefix_len: 127,
                max: 126,
                ..
            })
        ));
    }

    #[test]
    fn parses_ranges() {
        assert_eq!(parse_range("10.1.5.0/24"), Ok(net("10.1.5.0/24")));
        assert_eq!(parse_range("10.1.5.7/32"), Ok(net("10.1.5.7/32")));
        let e = parse_range("10.1.5.7/24").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid ip range "10.1.5.7/24": host bits are set, the network address is 10.1.5.0/24"#
        );
        assert!(matches!(
            parse_range("nope"),
            Err(Error::InvalidRange { .. })
        ));
    }

    #[test]
    fn parses_ips() {
        assert_eq!(parse_ip("10.1.0.3"), Ok(ip("10.1.0.3")));
        assert_eq!(parse_ip("fd00::3"), Ok(ip("fd00::3")));
        let e = parse_ip("10.1.0.300").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid address "10.1.0.300": not an IPv4 or IPv6 address"#
        );
        let e = parse_ip("10.1.0.3/24").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid address "10.1.0.3/24": expected an address without prefix length"#
        );
    }

    #[test]
    fn default_gateway_is_first_host() {
        let s = subnet_spec(net("172.17.0.0/16"), None, None).unwrap();
        assert_eq!(
            s,
            SubnetSpec {
                subnet: net("172.17.0.0/16"),
                gateway: ip("172.17.0.1"),
                range: None
            }
        );
        let s = subnet_spec(net("fd00:1::/64"), None, None).unwrap();
        assert_eq!(s.gateway, ip("fd00:1::1"));
        let s = subnet_spec(net("10.0.0.0/30"), None, None).unwrap();
        assert_eq!(s.gateway, ip("10.0.0.1"));
    }

    #[test]
    fn explicit_gateway() {
        let s = subnet_spec(net("10.1.0.0/24"), Some(ip("10.1.0.254")), None).unwrap();
        assert_eq!(s.gateway, ip("10.1.0.254"));
        // IPv6 has no broadcast: the last address is a fine gateway.
        let s = subnet_spec(net("fd00::/120"), Some(ip("fd00::ff")), None).unwrap();
        assert_eq!(s.gateway, ip("fd00::ff"));
    }

    #[test]
    fn gateway_errors() {
        let e = subnet_spec(net("10.2.0.0/24"), Some(ip("10.1.0.1")), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gateway 10.1.0.1 is not inside subnet 10.2.0.0/24"
        );
        let e = subnet_spec(net("10.2.0.0/24"), Some(ip("10.2.0.0")), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gateway 10.2.0.0 is the network address of subnet 10.2.0.0/24"
        );
        let e = subnet_spec(net("10.2.0.0/24"), Some(ip("10.2.0.255")), None).unwrap_err();
        assert_eq!(
            e,
            Error::GatewayReserved {
                gateway: ip("10.2.0.255"),
                subnet: net("10.2.0.0/24"),
                kind: Reserved::Broadcast
            }
        );
        assert_eq!(
            e.to_string(),
            "gateway 10.2.0.255 is the broadcast address of subnet 10.2.0.0/24"
        );
        let e = subnet_spec(net("10.2.0.0/24"), Some(ip("fd00::1")), None).unwrap_err();
        assert_eq!(
            e.to_string(),
            "gateway fd00::1 is not the same address family as subnet 10.2.0.0/24"
        );
        let e = subnet_spec(net("fd00::/64"), Some(ip("fd00::")), None).unwrap_err();
        assert!(matches!(
            e,
            Error::GatewayReserved {
                kind: Reserved::NetworkAddress,
                ..
            }
        ));
    }

    #[test]
    fn subnet_errors_in_spec() {
        let bits = IpNet::new(ip("10.1.0.5"), 24).unwrap();
        assert!(matches!(
            subnet_spec(bits, None, None),
            Err(Error::HostBitsSet { .. })
        ));
        let long = net("10.1.0.0/31");
        assert!(matches!(
            subnet_spec(long, None, None),
            Err(Error::PrefixTooLong { .. })
        ));
    }

    #[test]
    fn range_errors() {
        let s = net("10.1.0.0/16");
        let e = subnet_spec(s, None, Some(net("10.2.0.0/24"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ip range 10.2.0.0/24 is not inside subnet 10.1.0.0/16"
        );
        let e = subnet_spec(s, None, Some(net("10.0.0.0/8"))).unwrap_err();
        assert!(matches!(e, Error::RangeOutsideSubnet { .. }));
        let e = subnet_spec(s, None, Some(net("fd00::/64"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ip range fd00::/64 is not the same address family as subnet 10.1.0.0/16"
        );
        let bits = IpNet::new(ip("10.1.5.9"), 24).unwrap();
        let e = subnet_spec(s, None, Some(bits)).unwrap_err();
        assert!(matches!(e, Error::InvalidRange { .. }));
        let e = subnet_spec(s, None, Some(net("10.1.0.1/32"))).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ip range 10.1.0.1/32 has no assignable address in subnet 10.1.0.0/16"
        );
        let e = subnet_spec(s, None, Some(net("10.1.0.0/31"))).unwrap_err();
        assert!(matches!(e, Error::RangeEmpty { .. }));
        let e = subnet_spec(s, None, Some(net("10.1.255.255/32"))).unwrap_err();
        assert!(matches!(e, Error::RangeEmpty { .. }));
        // the whole subnet as range is fine, so is a single assignable address
        assert_eq!(subnet_spec(s, None, Some(s)).unwrap().range, Some(s));
        let one = net("10.1.0.2/32");
        assert_eq!(subnet_spec(s, None, Some(one)).unwrap().range, Some(one));
    }
}
