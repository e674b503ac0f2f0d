//! Overlay peers: this host's registration in the cluster store, the endpoint stream, and
//! the FDB, neighbour and flood entries of every local VXLAN device.
//!
//! A dedicated thread keeps a [`Session`] (the host's lease, kept alive), puts this host's
//! endpoints back under it, lists every endpoint record and watches from that revision, so
//! no change is missed between the two. After every change, and on every `reload` from the
//! doors, [`program`] makes each local VXLAN device hold exactly the entries the records
//! imply — reading the kernel's entries and diffing, so a restarted agent (or one that
//! missed changes while the store was down) converges. When the store goes away the
//! kernel keeps its entries and traffic continues; the thread reconnects every second and
//! reconciles. A host whose lease expires loses its records, which deletes its peers here.

use crate::State;
use berth_cluster::{Config, EndpointRecord, Event, Session};
use berth_engine::{overlay, Engine, Paths};
use berth_kernel::netlink::{FdbEntry, Netlink, StaticNeighbour, FLOOD_MAC};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Every endpoint record in the cluster, by endpoint id, and the lock that serialises
/// kernel programming.
pub(crate) struct Peers {
    pub(crate) host: String,
    records: Mutex<BTreeMap<String, EndpointRecord>>,
    programming: Mutex<()>,
}

impl Peers {
    pub(crate) fn new(host: &str) -> Peers {
        Peers {
            host: host.to_string(),
            records: Mutex::new(BTreeMap::new()),
            programming: Mutex::new(()),
        }
    }

    /// The endpoints of other hosts.
    pub(crate) fn remote(&self) -> Vec<EndpointRecord> {
        let records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        records
            .values()
            .filter(|r| r.host != self.host)
            .cloned()
            .collect()
    }

    fn replace(&self, all: Vec<EndpointRecord>) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        *records = all.into_iter().map(|r| (r.id.clone(), r)).collect();
    }

    fn apply(&self, events: Vec<Event>) {
        let mut records = self.records.lock().unwrap_or_else(|e| e.into_inner());
        for ev in events {
            match ev {
                Event::Put(r) => {
                    records.insert(r.id.clone(), r);
                }
                Event::Delete { endpoint_id, .. } => {
                    records.remove(&endpoint_id);
                }
            }
        }
    }
}

fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let parts: Vec<u8> = s
        .split(':')
        .map(|p| u8::from_str_radix(p, 16))
        .collect::<Result<_, _>>()
        .ok()?;
    parts.try_into().ok()
}

/// The entries a VXLAN device of network `network_id` must hold, from the remote records:
/// per endpoint an FDB entry (MAC -> VTEP) and a neighbour entry (IP -> MAC), per remote
/// VTEP one flood entry.
pub(crate) fn desired(
    network_id: &str,
    remote: &[EndpointRecord],
) -> (BTreeSet<FdbEntry>, BTreeSet<StaticNeighbour>) {
    let mut fdb = BTreeSet::new();
    let mut neigh = BTreeSet::new();
    for r in remote.iter().filter(|r| r.network_id == network_id) {
        let Some(mac) = parse_mac(&r.mac) else {
            continue;
        };
        fdb.insert(FdbEntry { mac, vtep: r.vtep });
        fdb.insert(FdbEntry {
            mac: FLOOD_MAC,
            vtep: r.vtep,
        });
        neigh.insert(StaticNeighbour { ip: r.ip, mac });
    }
    (fdb, neigh)
}

/// Makes every local VXLAN device hold exactly the entries the records imply. Returns the
/// failures.
pub(crate) fn program(engine: &mut Engine, peers: &Peers) -> Vec<String> {
    let _serial = peers.programming.lock().unwrap_or_else(|e| e.into_inner());
    let mut errors = Vec::new();
    let nets = match berth_engine::network::list(engine) {
        Ok(n) => n,
        Err(e) => return vec![e.to_string()],
    };
    let mut nl = match Netlink::open() {
        Ok(nl) => nl,
        Err(e) => return vec![format!("open netlink socket: {e}")],
    };
    let remote = peers.remote();
    for net in nets.iter().filter(|n| n.driver == "overlay") {
        let name = overlay::vxlan_name(&net.id);
        let index = match nl.link_by_name(&name) {
            Ok(Some(l)) => l.index,
            Ok(None) => continue,
            Err(e) => {
                errors.push(format!("look up {name}: {e}"));
                continue;
            }
        };
        let (fdb, neigh) = desired(&net.id, &remote);
        if let Err(e) = sync_device(&mut nl, index, &fdb, &neigh) {
            errors.push(format!("program {name}: {e}"));
        }
    }
    errors
}

fn sync_device(
    nl: &mut Netlink,
    index: u32,
    fdb: &BTreeSet<FdbEntry>,
    neigh: &BTreeSet<StaticNeighbour>,
) -> berth_kernel::Result<()> {
    let have_fdb: BTreeSet<FdbEntry> = nl.fdb_entries(index)?.into_iter().collect();
    let have_neigh: BTreeSet<StaticNeighbour> = nl.static_neighbours(index)?.into_iter().collect();
    for n in neigh.difference(&have_neigh) {
        nl.add_neighbour(index, n)?;
    }
    for e in fdb.difference(&have_fdb) {
        nl.add_fdb(index, e)?;
    }
    for e in have_fdb.difference(fdb) {
        nl.delete_fdb(index, e)?;
    }
    for n in have_neigh.difference(neigh) {
        nl.delete_neighbour(index, n)?;
    }
    Ok(())
}

