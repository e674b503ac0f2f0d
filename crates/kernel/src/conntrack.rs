//! Connection-tracking entries over ctnetlink (NETLINK_NETFILTER,
//! `NFNL_SUBSYS_CTNETLINK`): delete the entries of a removed port mapping,
//! as `conntrack -D` would, without spawning it.
//!
//! The kernel is asked for a dump of the table (`IPCTNL_MSG_CT_GET` +
//! `NLM_F_DUMP`, per address family), entries are matched here, and each
//! match is deleted by its original tuple and id (`IPCTNL_MSG_CT_DELETE`).
//! Everything acts in the network namespace of the calling thread.

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use netlink_packet_core::{NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST};

use crate::nftables::nfnl::{Attrs, Builder, Message, NLA_F_NESTED};
use crate::nftables::socket::NfSocket;
use crate::Result;

/// `NFNL_SUBSYS_CTNETLINK`.
const SUBSYS: u16 = 1;
const IPCTNL_MSG_CT_NEW: u16 = 0;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const CTA_TUPLE_ORIG: u16 = 1;
const CTA_TUPLE_REPLY: u16 = 2;
const CTA_STATUS: u16 = 3;
const CTA_ID: u16 = 12;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_IP: u16 = 1;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_IP_V4_SRC: u16 = 1;
const CTA_IP_V4_DST: u16 = 2;
const CTA_IP_V6_SRC: u16 = 3;
const CTA_IP_V6_DST: u16 = 4;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_SRC_PORT: u16 = 2;
const CTA_PROTO_DST_PORT: u16 = 3;
/// `IPS_DST_NAT` in `CTA_STATUS`: the destination was translated.
const IPS_DST_NAT: u32 = 1 << 5;
/// Delete requests per datagram.
const DELETES_PER_SEND: usize = 64;

/// A published port whose connections are to be forgotten: traffic to
/// `host_port` (on `orig_dst`, or on any address when `None`) that was
/// translated (DNAT) to `container_addr:container_port`, protocol `proto`
/// (`libc::IPPROTO_TCP`, `IPPROTO_UDP`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Mapping {
    /// IP protocol number.
    pub proto: u8,
    /// Destination port the client connected to.
    pub host_port: u16,
    /// Destination address the client connected to, if the mapping was
    /// bound to one.
    pub orig_dst: Option<IpAddr>,
    /// Where the connection was translated to.
    pub container_addr: IpAddr,
    /// The container's port.
    pub container_port: u16,
}

impl Mapping {
    /// Whether `entry` belongs to this mapping: its destination was
    /// translated, same protocol, reply source is the container's address and
    /// port, original destination port is the host port (and address
    /// `orig_dst` when set). Untranslated traffic straight to the container
    /// is never matched.
    fn matches(&self, entry: &Entry) -> bool {
        entry.dst_nat
            && entry.proto == Some(self.proto)
            && entry.reply_src == Some(self.container_addr)
            && entry.reply_sport == Some(self.container_port)
            && entry.orig_dport == Some(self.host_port)
            && (self.orig_dst.is_none() || entry.orig_dst == self.orig_dst)
    }
}

/// What a dumped entry says, plus what deleting it takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Entry {
    family: u8,
    /// `IPS_DST_NAT` is set.
    dst_nat: bool,
    proto: Option<u8>,
    orig_dst: Option<IpAddr>,
    orig_dport: Option<u16>,
    reply_src: Option<IpAddr>,
    reply_sport: Option<u16>,
    /// The `CTA_TUPLE_ORIG` attribute's contents, sent back as they came.
    orig_tuple: Vec<u8>,
    id: Option<u32>,
    zone: Option<u16>,
}

/// Deletes the entries of every mapping in `mappings` (one dump per address
/// family serves them all) and returns how many were deleted. An entry that
/// disappears between the dump and its deletion (`ENOENT`) is not counted
/// and not an error.
pub fn delete_mapping_entries(mappings: &[Mapping]) -> Result<usize> {
    if mappings.is_empty() {
        return Ok(0);
    }
    let mut socket = NfSocket::open("open ctnetlink socket")?;
    let entries = matching(&mut socket, mappings)?;
    let mut deleted = 0;
    for chunk in entries.chunks(DELETES_PER_SEND) {
        let op = format!("delete {} conntrack entries", chunk.len());
        let mut datagram = Vec::new();
        let mut seqs = Vec::with_capacity(chunk.len());
        for entry in chunk {
            let seq = socket.next_seq();
            datagram.extend(delete_request(entry).finish(seq));
            seqs.push(seq);
        }
        socket.send(&op, &datagram)?;
        let nacks = socket.wait_acks(&op, seqs, None)?;
        if let Some(nack) = nacks.iter().find(|n| n.errno != libc::ENOENT) {
            return Err(nack.clone().into_error(op));
        }
        deleted += chunk.len() - nacks.len();
    }
    Ok(deleted)
}

