//! Encoders for nft's data types: the bytes of a set key or map value.
//!
//! Each field is in network byte order. In a concatenation (`a . b`) each
//! field starts on a 4-byte boundary and is zero-padded up to it, so
//! `inet_proto . inet_service` is 8 bytes: `[proto, 0, 0, 0, port_hi,
//! port_lo, 0, 0]`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::Element;
use crate::{Error, Result};

/// `ifname`: the name, NUL-padded to 16 bytes (`IFNAMSIZ`). Fails for a name
/// the kernel would not accept as an interface name.
pub fn ifname(name: &str) -> Result<Vec<u8>> {
    crate::netlink::check_ifname(name)?;
    let mut out = name.as_bytes().to_vec();
    out.resize(16, 0);
    Ok(out)
}

/// `ipv4_addr`: 4 bytes.
pub fn ipv4(addr: Ipv4Addr) -> Vec<u8> {
    addr.octets().to_vec()
}

/// `ipv6_addr`: 16 bytes.
pub fn ipv6(addr: Ipv6Addr) -> Vec<u8> {
    addr.octets().to_vec()
}

/// [`ipv4`] or [`ipv6`], whichever `addr` is.
pub fn ip(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => ipv4(a),
        IpAddr::V6(a) => ipv6(a),
    }
}

/// `inet_proto`: 1 byte (e.g. `libc::IPPROTO_TCP as u8`).
pub fn proto(proto: u8) -> Vec<u8> {
    vec![proto]
}

/// `inet_service`: 2 bytes, big-endian.
pub fn port(port: u16) -> Vec<u8> {
    port.to_be_bytes().to_vec()
}

/// A concatenation `fields[0] . fields[1] . ...`: each field zero-padded to
/// a multiple of 4 bytes.
pub fn concat(fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 3).sum());
    for field in fields {
        out.extend_from_slice(field);
        out.resize(out.len().next_multiple_of(4), 0);
    }
    out
}

/// The elements of a prefix in an interval set of addresses (`type
/// ipv4_addr; flags interval`, or ipv6): the network address, and the first
/// address after the prefix flagged as interval end, exactly as `nft add
/// element` sends them. When the prefix reaches the top of the address space
/// (e.g. 240.0.0.0/4) there is no address after it and nft sends only the
/// start; so does this.
///
/// Host bits of `net` are ignored (172.18.0.5/16 is 172.18.0.0/16).
pub fn prefix(net: IpNet) -> Vec<Element> {
    let net = net.trunc();
    range(net.network(), net.broadcast()).expect("a prefix is a range of one family")
}

/// The elements of the address range `first-last` (both included) in an
/// interval set, as `nft add element ... { 10.0.0.2-10.0.255.255 }` sends
/// them: `first`, and the address after `last` flagged as interval end (none
/// when `last` is the top of the address space). Fails for addresses of two
/// families or a range whose end comes before its start.
pub fn range(first: IpAddr, last: IpAddr) -> Result<Vec<Element>> {
    let (start, next) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) if a <= b => {
            (ipv4(a), u32::from(b).checked_add(1).map(|n| ipv4(n.into())))
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if a <= b => (
            ipv6(a),
            u128::from(b).checked_add(1).map(|n| ipv6(n.into())),
        ),
        _ => {
            return Err(Error::Invalid(format!(
                "address range {first}-{last}: not a range of one family"
            )))
        }
    };
    let mut out = vec![Element::key(start)];
    if let Some(end) = next {
        out.push(Element {
            interval_end: true,
            ..Element::key(end)
        });
    }
    Ok(out)
}

