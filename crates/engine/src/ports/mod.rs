//! Published ports: from `-p` values to store rows, firewall elements and conntrack flushes.
//!
//! A published port is a map element (see `berth-firewall`), never a rule or a process. The
//! store's `ports` table is the authority on which host ports are taken: a `-p` that
//! overlaps one already published (same protocol and port, overlapping host address) is
//! refused before anything changes. A host port on which a host process already listens is
//! refused as well (DNAT would silently take that process's traffic): berth probes it by
//! binding it, as a proxy-based runtime would.
//!
//! `[::1]` is the exception NAT cannot serve (no IPv6 `route_localnet`): a mapping whose
//! host address covers it (`[::1]`, `[::]` or none) gets no `::1` element; the agent relays
//! `[::1]:HOSTPORT` in userspace instead (`relay`).

mod probe;
pub mod relay;
pub mod spec;

use crate::{Error, Result};
use berth_firewall::PortElement;
use berth_store::{Endpoint, PortMapping, Tx};
use spec::{HostIp, Proto, PublishSpec};
use std::net::IpAddr;

pub use spec::PublishSpec as Spec;

/// Parses every `-p` value, reporting the first bad one.
pub fn parse_all(values: &[String]) -> Result<Vec<PublishSpec>> {
    let specs: Vec<PublishSpec> = values
        .iter()
        .map(|v| PublishSpec::parse(v))
        .collect::<Result<_>>()?;
    if let Some(s) = specs
        .iter()
        .find(|s| matches!(s.host_ip, HostIp::Addr(a) if relay::is_v6_loopback(a)))
    {
        if !crate::agent::enabled() {
            return Err(Error::Invalid(format!(
                "cannot publish on {}: the berth agent relays [::1] (IPv6 has no route_localnet, so NAT cannot), and BERTH_NO_AGENT is set",
                s.host_ip
            )));
        }
        if s.proto == Proto::Sctp {
            return Err(Error::Invalid(format!(
                "cannot publish SCTP on {}: the agent relays [::1] with sockets, and it has no SCTP sockets",
                s.host_ip
            )));
        }
    }
    Ok(specs)
}

fn conflict(p: &PortMapping, owner: &str) -> Error {
    let ip = HostIp::from_store(&p.host_ip).unwrap_or(HostIp::Any);
    Error::Conflict(format!(
        "host port {ip}:{}/{} is already published by container {owner}",
        p.host_port, p.protocol
    ))
}

/// Turns `specs` into concrete rows for `container_id` inside a write transaction: checks
/// each host port against the store and (with `probe`) the host's listening sockets, and
/// picks free ephemeral ports where none were given. Runtimes behind the doors reserve
/// their host ports themselves (podman binds them), so they are not probed.
pub(crate) fn allocate(
    tx: &Tx<'_>,
    container_id: &str,
    specs: &[PublishSpec],
    probe: bool,
) -> Result<Vec<PortMapping>> {
    let check = |host, proto, port| match probe {
        true => probe::check(host, proto, port),
        false => Ok(()),
    };
    let mut out: Vec<PortMapping> = Vec::new();
    for s in specs {
        let taken = |port: u16, out: &[PortMapping]| -> Result<Option<Error>> {
            let proto = s.proto.as_str();
            let mine = out
                .iter()
                .filter(|p| p.protocol == proto && p.host_port == port);
            for p in tx.ports_in_range(proto, port, port)?.iter().chain(mine) {
                let other = HostIp::from_store(&p.host_ip).unwrap_or(HostIp::Any);
                if other.overlaps(s.host_ip) {
                    let owner = match tx.container_by_id(&p.container_id)? {
                        Some(c) if p.container_id != container_id => c.name,
                        _ => "being created (given twice)".into(),
                    };
                    return Ok(Some(conflict(p, &owner)));
                }
            }
            Ok(None)
        };
        let (c0, c1) = s.container_ports;
        let row = |host_port: u16, container_port: u16| PortMapping {
            container_id: container_id.to_string(),
            protocol: s.proto.as_str().to_string(),
            host_ip: s.host_ip.to_store(),
            host_port,
            container_port,
        };
        match s.host_ports {
            // Same-length ranges map port to port.
            Some((h0, h1)) if h1 - h0 == c1 - c0 => {
                for i in 0..=(h1 - h0) {
                    if let Some(e) = taken(h0 + i, &out)? {
                        return Err(e);
                    }
                    check(s.host_ip, s.proto, h0 + i)?;
                    out.push(row(h0 + i, c0 + i));
                }
            }
            // A host range for one container port: its first free port.
            Some((h0, h1)) => {
                let port = first_free(&taken, &check, s, h0, h1, &out)?.ok_or_else(|| {
                    Error::Conflict(format!(
                        "no free host port in {h0}-{h1}/{} for container port {c0}",
                        s.proto.as_str()
                    ))
                })?;
                out.push(row(port, c0));
            }
            None => {
                let (lo, hi) = probe::ephemeral_range();
                for c in c0..=c1 {
                    let port = first_free(&taken, &check, s, lo, hi, &out)?.ok_or_else(|| {
                        Error::Conflict(format!(
                            "no free host port in the ephemeral range {lo}-{hi}/{}",
                            s.proto.as_str()
                        ))
                    })?;
                    out.push(row(port, c));
                }
            }
        }
    }
    Ok(out)
}

