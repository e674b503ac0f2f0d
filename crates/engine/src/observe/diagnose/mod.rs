//! `berth diagnose SRC DST[:PORT][/PROTO]`: walks the path between two containers, a
//! container and the host, or an address and a container, and names the first thing that
//! stops the traffic, with the fix.
//!
//! The walk reads the store (networks, endpoints, published ports), the kernel (links,
//! addresses, routes, neighbours in the host's and each container's namespace, bridge port
//! flags), the live nftables ruleset of every table (`nft -j list ruleset`, see [`nft`]),
//! and finally probes a TCP port from inside SRC's namespace. It changes nothing.
//!
//! Each step is a [`Check`]; the first failing one gives the [`Verdict`]. `walk` holds one
//! function per kind of path, `checks` the steps they share, `published` the paths through a
//! published port, `nft` the ruleset evaluator and `probe` the TCP probe. A DST on another
//! host (a container or address the cluster store knows on an overlay network) is walked by
//! `remote`: the VXLAN device and its FDB, neighbour and flood entries for DST, under the
//! same `not-programmed` verdict the bridge port check uses.

mod checks;
mod nft;
mod probe;
mod published;
mod remote;
mod walk;

use crate::{Engine, Error, Result};
use berth_cluster::EndpointRecord;
use berth_store::{Container, Endpoint};
use serde::Serialize;
use std::net::IpAddr;

/// One step of the walk.
#[derive(Clone, Debug, Serialize)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

/// The conclusion: a stable code, the cause in words, and what to do.
#[derive(Clone, Debug, Serialize)]
pub struct Verdict {
    /// `reachable`, `no-shared-network`, `internal-network`, `icc-off`, `interface-down`,
    /// `missing-address`, `missing-route`, `not-programmed`, `berth-rule`, `other-table`,
    /// `nothing-listening`, `published-other-ip`, `no-answer`, `no-namespace`.
    pub code: &'static str,
    pub cause: String,
    pub fix: String,
}

/// The whole answer of `berth diagnose`.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub source: String,
    pub destination: String,
    pub reachable: bool,
    pub checks: Vec<Check>,
    pub verdict: Verdict,
}

/// What DST names, before it is resolved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// A container reference, `host`, or an address.
    pub name: String,
    pub port: Option<u16>,
    /// `tcp` (default), `udp` or `sctp`.
    pub proto: String,
}

/// Parses `NAME[:PORT][/PROTO]` (IPv6 addresses with a port in brackets: `[fd00::2]:80`).
pub fn parse_target(s: &str) -> Result<Target> {
    let bad = |why: &str| Error::Invalid(format!("invalid destination {s:?}: {why}"));
    let (rest, proto) = match s.rsplit_once('/') {
        Some((r, p @ ("tcp" | "udp" | "sctp"))) => (r, p.to_string()),
        Some((_, p)) => {
            return Err(bad(&format!(
                "unknown protocol {p:?}: use tcp, udp or sctp"
            )))
        }
        None => (s, "tcp".to_string()),
    };
    let (name, port) = if let Some(inner) = rest.strip_prefix('[') {
        match inner.split_once(']') {
            Some((a, "")) => (a, None),
            Some((a, p)) => (
                a,
                Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| bad("expected :PORT after ]"))?,
                ),
            ),
            None => return Err(bad("missing ]")),
        }
    } else if rest.parse::<IpAddr>().is_ok() {
        (rest, None)
    } else {
        match rest.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (rest, None),
        }
    };
    let port = port
        .map(|p| match p.parse::<u16>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(bad(&format!("port {p:?} is not 1-65535"))),
        })
        .transpose()?;
    if name.is_empty() {
        return Err(bad("no container, host or address"));
    }
    Ok(Target {
        name: name.to_string(),
        port,
        proto,
    })
}

/// A resolved end of the path (two per diagnosis: the size of a variant does not matter).
#[derive(Clone, Debug)]
#[allow(clippy::large_enum_variant)]
pub(crate) enum Side {
    /// The host itself (`host`, or one of its addresses).
    Host(Option<IpAddr>),
    /// A container; the address when one of its addresses was given.
    Container {
        c: Container,
        eps: Vec<Endpoint>,
        addr: Option<IpAddr>,
    },
    /// A container endpoint on another host, as the cluster store records it.
    Remote(EndpointRecord),
    /// An address berth knows nothing of (beyond the host).
    External(IpAddr),
}

