//! The records berth serves: the [`Snapshot`] the agent hands over, the lookup tables built
//! from it once per change ([`Index`]), and the pure name and policy resolution.
//!
//! # Names and policy
//!
//! A requester is identified by the source address of its query. Its networks are the
//! networks on which it has that address or any other address (its container's endpoints).
//! It sees, on each of those networks only, every container there under:
//!
//! - the container's name, its 12-character short id and its aliases on that network;
//! - `X.NETWORK` for each such name `X`;
//! - each of the above with the domain appended (`web.berth.internal`,
//!   `web.frontend.berth.internal`).
//!
//! Matching is ASCII case-insensitive. An unqualified name that several visible containers
//! share answers with all their addresses. A requester that is not in the snapshot sees no
//! container names at all.
//!
//! Reverse lookups: the PTR of a visible container's address is `NAME.NETWORK.DOMAIN.` (one
//! record: the container's name on the network that address belongs to, fully qualified
//! in berth's zone, so it resolves forward again). Docker answers `NAME.NETWORK.`; berth adds
//! the domain so that the answer is a real name in a zone this server is authoritative for.
//! The reverse name of an unallocated address in a subnet of one of the requester's
//! networks is NXDOMAIN; any other reverse name is forwarded.
//!
//! Under the domain everything is berth's: a name that no visible container has is NXDOMAIN
//! (also for unknown requesters), never forwarded. Outside the domain, a name that is not a
//! visible container name goes upstream, except three kinds that never leave the host and
//! are NXDOMAIN (without SOA): bare single-label names, names of containers this requester
//! may not see, and `X.NETWORK` where NETWORK is a berth network.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::error::SnapshotError;
use crate::wire::{encode_name, rtype, QName};

/// The default DNS domain of berth's names.
pub const DEFAULT_DOMAIN: &str = "berth.internal";

/// Everything the server answers from, replaced whole by [`crate::Server::set_records`].
///
/// Include only the networks that have DNS enabled, and for each container only its
/// endpoints on those networks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// The domain under which names are also served, e.g. `berth.internal`.
    #[serde(default = "default_domain")]
    pub domain: String,
    /// Upstream servers for containers without `--dns`: the host's resolv.conf servers
    /// (see [`crate::parse_resolv_conf`]).
    #[serde(default)]
    pub upstreams: Vec<SocketAddr>,
    #[serde(default)]
    pub networks: Vec<NetworkRecord>,
    #[serde(default)]
    pub containers: Vec<Container>,
}

fn default_domain() -> String {
    DEFAULT_DOMAIN.to_string()
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            domain: default_domain(),
            upstreams: Vec::new(),
            networks: Vec::new(),
            containers: Vec::new(),
        }
    }
}

/// A DNS-enabled network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub name: String,
    /// The network's subnets: reverse names of free addresses in them are NXDOMAIN.
    #[serde(default)]
    pub subnets: Vec<IpNet>,
}

/// A container and its endpoints on DNS-enabled networks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Container {
    /// The full id; its first 12 characters are served as a name.
    pub id: String,
    /// The container's name ("" when it has none).
    #[serde(default)]
    pub name: String,
    /// The container's `--dns` servers; empty means the snapshot's `upstreams`.
    #[serde(default)]
    pub dns: Vec<SocketAddr>,
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

/// A container's attachment to one network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// The [`NetworkRecord::name`] of the network.
    pub network: String,
    /// The container's addresses on this network (IPv4 and IPv6).
    #[serde(default)]
    pub addresses: Vec<IpAddr>,
    /// Extra names valid on this network only (`--network-alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Length of the short id served as a name.
pub const SHORT_ID_LEN: usize = 12;

/// A container's addresses on one network.
#[derive(Debug, Default)]
pub(crate) struct Addrs {
    pub(crate) v4: Vec<Ipv4Addr>,
    pub(crate) v6: Vec<Ipv6Addr>,
}

/// One way a name is visible: on network `net`, with these addresses.
#[derive(Debug)]
pub(crate) struct NameEntry {
    net: u32,
    container: u32,
    addrs: Arc<Addrs>,
}

#[derive(Debug)]
struct PtrEntry {
    net: u32,
    /// `NAME.NETWORK.DOMAIN.` in wire form.
    target: Box<[u8]>,
}