/// How many entries belong to `mapping` (for tests and diagnostics).
pub fn count_matching(mapping: &Mapping) -> Result<usize> {
    let mut socket = NfSocket::open("open ctnetlink socket")?;
    Ok(matching(&mut socket, std::slice::from_ref(mapping))?.len())
}

fn matching(socket: &mut NfSocket, mappings: &[Mapping]) -> Result<Vec<Entry>> {
    let families: HashSet<u8> = mappings
        .iter()
        .map(|m| family_of(m.container_addr))
        .collect();
    let mut out = Vec::new();
    for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
        if !families.contains(&family) {
            continue;
        }
        let op = format!("dump conntrack entries (family {family})");
        let seq = socket.next_seq();
        let request = Builder::new(
            (SUBSYS << 8) | IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            family,
            0,
        )
        .finish(seq);
        // An interrupted dump may miss entries; a later removal finds them
        // idle anyway, so it is not retried.
        socket.dump(&op, &request, seq, |msg| {
            if let Some(entry) = parse(msg).filter(|e| e.family == family) {
                if mappings.iter().any(|m| m.matches(&entry)) {
                    out.push(entry);
                }
            }
            Ok(())
        })?;
    }
    Ok(out)
}

fn family_of(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(_) => libc::AF_INET as u8,
        IpAddr::V6(_) => libc::AF_INET6 as u8,
    }
}

/// `IPCTNL_MSG_CT_DELETE` for `entry`: its original tuple, its zone, and its
/// id, so that a new connection that reused the tuple is left alone.
fn delete_request(entry: &Entry) -> Builder {
    let mut b = Builder::new(
        (SUBSYS << 8) | IPCTNL_MSG_CT_DELETE,
        NLM_F_REQUEST | NLM_F_ACK,
        entry.family,
        0,
    );
    b.put(CTA_TUPLE_ORIG | NLA_F_NESTED, &entry.orig_tuple);
    if let Some(zone) = entry.zone {
        b.put(CTA_ZONE, &zone.to_be_bytes());
    }
    if let Some(id) = entry.id {
        b.put_be32(CTA_ID, id);
    }
    b
}

/// Reads one `IPCTNL_MSG_CT_NEW` dump reply.
fn parse(msg: &Message<'_>) -> Option<Entry> {
    if msg.kind != (SUBSYS << 8) | IPCTNL_MSG_CT_NEW {
        return None;
    }
    let attrs = msg.attrs();
    let orig = attrs.get(CTA_TUPLE_ORIG)?;
    let reply = attrs.get(CTA_TUPLE_REPLY)?;
    let (o, r) = (tuple(orig), tuple(reply));
    Some(Entry {
        family: msg.family()?,
        dst_nat: attrs.get_be32(CTA_STATUS).unwrap_or(0) & IPS_DST_NAT != 0,
        proto: o.proto,
        orig_dst: o.dst,
        orig_dport: o.dport,
        reply_src: r.src,
        reply_sport: r.sport,
        orig_tuple: orig.to_vec(),
        id: attrs.get_be32(CTA_ID),
        zone: attrs
            .get(CTA_ZONE)
            .and_then(|z| Some(u16::from_be_bytes(z.try_into().ok()?))),
    })
}

/// The fields of a `CTA_TUPLE_*` attribute that matching needs.
#[derive(Debug, Default)]
struct Tuple {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    proto: Option<u8>,
    sport: Option<u16>,
    dport: Option<u16>,
}