impl Side {
    fn label(&self) -> String {
        match self {
            Side::Host(None) => "host".into(),
            Side::Host(Some(a)) => format!("host ({a})"),
            Side::Container { c, addr: None, .. } => c.name.clone(),
            Side::Container {
                c, addr: Some(a), ..
            } => format!("{} ({a})", c.name),
            Side::Remote(r) => format!("{} ({} on host {})", r.container_name, r.ip, r.host),
            Side::External(a) => a.to_string(),
        }
    }
}

fn resolve(engine: &mut Engine, name: &str, host_addrs: &[IpAddr]) -> Result<Side> {
    if name == "host" {
        return Ok(Side::Host(None));
    }
    if let Ok(addr) = name.parse::<IpAddr>() {
        for (c, eps) in crate::container::list(engine)? {
            if eps
                .iter()
                .any(|e| e.addresses.iter().any(|a| a.addr == addr))
            {
                return Ok(Side::Container {
                    c,
                    eps,
                    addr: Some(addr),
                });
            }
        }
        if host_addrs.contains(&addr) {
            return Ok(Side::Host(Some(addr)));
        }
        return Ok(match remote(engine, |r| r.ip == addr)? {
            Some(r) => Side::Remote(r),
            None => Side::External(addr),
        });
    }
    let c = match crate::container::find(engine, name) {
        Err(Error::NotFound { .. }) if crate::overlay::configured(engine) => {
            let found = remote(engine, |r| {
                r.container_name == name || (name.len() >= 4 && r.container_id.starts_with(name))
            })?;
            if let Some(r) = found {
                return Ok(Side::Remote(r));
            }
            crate::container::find(engine, name)?
        }
        other => other?,
    };
    if c.mode == berth_store::NetworkMode::Host {
        // It shares the host's namespace: its traffic is the host's.
        return Ok(Side::Host(None));
    }
    let eps = crate::container::endpoints(engine, &c.id)?;
    Ok(Side::Container { c, eps, addr: None })
}

/// The first endpoint record of another host on an overlay network that `pick` chooses.
fn remote(
    engine: &mut Engine,
    pick: impl Fn(&EndpointRecord) -> bool,
) -> Result<Option<EndpointRecord>> {
    if !crate::overlay::configured(engine) {
        return Ok(None);
    }
    // The local mirrors as they are: a store that does not answer finds no remote DST
    // rather than failing the diagnosis.
    let nets = engine
        .store
        .read(|tx| -> Result<Vec<berth_store::Network>> { Ok(tx.networks()?) })?;
    let local = super::overlay::host_name(engine);
    let records = super::overlay::records(engine, &nets).unwrap_or_default();
    Ok(records
        .into_iter()
        .find(|r| Some(&r.host) != local.as_ref() && pick(r)))
}

/// Diagnoses the path from `src` (a container, `host` or an address) to `dst`.
pub fn diagnose(engine: &mut Engine, src: &str, dst: &str) -> Result<Report> {
    let target = parse_target(dst)?;
    if src.contains('/') || (src.parse::<IpAddr>().is_err() && src.contains(':')) {
        return Err(Error::Invalid(format!(
            "invalid source {src:?}: give a container, host or an address, without a port"
        )));
    }
    let host = super::NsView::host()?;
    let host_addrs: Vec<IpAddr> = host.addresses.iter().map(|a| a.addr).collect();
    let s = resolve(engine, src, &host_addrs)?;
    let d = resolve(engine, &target.name, &host_addrs)?;
    let mut w = walk::Walk::new(engine, host, &target)?;
    let verdict = w.run(&s, &d)?;
    let dst_label = match target.port {
        Some(p) => format!("{}:{p}/{}", d.label(), target.proto),
        None => d.label(),
    };
    Ok(Report {
        source: s.label(),
        destination: dst_label,
        reachable: verdict.code == "reachable",
        checks: w.checks,
        verdict,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_parse_with_and_without_port_and_protocol() {
        let t = parse_target("web:80").unwrap();
        assert_eq!(
            (t.name.as_str(), t.port, t.proto.as_str()),
            ("web", Some(80), "tcp")
        );
        let t = parse_target("10.0.0.2:53/udp").unwrap();
        assert_eq!(
            (t.name.as_str(), t.port, t.proto.as_str()),
            ("10.0.0.2", Some(53), "udp")
        );
        let t = parse_target("fd00::2").unwrap();
        assert_eq!((t.name.as_str(), t.port), ("fd00::2", None));
        let t = parse_target("[fd00::2]:8080").unwrap();
        assert_eq!((t.name.as_str(), t.port), ("fd00::2", Some(8080)));
        assert_eq!(parse_target("host").unwrap().port, None);
        for bad in ["web:0", "web:http", "web:80/icmp", ":80", "[fd00::2"] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
    }
}