/// What the index knows about a query's source address.
#[derive(Debug)]
pub(crate) struct Requester {
    /// Indexes of the networks the requester's container has an address on (sorted).
    nets: Box<[u32]>,
    upstreams: Upstreams,
}

/// An ordered list of upstream servers, shared by all containers that use it.
pub(crate) type Upstreams = Arc<[SocketAddr]>;

#[derive(Debug)]
struct Net {
    subnets: Vec<IpNet>,
}

/// Lookup tables built once from a [`Snapshot`].
#[derive(Debug)]
pub(crate) struct Index {
    domain: Box<str>,
    domain_labels: usize,
    /// `ns.DOMAIN.` and `hostmaster.DOMAIN.` in wire form: the start of every SOA's data.
    soa_names: Box<[u8]>,
    serial: u32,
    nets: Vec<Net>,
    net_names: HashMap<Box<str>, u32>,
    requesters: HashMap<IpAddr, Requester>,
    names: HashMap<Box<str>, Vec<NameEntry>>,
    ptrs: HashMap<IpAddr, Vec<PtrEntry>>,
    default_upstreams: Upstreams,
    /// Containers added so far: the next one's number in its [`NameEntry`]s.
    containers: u32,
}

/// The outcome of resolving one question.
#[derive(Debug)]
pub(crate) enum Resolution<'a> {
    /// Addresses of visible containers; at least one is of the asked type.
    Addresses(Visible<'a>),
    /// One PTR record, the target in wire form.
    Ptr(&'a [u8]),
    /// The name exists for this requester but has no record of the asked type. `zone` is
    /// the label index at which the enclosing zone starts (for the SOA), if berth has one.
    NoData { zone: Option<usize> },
    /// No such name under a zone berth is authoritative for.
    NxDomain { zone: usize },
    /// The SOA of berth's domain (the apex was asked for SOA).
    Soa { zone: usize },
    /// Not berth's: ask these servers.
    Forward(&'a Upstreams),
}

/// The entries of a name that a requester may see.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Visible<'a> {
    entries: &'a [NameEntry],
    nets: &'a [u32],
}

impl<'a> Visible<'a> {
    fn entries(self) -> impl Iterator<Item = &'a NameEntry> {
        let nets = self.nets;
        self.entries
            .iter()
            .filter(move |e| nets.binary_search(&e.net).is_ok())
    }

    pub(crate) fn v4(self) -> impl Iterator<Item = Ipv4Addr> + 'a {
        self.entries().flat_map(|e| e.addrs.v4.iter().copied())
    }

    pub(crate) fn v6(self) -> impl Iterator<Item = Ipv6Addr> + 'a {
        self.entries().flat_map(|e| e.addrs.v6.iter().copied())
    }

    fn any(self) -> bool {
        self.entries().next().is_some()
    }
}

fn lower(s: &str) -> Box<str> {
    s.to_ascii_lowercase().into_boxed_str()
}

impl Index {
    /// Builds the tables; `serial` becomes the SOA serial.
    pub(crate) fn build(snap: &Snapshot, serial: u32) -> Result<Index, SnapshotError> {
        let domain = lower(snap.domain.trim_end_matches('.'));
        let mut soa_names = Vec::new();
        let valid = !domain.is_empty()
            && encode_name(&format!("ns.{domain}"), &mut soa_names).is_some()
            && encode_name(&format!("hostmaster.{domain}"), &mut soa_names).is_some();
        if !valid {
            return Err(SnapshotError::InvalidDomain(snap.domain.clone()));
        }
        let domain_labels = domain.split('.').count();

        let mut nets = Vec::with_capacity(snap.networks.len());
        let mut net_names = HashMap::with_capacity(snap.networks.len());
        for (i, n) in snap.networks.iter().enumerate() {
            if net_names.insert(lower(&n.name), i as u32).is_some() {
                return Err(SnapshotError::DuplicateNetwork(n.name.clone()));
            }
            nets.push(Net {
                subnets: n.subnets.clone(),
            });
        }

        let mut index = Index {
            domain,
            domain_labels,
            soa_names: soa_names.into(),
            serial,
            nets,
            net_names,
            requesters: HashMap::new(),
            names: HashMap::new(),
            ptrs: HashMap::new(),
            default_upstreams: snap.upstreams.clone().into(),
            containers: 0,
        };
        for c in &snap.containers {
            index.add_container(c)?;
        }
        Ok(index)
    }