fn tuple(value: &[u8]) -> Tuple {
    let attrs = Attrs(value);
    let ip = attrs.get(CTA_TUPLE_IP).map(Attrs);
    let addr = |kind| -> Option<IpAddr> {
        let raw = ip?.get(kind)?;
        match raw.len() {
            4 => Some(Ipv4Addr::from(<[u8; 4]>::try_from(raw).ok()?).into()),
            16 => Some(Ipv6Addr::from(<[u8; 16]>::try_from(raw).ok()?).into()),
            _ => None,
        }
    };
    let proto = attrs.get(CTA_TUPLE_PROTO).map(Attrs);
    let port = |kind| Some(u16::from_be_bytes(proto?.get(kind)?.try_into().ok()?));
    Tuple {
        src: addr(CTA_IP_V4_SRC).or_else(|| addr(CTA_IP_V6_SRC)),
        dst: addr(CTA_IP_V4_DST).or_else(|| addr(CTA_IP_V6_DST)),
        proto: proto.and_then(|p| p.get(CTA_PROTO_NUM)?.first().copied()),
        sport: port(CTA_PROTO_SRC_PORT),
        dport: port(CTA_PROTO_DST_PORT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nftables::nfnl::messages;

    /// A dump reply: client 10.0.0.9:40000 -> 192.0.2.1:8080, DNAT'd to
    /// 172.17.0.2:80 (reply 172.17.0.2:80 -> 10.0.0.9:40000).
    fn reply_msg(zone: Option<u16>, dst_nat: u32) -> Vec<u8> {
        fn tuple(b: &mut Builder, kind: u16, src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) {
            b.nest(kind);
            b.nest(CTA_TUPLE_IP)
                .put(CTA_IP_V4_SRC, &src)
                .put(CTA_IP_V4_DST, &dst)
                .end();
            b.nest(CTA_TUPLE_PROTO)
                .put(CTA_PROTO_NUM, &[6])
                .put(CTA_PROTO_SRC_PORT, &sport.to_be_bytes())
                .put(CTA_PROTO_DST_PORT, &dport.to_be_bytes())
                .end();
            b.end();
        }
        let mut b = Builder::new(SUBSYS << 8, 2, libc::AF_INET as u8, 0);
        tuple(
            &mut b,
            CTA_TUPLE_ORIG,
            [10, 0, 0, 9],
            [192, 0, 2, 1],
            40000,
            8080,
        );
        tuple(
            &mut b,
            CTA_TUPLE_REPLY,
            [172, 17, 0, 2],
            [10, 0, 0, 9],
            80,
            40000,
        );
        b.put_be32(CTA_ID, 0xdead_beef);
        b.put_be32(CTA_STATUS, dst_nat);
        if let Some(z) = zone {
            b.put(CTA_ZONE, &z.to_be_bytes());
        }
        b.finish(1)
    }

    fn mapping() -> Mapping {
        Mapping {
            proto: 6,
            host_port: 8080,
            orig_dst: None,
            container_addr: "172.17.0.2".parse().unwrap(),
            container_port: 80,
        }
    }

    #[test]
    fn dump_reply_is_parsed_and_matched() {
        let bytes = reply_msg(None, IPS_DST_NAT | 0xe);
        let (msgs, _) = messages(&bytes);
        let entry = parse(&msgs[0]).unwrap();
        assert_eq!(entry.orig_dst, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(
            (entry.proto, entry.orig_dport, entry.reply_sport),
            (Some(6), Some(8080), Some(80))
        );
        assert_eq!(entry.id, Some(0xdead_beef));
        let m = mapping();
        assert!(m.matches(&entry));
        let bound = Mapping {
            orig_dst: Some("192.0.2.1".parse().unwrap()),
            ..m.clone()
        };
        assert!(bound.matches(&entry));
        for other in [
            Mapping {
                orig_dst: Some("192.0.2.2".parse().unwrap()),
                ..m.clone()
            },
            Mapping {
                proto: 17,
                ..m.clone()
            },
            Mapping {
                host_port: 8081,
                ..m.clone()
            },
            Mapping {
                container_port: 81,
                ..m.clone()
            },
            Mapping {
                container_addr: "172.17.0.3".parse().unwrap(),
                ..m.clone()
            },
        ] {
            assert!(!other.matches(&entry), "{other:?}");
        }
        // Without IPS_DST_NAT the same tuples are not a mapping's.
        let bytes = reply_msg(None, 0xe);
        let (msgs, _) = messages(&bytes);
        assert!(!m.matches(&parse(&msgs[0]).unwrap()));
    }

    #[test]
    fn delete_request_sends_the_original_tuple_back_with_id_and_zone() {
        let bytes = reply_msg(Some(5), IPS_DST_NAT);
        let (msgs, _) = messages(&bytes);
        let entry = parse(&msgs[0]).unwrap();
        let req = delete_request(&entry).finish(9);
        let (msgs, _) = messages(&req);
        assert_eq!(msgs[0].kind, 0x0102);
        assert_eq!(msgs[0].flags, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(msgs[0].family(), Some(libc::AF_INET as u8));
        let attrs = msgs[0].attrs();
        assert_eq!(attrs.get(CTA_TUPLE_ORIG), Some(&entry.orig_tuple[..]));
        assert_eq!(tuple(attrs.get(CTA_TUPLE_ORIG).unwrap()).dport, Some(8080));
        assert_eq!(attrs.get_be32(CTA_ID), Some(0xdead_beef));
        assert_eq!(attrs.get(CTA_ZONE), Some(&[0, 5][..]));
        // The tuple keeps its NLA_F_NESTED flag.
        assert_eq!(
            u16::from_ne_bytes([msgs[0].payload[6], msgs[0].payload[7]]),
            0x8001
        );
    }

    #[test]
    fn other_messages_are_not_entries() {
        let bytes = Builder::new(0x0a0c, 2, 2, 0).finish(1);
        let (msgs, _) = messages(&bytes);
        assert_eq!(parse(&msgs[0]), None);
        assert_eq!(delete_mapping_entries(&[]).unwrap(), 0);
    }
}