fn first_free(
    taken: &impl Fn(u16, &[PortMapping]) -> Result<Option<Error>>,
    check: &impl Fn(HostIp, Proto, u16) -> Result<()>,
    s: &PublishSpec,
    lo: u16,
    hi: u16,
    out: &[PortMapping],
) -> Result<Option<u16>> {
    for port in lo..=hi {
        if taken(port, out)?.is_none() && check(s.host_ip, s.proto, port).is_ok() {
            return Ok(Some(port));
        }
    }
    Ok(None)
}

/// The addresses a container's published ports lead to: those of its first endpoint that
/// lets traffic out (the one carrying its default route).
pub(crate) fn targets(eps: &[Endpoint]) -> (Option<IpAddr>, Option<IpAddr>) {
    let Some(ep) = eps.first() else {
        return (None, None);
    };
    let v4 = ep.addresses.iter().map(|a| a.addr).find(IpAddr::is_ipv4);
    let v6 = ep.addresses.iter().map(|a| a.addr).find(IpAddr::is_ipv6);
    (v4, v6)
}

/// Checks that every mapping has a container address of a family it needs.
pub(crate) fn check_targets(
    specs: &[PublishSpec],
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
) -> Result<()> {
    for s in specs {
        let need_v4 = matches!(s.host_ip, HostIp::AnyV4 | HostIp::Addr(IpAddr::V4(_)));
        // [::1] is relayed by the agent, to a v4 address as well as a v6 one.
        let need_v6 = match s.host_ip {
            HostIp::AnyV6 => true,
            HostIp::Addr(a) => a.is_ipv6() && !relay::is_v6_loopback(a),
            _ => false,
        };
        if (need_v4 && v4.is_none()) || (need_v6 && v6.is_none()) || (v4.is_none() && v6.is_none())
        {
            let fam = if need_v6 { "IPv6" } else { "IPv4" };
            return Err(Error::Invalid(format!(
                "cannot publish {}: the container has no {fam} address on its first network",
                s.host_ip
            )));
        }
    }
    Ok(())
}

/// The firewall elements of a container's published ports.
pub(crate) fn elements(
    ports: &[PortMapping],
    v4: Option<IpAddr>,
    v6: Option<IpAddr>,
) -> Vec<PortElement> {
    let mut out = Vec::new();
    for p in ports {
        let Some(proto) = Proto::parse(&p.protocol) else {
            continue;
        };
        let host = HostIp::from_store(&p.host_ip).unwrap_or(HostIp::Any);
        let mut push = |dest: Option<IpAddr>, host_ip: Option<IpAddr>| {
            if let Some(dest) = dest {
                out.push(PortElement {
                    proto: proto.number(),
                    host_ip,
                    host_port: p.host_port,
                    dest,
                    dest_port: p.container_port,
                });
            }
        };
        match host {
            // The agent relays [::1]; a DNAT'd ::1 flow would lose its replies.
            HostIp::Addr(a) if relay::is_v6_loopback(a) => {}
            HostIp::Addr(a) if a.is_ipv4() => push(v4, Some(a)),
            HostIp::Addr(a) => push(v6, Some(a)),
            h => {
                if h.has_v4() {
                    push(v4, None);
                }
                if h.has_v6() {
                    push(v6, None);
                }
            }
        }
    }
    out
}

/// Deletes the conntrack entries of removed mappings, so that no stale flow (a UDP stream
/// above all) keeps going to a container that no longer owns the port.
pub(crate) fn flush_conntrack(ports: &[PortElement]) -> Result<usize> {
    use berth_kernel::conntrack::{delete_mapping_entries, Mapping};
    if ports.is_empty() {
        return Ok(0);
    }
    // A dump walks the whole conntrack hash table, whatever it holds: skip it when this
    // namespace tracks no connection at all (or has no conntrack).
    match berth_kernel::sysctl::read("net/netfilter/nf_conntrack_count") {
        Ok(n) if n.trim() == "0" => return Ok(0),
        Err(_) => return Ok(0),
        Ok(_) => {}
    }
    let m: Vec<Mapping> = ports
        .iter()
        .map(|p| Mapping {
            proto: p.proto,
            host_port: p.host_port,
            orig_dst: p.host_ip,
            container_addr: p.dest,
            container_port: p.dest_port,
        })
        .collect();
    delete_mapping_entries(&m).map_err(|e| Error::Kernel {
        op: "flush conntrack entries of removed ports".into(),
        source: e,
    })
}

/// `80/tcp -> 0.0.0.0:8080` lines, as `docker port` prints them.
pub fn describe(p: &PortMapping) -> Vec<String> {
    let host = HostIp::from_store(&p.host_ip).unwrap_or(HostIp::Any);
    let left = format!("{}/{}", p.container_port, p.protocol);
    match host {
        HostIp::Any => vec![
            format!("{left} -> 0.0.0.0:{}", p.host_port),
            format!("{left} -> [::]:{}", p.host_port),
        ],
        h => vec![format!("{left} -> {h}:{}", p.host_port)],
    }
}