    /// Adds container `c` (after those already in), as [`Index::build`] does for each one:
    /// the cost of one container, whatever the number already in. Its networks must be in
    /// the index; when one is not, nothing changes. A container already in would be listed
    /// twice: the caller builds anew instead.
    pub(crate) fn add_container(&mut self, c: &Container) -> Result<(), SnapshotError> {
        let mut eps = Vec::with_capacity(c.endpoints.len());
        for ep in &c.endpoints {
            let Some(&net) = self.net_names.get(ep.network.to_ascii_lowercase().as_str()) else {
                return Err(SnapshotError::UnknownNetwork {
                    container: c.id.clone(),
                    network: ep.network.clone(),
                });
            };
            eps.push((net, ep));
        }
        let ci = self.containers;
        self.containers += 1;
        let domain = &self.domain;
        let names = &mut self.names;
        let mut add = |key: String, entry: NameEntry| {
            let list = names.entry(key.into_boxed_str()).or_default();
            // The same name twice for one container on one network (a name repeated as an
            // alias) would only duplicate its addresses.
            if !list
                .iter()
                .any(|e| e.net == entry.net && e.container == entry.container)
            {
                list.push(entry);
            }
        };
        let upstreams = if c.dns.is_empty() {
            self.default_upstreams.clone()
        } else {
            c.dns.clone().into()
        };
        let short_id: String = c.id.chars().take(SHORT_ID_LEN).collect();
        let label = if c.name.is_empty() {
            &short_id
        } else {
            &c.name
        };
        let mut my_nets = Vec::new();
        let mut my_addrs = Vec::new();
        for (net, ep) in eps {
            let mut addrs = Addrs::default();
            for a in &ep.addresses {
                match a.to_canonical() {
                    IpAddr::V4(v4) => addrs.v4.push(v4),
                    IpAddr::V6(v6) => addrs.v6.push(v6),
                }
                my_addrs.push(a.to_canonical());
            }
            if !ep.addresses.is_empty() {
                my_nets.push(net);
            }
            let addrs = Arc::new(addrs);
            let net_lc = lower(&ep.network);
            let mut target = Vec::new();
            if encode_name(&format!("{label}.{}.{domain}", ep.network), &mut target).is_some() {
                let target: Box<[u8]> = target.into();
                for a in &ep.addresses {
                    self.ptrs
                        .entry(a.to_canonical())
                        .or_default()
                        .push(PtrEntry {
                            net,
                            target: target.clone(),
                        });
                }
            }
            let own = [c.name.as_str(), short_id.as_str()];
            for n in own
                .iter()
                .copied()
                .chain(ep.aliases.iter().map(String::as_str))
            {
                if n.is_empty() {
                    continue;
                }
                let n = n.to_ascii_lowercase();
                let entry = |addrs: &Arc<Addrs>| NameEntry {
                    net,
                    container: ci,
                    addrs: addrs.clone(),
                };
                add(format!("{n}.{net_lc}"), entry(&addrs));
                add(n, entry(&addrs));
            }
        }
        my_nets.sort_unstable();
        my_nets.dedup();
        let nets: Box<[u32]> = my_nets.into();
        for a in my_addrs {
            // With overlapping subnets two containers could share an address; the first
            // one listed keeps it.
            self.requesters.entry(a).or_insert_with(|| Requester {
                nets: nets.clone(),
                upstreams: upstreams.clone(),
            });
        }
        Ok(())
    }

    /// Makes this the index of serial `serial` (the SOA serial).
    pub(crate) fn set_serial(&mut self, serial: u32) {
        self.serial = serial;
    }

    /// The SOA serial of this snapshot.
    pub(crate) fn serial(&self) -> u32 {
        self.serial
    }

    /// `ns.DOMAIN.` then `hostmaster.DOMAIN.`, wire form: MNAME and RNAME of every SOA.
    pub(crate) fn soa_names(&self) -> &[u8] {
        &self.soa_names
    }