/// Validates an encoded key or data value against the kernel's limits.
pub(super) fn check_value(what: &str, value: &[u8]) -> Result<()> {
    if value.is_empty() || value.len() > super::DATA_VALUE_MAXLEN {
        return Err(Error::Invalid(format!(
            "nftables element {what} of {} bytes: must be 1 to {} bytes",
            value.len(),
            super::DATA_VALUE_MAXLEN
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalar_types() {
        let br0 = ifname("br0").unwrap();
        assert_eq!(br0.len(), 16);
        assert_eq!(&br0[..4], b"br0\0");
        assert!(br0[3..].iter().all(|&b| b == 0));
        assert_eq!(&ifname("bth0123456789ab").unwrap()[14..], b"b\0");
        ifname("bth0123456789abc").unwrap_err();
        ifname("").unwrap_err();
        assert_eq!(ipv4("172.17.0.2".parse().unwrap()), [172, 17, 0, 2]);
        let v6 = ipv6("fd00::2".parse().unwrap());
        assert_eq!((v6.len(), v6[0], v6[1], v6[15]), (16, 0xfd, 0, 2));
        assert_eq!(ip("10.0.0.1".parse().unwrap()), [10, 0, 0, 1]);
        assert_eq!(proto(6), [6]);
        assert_eq!(port(8080), [0x1f, 0x90]);
    }

    /// The layouts `nft --debug=netlink add element` printed (as host-order
    /// u32 words) for the berth maps, byte by byte.
    #[test]
    fn concatenations_match_nft() {
        // inet_proto . inet_service : ipv4_addr . inet_service
        // "tcp . 8080 : 172.17.0.2 . 80" -> 00000006 0000901f : 020011ac 00005000
        let key = concat(&[&proto(6), &port(8080)]);
        assert_eq!(key, [6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        let data = concat(&[&ipv4(Ipv4Addr::new(172, 17, 0, 2)), &port(80)]);
        assert_eq!(data, [172, 17, 0, 2, 0, 80, 0, 0]);
        // ipv4_addr . inet_proto . inet_service: 0100007f 00000006 0000901f
        let key = concat(&[&ipv4(Ipv4Addr::LOCALHOST), &proto(6), &port(8080)]);
        assert_eq!(key, [127, 0, 0, 1, 6, 0, 0, 0, 0x1f, 0x90, 0, 0]);
        // ifname . ifname: 32 bytes
        let pair = concat(&[&ifname("br0").unwrap(), &ifname("br0").unwrap()]);
        assert_eq!(pair.len(), 32);
        assert_eq!(&pair[16..19], b"br0");
        // ipv6_addr . inet_service: 16 + 4
        let v6 = concat(&[&ipv6("fd00::2".parse().unwrap()), &port(53)]);
        assert_eq!((v6.len(), &v6[16..]), (20, &[0, 53, 0, 0][..]));
        assert!(concat(&[]).is_empty());
    }

    #[test]
    fn prefixes_are_start_and_interval_end() {
        let els = prefix("172.18.0.0/16".parse().unwrap());
        assert_eq!(
            els,
            [
                Element::key(vec![172, 18, 0, 0]),
                Element {
                    interval_end: true,
                    ..Element::key(vec![172, 19, 0, 0])
                }
            ]
        );
        // A host: the end is the next address. Host bits are dropped.
        let els = prefix("10.0.0.1/32".parse().unwrap());
        assert_eq!(
            (els[0].key.clone(), els[1].key.clone()),
            (vec![10, 0, 0, 1], vec![10, 0, 0, 2])
        );
        assert_eq!(
            prefix("172.18.3.4/16".parse().unwrap())[0].key,
            [172, 18, 0, 0]
        );
        // Up to the top of the address space: no end element.
        assert_eq!(prefix("240.0.0.0/4".parse().unwrap()).len(), 1);
        assert_eq!(prefix("0.0.0.0/0".parse().unwrap()).len(), 1);
        assert_eq!(prefix("::/0".parse().unwrap()).len(), 1);
        let els = prefix("fd00::/64".parse().unwrap());
        let mut end = [0u8; 16];
        end[0] = 0xfd;
        end[7] = 1;
        assert_eq!(
            (els[1].key.as_slice(), els[1].interval_end),
            (&end[..], true)
        );
        assert!(!els[0].interval_end);
    }

    #[test]
    fn ranges_are_start_and_the_address_after_the_end() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let els = range(ip("10.91.0.2"), ip("10.91.255.255")).unwrap();
        assert_eq!(
            els,
            [
                Element::key(vec![10, 91, 0, 2]),
                Element {
                    interval_end: true,
                    ..Element::key(vec![10, 92, 0, 0])
                }
            ]
        );
        // One address; the top of the space (no end element); IPv6 carries past a word.
        let one = range(ip("10.91.0.0"), ip("10.91.0.0")).unwrap();
        assert_eq!(one[1].key, [10, 91, 0, 1]);
        assert_eq!(
            range(ip("10.0.0.0"), ip("255.255.255.255")).unwrap().len(),
            1
        );
        let v6 = range(ip("fd00::2"), ip("fd00::ffff:ffff:ffff:ffff")).unwrap();
        let mut end = [0u8; 16];
        end[0] = 0xfd;
        end[7] = 1;
        assert_eq!(v6[1].key, end);
        range(ip("10.0.0.2"), ip("10.0.0.1")).unwrap_err();
        range(ip("10.0.0.2"), ip("fd00::1")).unwrap_err();
    }

    #[test]
    fn values_are_bounded() {
        check_value("key", &[1]).unwrap();
        check_value("key", &[]).unwrap_err();
        check_value("key", &[0; 65]).unwrap_err();
    }
}