/// Starts the overlay thread.
pub(crate) fn spawn(
    paths: Paths,
    config: Config,
    peers: Arc<Peers>,
    state: Arc<Mutex<State>>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("overlay".into())
        .spawn(move || {
            let mut engine = None;
            let mut last_error = String::new();
            loop {
                let ended = match &mut engine {
                    Some(engine) => session(engine, &config, &peers, &state),
                    None => match Engine::open(paths.clone()) {
                        Ok(e) => {
                            engine = Some(e);
                            continue;
                        }
                        Err(e) => Err(format!("open the store: {e}").into()),
                    },
                };
                connected(&state, false);
                if let Err(e) = ended {
                    let msg = e.to_string();
                    if msg != last_error {
                        tracing::warn!("overlay: {msg}; retrying every second");
                        last_error = msg;
                    }
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })?;
    Ok(())
}

/// One connected period: register, reconcile, then follow changes until the store fails.
fn session(
    engine: &mut Engine,
    config: &Config,
    peers: &Peers,
    state: &Mutex<State>,
) -> Result<(), Box<dyn std::error::Error>> {
    let vtep = config.vtep()?;
    let mut s = Session::open(config, vtep)?;
    // This host's own records: put back what exists here, withdraw what no longer does.
    let local = overlay::local_records(engine)?;
    for problem in s.republish(&local)? {
        tracing::error!("overlay: {problem}");
    }
    let (all, rev) = s.list()?;
    let ours: BTreeSet<&str> = local.iter().map(|(r, _)| r.id.as_str()).collect();
    for stale in all
        .iter()
        .filter(|r| r.host == config.host && !ours.contains(r.id.as_str()))
    {
        let claim = berth_cluster::Claim {
            host: config.host.clone(),
            container: stale.container_id.clone(),
        };
        s.withdraw(stale, &claim)?;
    }
    s.watch(rev + 1)?;
    peers.replace(
        all.into_iter()
            .filter(|r| !stale_own(r, config, &ours))
            .collect(),
    );
    refresh(engine, peers, state);
    connected(state, true);
    tracing::info!(lease = s.lease(), "overlay: registered, peers reconciled");
    loop {
        let events = s.next(Duration::from_secs(1))?;
        if !events.is_empty() {
            peers.apply(events);
            refresh(engine, peers, state);
        }
    }
}

fn stale_own(r: &EndpointRecord, config: &Config, ours: &BTreeSet<&str>) -> bool {
    r.host == config.host && !ours.contains(r.id.as_str())
}

fn connected(state: &Mutex<State>, up: bool) {
    let st = state.lock().unwrap_or_else(|e| e.into_inner());
    st.metrics.cluster_connected.set(i64::from(up));
}

/// Programs the kernel and hands DNS the new remote names.
fn refresh(engine: &mut Engine, peers: &Peers, state: &Mutex<State>) {
    for e in program(engine, peers) {
        tracing::warn!("overlay: {e}");
    }
    let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = crate::control::reload_dns(&mut st) {
        tracing::warn!("overlay: update DNS: {e}");
    }
}

/// The VTEPs of remote records (for tests of the plan).
#[cfg(test)]
fn vteps(fdb: &BTreeSet<FdbEntry>) -> BTreeSet<std::net::IpAddr> {
    fdb.iter()
        .filter(|e| e.mac == FLOOD_MAC)
        .map(|e| e.vtep)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, net: &str, host: &str, vtep: &str, ip: &str) -> EndpointRecord {
        EndpointRecord {
            id: id.into(),
            network_id: net.into(),
            host: host.into(),
            vtep: vtep.parse().unwrap(),
            container_id: format!("c{id}"),
            container_name: format!("n{id}"),
            aliases: vec![],
            ip: ip.parse().unwrap(),
            mac: "02:42:0a:00:00:02".into(),
        }
    }

    #[test]
    fn desired_entries_per_network() {
        let remote = vec![
            rec("1", "a", "h2", "10.100.0.2", "10.0.0.2"),
            rec("2", "a", "h3", "10.100.0.3", "10.0.0.3"),
            rec("3", "b", "h3", "10.100.0.3", "10.0.1.2"),
        ];
        let (fdb, neigh) = desired("a", &remote);
        assert_eq!(neigh.len(), 2);
        assert_eq!(fdb.len(), 4, "two MACs and two flood entries: {fdb:?}");
        assert_eq!(vteps(&fdb).len(), 2);
        let (fdb, neigh) = desired("c", &remote);
        assert!(fdb.is_empty() && neigh.is_empty());
    }

    #[test]
    fn peers_follow_events_and_skip_this_host() {
        let p = Peers::new("h1");
        p.replace(vec![
            rec("1", "a", "h1", "10.100.0.1", "10.0.0.2"),
            rec("2", "a", "h2", "10.100.0.2", "10.0.0.3"),
        ]);
        assert_eq!(p.remote().len(), 1);
        p.apply(vec![
            Event::Put(rec("3", "a", "h3", "10.100.0.3", "10.0.0.4")),
            Event::Delete {
                network_id: "a".into(),
                endpoint_id: "2".into(),
            },
        ]);
        let ids: Vec<String> = p.remote().into_iter().map(|r| r.id).collect();
        assert_eq!(ids, vec!["3"]);
    }
}