    /// The upstreams of a requester (its `--dns`, else the defaults).
    pub(crate) fn upstreams_for(&self, src: IpAddr) -> &Upstreams {
        self.requesters
            .get(&src.to_canonical())
            .map_or(&self.default_upstreams, |r| &r.upstreams)
    }

    /// Resolves a question from `src`. Pure: the same index and inputs give the same answer.
    pub(crate) fn resolve(&self, src: IpAddr, name: &QName, qtype: u16) -> Resolution<'_> {
        let req = self.requesters.get(&src.to_canonical());
        let upstreams = req.map_or(&self.default_upstreams, |r| &r.upstreams);
        let Some(text) = name.as_str() else {
            return Resolution::Forward(upstreams);
        };

        if let Some((ip, octets)) = parse_reverse(name) {
            return self.resolve_reverse(req, ip, octets, name, qtype, upstreams);
        }

        let labels = name.label_count();
        let base = if text == &*self.domain {
            Some("")
        } else {
            text.strip_suffix(&*self.domain)
                .and_then(|b| b.strip_suffix('.'))
        };
        match base {
            None => {
                // Outside berth's domain: bare names and NAME.NETWORK.
                if let Some(r) = req {
                    if let Some(v) = self.visible(text, r) {
                        return addresses_or_nodata(v, qtype, None);
                    }
                }
                // A berth name this requester may not see, a bare name, or NAME.NETWORK of a
                // berth network: answered here, never sent to the host's resolvers.
                let last = text.rsplit('.').next().unwrap_or(text);
                if labels == 1 || self.names.contains_key(text) || self.net_names.contains_key(last)
                {
                    return Resolution::NxDomain { zone: labels };
                }
                Resolution::Forward(upstreams)
            }
            Some(base) => {
                let zone = labels - self.domain_labels;
                if base.is_empty() {
                    return if qtype == rtype::SOA {
                        Resolution::Soa { zone }
                    } else {
                        Resolution::NoData { zone: Some(zone) }
                    };
                }
                if let Some(r) = req {
                    if let Some(v) = self.visible(base, r) {
                        return addresses_or_nodata(v, qtype, Some(zone));
                    }
                    // NETWORK.DOMAIN exists as the parent of NAME.NETWORK.DOMAIN.
                    if let Some(net) = self.net_names.get(base) {
                        if r.nets.binary_search(net).is_ok() {
                            return Resolution::NoData { zone: Some(zone) };
                        }
                    }
                }
                Resolution::NxDomain { zone }
            }
        }
    }

    fn visible<'a>(&'a self, key: &str, r: &'a Requester) -> Option<Visible<'a>> {
        let entries = self.names.get(key)?;
        let v = Visible {
            entries,
            nets: &r.nets,
        };
        v.any().then_some(v)
    }

    fn resolve_reverse<'a>(
        &'a self,
        req: Option<&'a Requester>,
        ip: IpAddr,
        octet_labels: usize,
        name: &QName,
        qtype: u16,
        upstreams: &'a Upstreams,
    ) -> Resolution<'a> {
        let Some(r) = req else {
            return Resolution::Forward(upstreams);
        };
        // The zone of the longest shared subnet holding the address: its prefix rounded
        // down to whole labels (octets or nibbles).
        let mut zone_prefix = None;
        for &n in r.nets.iter() {
            for s in &self.nets[n as usize].subnets {
                if s.contains(&ip) {
                    let bits = if ip.is_ipv4() { 8 } else { 4 };
                    let whole = usize::from(s.prefix_len()) / bits;
                    zone_prefix = Some(zone_prefix.map_or(whole, |z: usize| z.max(whole)));
                }
            }
        }
        // The zone apex keeps the last `whole` address labels plus in-addr.arpa / ip6.arpa.
        let zone = zone_prefix.map(|whole| octet_labels - whole);
        let hit = self
            .ptrs
            .get(&ip)
            .and_then(|list| list.iter().find(|e| r.nets.binary_search(&e.net).is_ok()));
        match (hit, zone) {
            (Some(e), _) if qtype == rtype::PTR || qtype == rtype::ANY => {
                Resolution::Ptr(&e.target)
            }
            (Some(_), zone) => Resolution::NoData { zone },
            (None, Some(zone)) => {
                debug_assert!(zone < name.label_count());
                Resolution::NxDomain { zone }
            }
            (None, None) => Resolution::Forward(upstreams),
        }
    }
}

fn addresses_or_nodata(v: Visible<'_>, qtype: u16, zone: Option<usize>) -> Resolution<'_> {
    let has = match qtype {
        rtype::A => v.v4().next().is_some(),
        rtype::AAAA => v.v6().next().is_some(),
        rtype::ANY => v.v4().next().is_some() || v.v6().next().is_some(),
        _ => false,
    };
    if has {
        Resolution::Addresses(v)
    } else {
        Resolution::NoData { zone }
    }
}

/// Reads a full reverse name (`4.3.2.1.in-addr.arpa`, 32 nibbles + `ip6.arpa`): the address
/// and the number of address labels.
fn parse_reverse(name: &QName) -> Option<(IpAddr, usize)> {
    let n = name.label_count();
    let mut labels = name.labels();
    if n == 6 && name.as_str()?.ends_with(".in-addr.arpa") {
        let mut o = [0u8; 4];
        for i in (0..4).rev() {
            let l = labels.next()?;
            if l.is_empty() || l.len() > 3 || (l.len() > 1 && l[0] == b'0') {
                return None;
            }
            o[i] = std::str::from_utf8(l).ok()?.parse().ok()?;
        }
        return Some((IpAddr::V4(Ipv4Addr::from(o)), 4));
    }
    if n == 34 && name.as_str()?.ends_with(".ip6.arpa") {
        let mut v: u128 = 0;
        for i in 0..32 {
            let l = labels.next()?;
            let [c] = l else { return None };
            let d = u128::from((*c as char).to_digit(16)?);
            v |= d << (4 * i);
        }
        return Some((IpAddr::V6(Ipv6Addr::from(v)), 32));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{encode_name, parse_query, CLASS_IN};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn snapshot() -> Snapshot {
        Snapshot {
            domain: "berth.internal".into(),
            upstreams: vec!["192.0.2.53:53".parse().unwrap()],
            networks: vec![
                NetworkRecord {
                    name: "frontend".into(),
                    subnets: vec!["10.1.0.0/24".parse().unwrap(), "fd01::/64".parse().unwrap()],
                },
                NetworkRecord {
                    name: "backend".into(),
                    subnets: vec!["10.2.0.0/16".parse().unwrap()],
                },
                NetworkRecord {
                    name: "other".into(),
                    subnets: vec!["10.3.0.0/24".parse().unwrap()],
                },
            ],
            containers: vec![
                Container {
                    id: "aaaaaaaaaaaa1111".into(),
                    name: "web".into(),
                    dns: vec![],
                    endpoints: vec![
                        Endpoint {
                            network: "frontend".into(),
                            addresses: vec![ip("10.1.0.2"), ip("fd01::2")],
                            aliases: vec!["www".into()],
                        },
                        Endpoint {
                            network: "backend".into(),
                            addresses: vec![ip("10.2.0.2")],
                            aliases: vec![],
                        },
                    ],
                },
                Container {
                    id: "bbbbbbbbbbbb2222".into(),
                    name: "client".into(),
                    dns: vec!["198.51.100.1:53".parse().unwrap()],
                    endpoints: vec![Endpoint {
                        network: "frontend".into(),
                        addresses: vec![ip("10.1.0.3")],
                        aliases: vec![],
                    }],
                },
                Container {
                    id: "cccccccccccc3333".into(),
                    name: "db".into(),
                    dns: vec![],
                    endpoints: vec![Endpoint {
                        network: "backend".into(),
                        addresses: vec![ip("10.2.0.3")],
                        aliases: vec!["Store".into()],
                    }],
                },
                Container {
                    id: "dddddddddddd4444".into(),
                    name: "loner".into(),
                    dns: vec![],
                    endpoints: vec![Endpoint {
                        network: "other".into(),
                        addresses: vec![ip("10.3.0.2")],
                        aliases: vec![],
                    }],
                },
            ],
        }
    }

    #[test]
    fn containers_added_one_at_a_time_answer_as_a_full_build_does() {
        let mut full = snapshot();
        // A second owner of the alias `www` (round robin), and one more `--dns` user.
        full.containers.push(Container {
            id: "eeeeeeeeeeee5555".into(),
            name: "web2".into(),
            dns: vec!["198.51.100.9:53".parse().unwrap()],
            endpoints: vec![Endpoint {
                network: "frontend".into(),
                addresses: vec![ip("10.1.0.9"), ip("fd01::9")],
                aliases: vec!["www".into()],
            }],
        });
        let built = Index::build(&full, 7).unwrap();
        for split in 0..full.containers.len() {
            let mut base = full.clone();
            let rest = base.containers.split_off(split);
            let mut grown = Index::build(&base, 7).unwrap();
            for c in &rest {
                grown.add_container(c).unwrap();
            }
            for src in [
                "10.1.0.2", "10.1.0.3", "10.2.0.3", "10.1.0.9", "10.3.0.2", "10.9.9.9",
            ] {
                for name in [
                    "web",
                    "www",
                    "www.frontend",
                    "web2",
                    "db",
                    "store",
                    "loner",
                    "client",
                    "eeeeeeeeeeee",
                    "www.frontend.berth.internal",
                    "example.org",
                    "9.0.1.10.in-addr.arpa",
                    "2.0.1.10.in-addr.arpa",
                ] {
                    for qtype in [rtype::A, rtype::AAAA, rtype::PTR] {
                        assert_eq!(
                            resolve(&grown, src, name, qtype),
                            resolve(&built, src, name, qtype),
                            "{name} type {qtype} from {src}, {split} built and the rest added"
                        );
                    }
                }
            }
        }
        // A container on a network the index does not know: refused, nothing added.
        let mut grown = Index::build(&snapshot(), 7).unwrap();
        let stranger = Container {
            id: "ffffffffffff6666".into(),
            name: "stranger".into(),
            dns: vec![],
            endpoints: vec![Endpoint {
                network: "nowhere".into(),
                addresses: vec![ip("10.1.0.77")],
                aliases: vec![],
            }],
        };
        assert!(matches!(
            grown.add_container(&stranger),
            Err(SnapshotError::UnknownNetwork { .. })
        ));
        assert_eq!(
            resolve(&grown, "10.1.0.3", "stranger", rtype::A),
            "nxdomain 1"
        );
        assert_eq!(grown.containers, 4);
    }

    /// Resolves `name` for `src` through a real parsed question.
    fn resolve(idx: &Index, src: &str, name: &str, qtype: u16) -> String {
        let mut b = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        encode_name(name, &mut b).unwrap();
        b.extend_from_slice(&qtype.to_be_bytes());
        b.extend_from_slice(&CLASS_IN.to_be_bytes());
        let q = parse_query(&b).unwrap();
        match idx.resolve(ip(src), &q.name, qtype) {
            Resolution::Addresses(v) => {
                let mut out: Vec<String> = Vec::new();
                if qtype != rtype::AAAA {
                    out.extend(v.v4().map(|a| a.to_string()));
                }
                if qtype != rtype::A {
                    out.extend(v.v6().map(|a| a.to_string()));
                }
                out.join(",")
            }
            Resolution::Ptr(t) => {
                let mut s = String::new();
                let mut i = 0;
                while t[i] != 0 {
                    let l = usize::from(t[i]);
                    s.push_str(std::str::from_utf8(&t[i + 1..i + 1 + l]).unwrap());
                    s.push('.');
                    i += 1 + l;
                }
                format!("ptr {s}")
            }
            Resolution::NoData { zone } => format!("nodata {zone:?}"),
            Resolution::NxDomain { zone } => format!("nxdomain {zone}"),
            Resolution::Soa { zone } => format!("soa {zone}"),
            Resolution::Forward(u) => format!("forward {}", u[0]),
        }
    }

    #[test]
    fn names_aliases_and_short_ids_on_shared_networks() {
        let idx = Index::build(&snapshot(), 1).unwrap();
        // client shares only frontend with web.
        assert_eq!(resolve(&idx, "10.1.0.3", "web", rtype::A), "10.1.0.2");
        assert_eq!(resolve(&idx, "10.1.0.3", "WEB", rtype::A), "10.1.0.2");
        assert_eq!(resolve(&idx, "10.1.0.3", "www", rtype::A), "10.1.0.2");
        assert_eq!(
            resolve(&idx, "10.1.0.3", "aaaaaaaaaaaa", rtype::A),
            "10.1.0.2"
        );
        assert_eq!(resolve(&idx, "10.1.0.3", "web", rtype::AAAA), "fd01::2");
        assert_eq!(
            resolve(&idx, "10.1.0.3", "web", rtype::ANY),
            "10.1.0.2,fd01::2"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "web.frontend", rtype::A),
            "10.1.0.2"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "web.berth.internal", rtype::A),
            "10.1.0.2"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "Web.Frontend.Berth.Internal", rtype::A),
            "10.1.0.2"
        );
        // The full id is not a name (and bare names never go upstream).
        assert_eq!(
            resolve(&idx, "10.1.0.3", "aaaaaaaaaaaa1111", rtype::A),
            "nxdomain 1"
        );
        // Dotted names that are not berth's are forwarded.
        assert_eq!(
            resolve(&idx, "10.1.0.3", "example.org", rtype::A),
            "forward 198.51.100.1:53"
        );
    }

    #[test]
    fn policy_hides_containers_on_other_networks() {
        let idx = Index::build(&snapshot(), 1).unwrap();
        // client is not on backend: db, its alias, web.backend are invisible.
        assert_eq!(resolve(&idx, "10.1.0.3", "db", rtype::A), "nxdomain 1");
        assert_eq!(
            resolve(&idx, "10.1.0.3", "db.berth.internal", rtype::A),
            "nxdomain 1"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "web.backend.berth.internal", rtype::A),
            "nxdomain 2"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "web.backend", rtype::A),
            "nxdomain 2"
        );
        // db (backend) sees web by its backend address only, and its own alias there.
        assert_eq!(resolve(&idx, "10.2.0.3", "web", rtype::A), "10.2.0.2");
        assert_eq!(resolve(&idx, "10.2.0.3", "web", rtype::AAAA), "nodata None");
        // www is an alias on frontend only: a berth name db may not see.
        assert_eq!(resolve(&idx, "10.2.0.3", "www", rtype::A), "nxdomain 1");
        // db's --dns server takes what is not berth's.
        assert_eq!(
            resolve(&idx, "10.2.0.3", "example.org", rtype::A),
            "forward 192.0.2.53:53"
        );
        assert_eq!(
            resolve(&idx, "10.2.0.3", "store.backend", rtype::A),
            "10.2.0.3"
        );
        // web is on both: it sees both of its own addresses.
        assert_eq!(
            resolve(&idx, "10.2.0.2", "web", rtype::A),
            "10.1.0.2,10.2.0.2"
        );
        assert_eq!(resolve(&idx, "fd01::2", "db", rtype::A), "10.2.0.3");
        // loner shares nothing.
        assert_eq!(
            resolve(&idx, "10.3.0.2", "web.berth.internal", rtype::A),
            "nxdomain 1"
        );
        // unknown sources get no names at all (and bare names stay here).
        assert_eq!(resolve(&idx, "10.9.9.9", "web", rtype::A), "nxdomain 1");
        assert_eq!(
            resolve(&idx, "10.9.9.9", "web.berth.internal", rtype::A),
            "nxdomain 1"
        );
    }

    #[test]
    fn nodata_nxdomain_and_apex() {
        let idx = Index::build(&snapshot(), 1).unwrap();
        assert_eq!(
            resolve(&idx, "10.1.0.3", "web.berth.internal", rtype::MX),
            "nodata Some(1)"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "nope.berth.internal", rtype::A),
            "nxdomain 1"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "a.b.berth.internal", rtype::A),
            "nxdomain 2"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "berth.internal", rtype::A),
            "nodata Some(0)"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "berth.internal", rtype::SOA),
            "soa 0"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "frontend.berth.internal", rtype::A),
            "nodata Some(1)"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "backend.berth.internal", rtype::A),
            "nxdomain 1"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "example.com", rtype::A),
            "forward 198.51.100.1:53"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "xberth.internal", rtype::A),
            "forward 198.51.100.1:53"
        );
    }

    fn reverse6(a: &str) -> String {
        let v: u128 = a.parse::<Ipv6Addr>().unwrap().into();
        let mut s: String = (0..32)
            .map(|i| format!("{:x}.", (v >> (4 * i)) & 0xF))
            .collect();
        s.push_str("ip6.arpa");
        s
    }

    #[test]
    fn reverse_lookups() {
        let idx = Index::build(&snapshot(), 1).unwrap();
        assert_eq!(
            resolve(&idx, "10.1.0.3", "2.0.1.10.in-addr.arpa", rtype::PTR),
            "ptr web.frontend.berth.internal."
        );
        let v6 = &reverse6("fd01::2");
        assert_eq!(
            resolve(&idx, "10.1.0.3", v6, rtype::PTR),
            "ptr web.frontend.berth.internal."
        );
        // Not shared: backend address of web; unallocated in a shared /24 → NXDOMAIN with
        // the zone 0.1.10.in-addr.arpa (label 1).
        assert_eq!(
            resolve(&idx, "10.1.0.3", "2.0.2.10.in-addr.arpa", rtype::PTR),
            "forward 198.51.100.1:53"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "99.0.1.10.in-addr.arpa", rtype::PTR),
            "nxdomain 1"
        );
        let v6_free = &reverse6("fd01::9");
        assert_eq!(
            resolve(&idx, "10.1.0.3", v6_free, rtype::PTR),
            "nxdomain 16"
        );
        // A /16: the zone is 2.10.in-addr.arpa (label 2).
        assert_eq!(
            resolve(&idx, "10.2.0.3", "9.9.2.10.in-addr.arpa", rtype::PTR),
            "nxdomain 2"
        );
        assert_eq!(
            resolve(&idx, "10.2.0.3", "2.0.2.10.in-addr.arpa", rtype::PTR),
            "ptr web.backend.berth.internal."
        );
        assert_eq!(
            resolve(&idx, "10.2.0.3", "2.0.2.10.in-addr.arpa", rtype::A),
            "nodata Some(2)"
        );
        // Unknown requester, partial and malformed reverse names: forwarded.
        assert_eq!(
            resolve(&idx, "10.9.9.9", "2.0.1.10.in-addr.arpa", rtype::PTR),
            "forward 192.0.2.53:53"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "0.1.10.in-addr.arpa", rtype::PTR),
            "forward 198.51.100.1:53"
        );
        assert_eq!(
            resolve(&idx, "10.1.0.3", "02.0.1.10.in-addr.arpa", rtype::PTR),
            "forward 198.51.100.1:53"
        );
    }

    #[test]
    fn shared_alias_answers_every_container() {
        let mut s = snapshot();
        s.containers[1].endpoints[0].aliases.push("www".into());
        let idx = Index::build(&s, 1).unwrap();
        assert_eq!(
            resolve(&idx, "10.1.0.3", "www", rtype::A),
            "10.1.0.2,10.1.0.3"
        );
    }

    #[test]
    fn build_rejects_bad_snapshots() {
        let mut s = snapshot();
        s.containers[0].endpoints[0].network = "nowhere".into();
        assert!(matches!(
            Index::build(&s, 1),
            Err(SnapshotError::UnknownNetwork { .. })
        ));
        let mut s = snapshot();
        s.domain = "".into();
        assert!(matches!(
            Index::build(&s, 1),
            Err(SnapshotError::InvalidDomain(_))
        ));
        let mut s = snapshot();
        s.networks.push(s.networks[0].clone());
        assert!(matches!(
            Index::build(&s, 1),
            Err(SnapshotError::DuplicateNetwork(_))
        ));
    }

    #[test]
    fn snapshot_json_defaults() {
        let s: Snapshot = serde_json::from_str(
            r#"{"networks":[{"name":"n"}],"containers":[{"id":"x","endpoints":[{"network":"n","addresses":["10.0.0.2"]}]}]}"#,
        )
        .unwrap();
        assert_eq!(s.domain, DEFAULT_DOMAIN);
        assert!(s.upstreams.is_empty());
        let idx = Index::build(&s, 1).unwrap();
        assert_eq!(resolve(&idx, "10.0.0.2", "x", rtype::A), "10.0.0.2");
    }
}
