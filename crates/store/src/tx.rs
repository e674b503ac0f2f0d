//! Typed reads and writes inside one transaction.

use crate::model::{
    Container, ContainerState, Endpoint, EndpointAddress, Network, NetworkMode, SubnetRow,
};
use crate::{Error, Result};
use ipnet::IpNet;
use rusqlite::{params, CachedStatement, Connection, OptionalExtension, Params, Row};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::str::FromStr;

/// A transaction handed to [`crate::Store::write`] / [`crate::Store::read`] closures.
pub struct Tx<'a> {
    pub(crate) tx: Cached<'a>,
}

/// The connection, inside a transaction [`crate::Store`] opened, with every statement
/// taken from its statement cache: a statement is compiled once per process however many
/// times it runs. Each berth call is a process of its own, so compiling is a large share of
/// its SQLite work (a door setup ran ~40 statements, a third of them repeats).
#[derive(Clone, Copy)]
pub(crate) struct Cached<'a>(pub(crate) &'a Connection);

impl<'a> Cached<'a> {
    pub(crate) fn prepare(&self, sql: &str) -> rusqlite::Result<CachedStatement<'a>> {
        self.0.prepare_cached(sql)
    }

    pub(crate) fn execute<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.0.prepare_cached(sql)?.execute(params)
    }

    pub(crate) fn query_row<T, P: Params>(
        &self,
        sql: &str,
        params: P,
        f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<T> {
        self.0.prepare_cached(sql)?.query_row(params, f)
    }

    pub(crate) fn last_insert_rowid(&self) -> i64 {
        self.0.last_insert_rowid()
    }
}

pub(crate) fn sql(op: &str) -> impl FnOnce(rusqlite::Error) -> Error + '_ {
    move |source| Error::Sql {
        op: op.to_string(),
        source,
    }
}

fn decode<T: FromStr>(what: &str, s: &str) -> Result<T> {
    s.parse()
        .map_err(|_| Error::Corrupt(format!("bad {what} {s:?}")))
}

fn json<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T> {
    serde_json::from_str(s).map_err(|e| Error::Corrupt(format!("bad {what} {s:?}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).expect("plain maps and lists always serialise")
}

const NETWORK_COLS: &str =
    "id, name, driver, bridge, internal, icc, mtu, ipv6, builtin, options, labels, created";
const CONTAINER_COLS: &str = "id, name, hostname, command, mode, netns, pid, pid_start, state, \
     exit_code, auto_remove, dns, created, started, finished, owner";
const ENDPOINT_COLS: &str = "id, container_id, network_id, ifname, host_ifname, mac, aliases";

/// Raw network row, before its subnets are attached.
type NetworkRaw = (Network, String, String);

fn network_row(r: &Row<'_>) -> rusqlite::Result<NetworkRaw> {
    Ok((
        Network {
            id: r.get(0)?,
            name: r.get(1)?,
            driver: r.get(2)?,
            bridge: r.get(3)?,
            internal: r.get(4)?,
            icc: r.get(5)?,
            mtu: r.get(6)?,
            ipv6: r.get(7)?,
            builtin: r.get(8)?,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            subnets: Vec::new(),
            created: r.get(11)?,
        },
        r.get(9)?,
        r.get(10)?,
    ))
}

type ContainerRaw = (Container, String, String, String, String);

fn container_row(r: &Row<'_>) -> rusqlite::Result<ContainerRaw> {
    Ok((
        Container {
            id: r.get(0)?,
            name: r.get(1)?,
            hostname: r.get(2)?,
            command: Vec::new(),
            mode: NetworkMode::None,
            netns: r.get(5)?,
            pid: r.get(6)?,
            pid_start: r.get::<_, Option<i64>>(7)?.map(|v| v as u64),
            state: ContainerState::Created,
            exit_code: r.get(9)?,
            auto_remove: r.get(10)?,
            dns: Vec::new(),
            created: r.get(12)?,
            started: r.get(13)?,
            finished: r.get(14)?,
            owner: r.get(15)?,
        },
        r.get(3)?,
        r.get(4)?,
        r.get(8)?,
        r.get(11)?,
    ))
}

fn finish_container(raw: ContainerRaw) -> Result<Container> {
    let (mut c, command, mode, state, dns) = raw;
    c.command = json("command", &command)?;
    c.mode =
        NetworkMode::parse(&mode).ok_or_else(|| Error::Corrupt(format!("bad mode {mode:?}")))?;
    c.state = ContainerState::parse(&state)
        .ok_or_else(|| Error::Corrupt(format!("bad state {state:?}")))?;
    c.dns = json("dns servers", &dns)?;
    Ok(c)
}

impl<'a> Tx<'a> {
    pub(crate) fn new(conn: &'a Connection) -> Tx<'a> {
        Tx { tx: Cached(conn) }
    }

    // ---- networks ----

    /// All networks, by name.
    pub fn networks(&self) -> Result<Vec<Network>> {
        let q = format!("SELECT {NETWORK_COLS} FROM networks ORDER BY name");
        let mut stmt = self.tx.prepare(&q).map_err(sql("list networks"))?;
        let raws = stmt
            .query_map([], network_row)
            .map_err(sql("list networks"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("list networks"))?;
        raws.into_iter().map(|r| self.finish_network(r)).collect()
    }

    fn finish_network(&self, raw: NetworkRaw) -> Result<Network> {
        let (mut n, options, labels) = raw;
        n.options = json("network options", &options)?;
        n.labels = json("network labels", &labels)?;
        let mut stmt = self
            .tx
            .prepare(
                "SELECT subnet, gateway, ip_range FROM subnets WHERE network_id = ?1 ORDER BY position",
            )
            .map_err(sql("read subnets"))?;
        let rows = stmt
            .query_map([&n.id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(sql("read subnets"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("read subnets"))?;
        for (subnet, gateway, range) in rows {
            n.subnets.push(SubnetRow {
                subnet: decode("subnet", &subnet)?,
                gateway: decode("gateway", &gateway)?,
                range: range.map(|r| decode("ip range", &r)).transpose()?,
            });
        }
        Ok(n)
    }

    /// Finds a network by exact id, exact name, or unique id prefix.
    pub fn network(&self, reference: &str) -> Result<Option<Network>> {
        let q = format!(
            "SELECT {NETWORK_COLS} FROM networks WHERE id = ?1 OR name = ?1 \
             ORDER BY (id = ?1) DESC LIMIT 1"
        );
        let found = self
            .tx
            .query_row(&q, [reference], network_row)
            .optional()
            .map_err(sql("find network"))?;
        if let Some(raw) = found {
            return self.finish_network(raw).map(Some);
        }
        let q = format!("SELECT {NETWORK_COLS} FROM networks WHERE id LIKE ?1 || '%' LIMIT 2");
        let mut stmt = self.tx.prepare(&q).map_err(sql("find network"))?;
        let mut raws = stmt
            .query_map([reference], network_row)
            .map_err(sql("find network"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("find network"))?;
        if raws.len() == 1 && !reference.is_empty() {
            return self.finish_network(raws.remove(0)).map(Some);
        }
        Ok(None)
    }

    /// Inserts a network with its subnets.
    pub fn insert_network(&self, n: &Network) -> Result<()> {
        let q = format!(
            "INSERT INTO networks ({NETWORK_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"
        );
        self.tx
            .execute(
                &q,
                params![
                    n.id,
                    n.name,
                    n.driver,
                    n.bridge,
                    n.internal,
                    n.icc,
                    n.mtu,
                    n.ipv6,
                    n.builtin,
                    to_json(&n.options),
                    to_json(&n.labels),
                    n.created
                ],
            )
            .map_err(sql("insert network"))?;
        for (i, s) in n.subnets.iter().enumerate() {
            self.tx
                .execute(
                    "INSERT INTO subnets (network_id, position, subnet, gateway, ip_range) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        n.id,
                        i as i64,
                        s.subnet.to_string(),
                        s.gateway.to_string(),
                        s.range.map(|r| r.to_string())
                    ],
                )
                .map_err(sql("insert subnet"))?;
        }
        Ok(())
    }

    /// Deletes a network row (its subnets go with it). The caller checks for endpoints.
    pub fn delete_network(&self, id: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM networks WHERE id = ?1", [id])
            .map_err(sql("delete network"))?;
        Ok(())
    }

    // ---- containers ----

    /// All containers, oldest first.
    pub fn containers(&self) -> Result<Vec<Container>> {
        let q = format!("SELECT {CONTAINER_COLS} FROM containers ORDER BY created, id");
        let mut stmt = self.tx.prepare(&q).map_err(sql("list containers"))?;
        let raws = stmt
            .query_map([], container_row)
            .map_err(sql("list containers"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("list containers"))?;
        raws.into_iter().map(finish_container).collect()
    }

    /// Finds a container by exact id, exact name, or unique id prefix.
    pub fn container(&self, reference: &str) -> Result<Option<Container>> {
        let q = format!(
            "SELECT {CONTAINER_COLS} FROM containers WHERE id = ?1 OR name = ?1 \
             ORDER BY (id = ?1) DESC LIMIT 1"
        );
        let found = self
            .tx
            .query_row(&q, [reference], container_row)
            .optional()
            .map_err(sql("find container"))?;
        if let Some(raw) = found {
            return finish_container(raw).map(Some);
        }
        // Ids are lowercase hex, so every id starting with `prefix` lies in
        // [prefix, prefix + "g"): a range of the primary key, not a pass over every container
        // (which `LIKE` was). A reference that is not hex is no id prefix.
        let prefix = reference.to_ascii_lowercase();
        if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let q =
            format!("SELECT {CONTAINER_COLS} FROM containers WHERE id >= ?1 AND id < ?2 LIMIT 2");
        let mut stmt = self.tx.prepare(&q).map_err(sql("find container"))?;
        let mut raws = stmt
            .query_map([&prefix, &format!("{prefix}g")], container_row)
            .map_err(sql("find container"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("find container"))?;
        if raws.len() == 1 && !reference.is_empty() {
            return finish_container(raws.remove(0)).map(Some);
        }
        Ok(None)
    }

    /// The networks of `endpoints`, by id (a network that is gone is left out).
    pub fn networks_of(&self, endpoints: &[Endpoint]) -> Result<BTreeMap<String, Network>> {
        let mut nets = BTreeMap::new();
        for e in endpoints {
            if !nets.contains_key(&e.network_id) {
                if let Some(n) = self.network(&e.network_id)? {
                    nets.insert(n.id.clone(), n);
                }
            }
        }
        Ok(nets)
    }

    /// The container whose id is exactly `id` (one primary-key lookup).
    pub fn container_by_id(&self, id: &str) -> Result<Option<Container>> {
        self.container_where("id", id)
    }

    /// The container whose name is exactly `name`.
    pub fn container_by_name(&self, name: &str) -> Result<Option<Container>> {
        self.container_where("name", name)
    }

    fn container_where(&self, column: &str, value: &str) -> Result<Option<Container>> {
        let q = format!("SELECT {CONTAINER_COLS} FROM containers WHERE {column} = ?1");
        self.tx
            .query_row(&q, [value], container_row)
            .optional()
            .map_err(sql("find container"))?
            .map(finish_container)
            .transpose()
    }

    /// Inserts a container row.
    pub fn insert_container(&self, c: &Container) -> Result<()> {
        let q = format!(
            "INSERT INTO containers ({CONTAINER_COLS}) \
             VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16)"
        );
        self.tx
            .execute(
                &q,
                params![
                    c.id,
                    c.name,
                    c.hostname,
                    to_json(&c.command),
                    c.mode.as_str(),
                    c.netns,
                    c.pid,
                    c.pid_start.map(|v| v as i64),
                    c.state.as_str(),
                    c.exit_code,
                    c.auto_remove,
                    to_json(&c.dns),
                    c.created,
                    c.started,
                    c.finished,
                    c.owner
                ],
            )
            .map_err(sql("insert container"))?;
        Ok(())
    }

    /// Records that the container's process started.
    pub fn set_running(&self, id: &str, pid: i32, pid_start: u64, at: &str) -> Result<()> {
        self.tx
            .execute(
                "UPDATE containers SET state = 'running', pid = ?2, pid_start = ?3, started = ?4, \
                 exit_code = NULL, finished = NULL WHERE id = ?1",
                params![id, pid, pid_start as i64, at],
            )
            .map_err(sql("record container start"))?;
        Ok(())
    }

    /// Records that the container's process ended with `exit_code`.
    pub fn set_exited(&self, id: &str, exit_code: i32, at: &str) -> Result<()> {
        self.tx
            .execute(
                "UPDATE containers SET state = 'exited', exit_code = ?2, finished = ?3 WHERE id = ?1",
                params![id, exit_code, at],
            )
            .map_err(sql("record container exit"))?;
        Ok(())
    }

    /// Replaces the DNS servers a container's names are forwarded to.
    pub fn set_dns(&self, id: &str, dns: &[String]) -> Result<()> {
        self.tx
            .execute(
                "UPDATE containers SET dns = ?2 WHERE id = ?1",
                params![id, to_json(&dns)],
            )
            .map_err(sql("record container DNS servers"))?;
        Ok(())
    }

    /// Deletes a container; its endpoints and their allocations go with it.
    pub fn delete_container(&self, id: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM containers WHERE id = ?1", [id])
            .map_err(sql("delete container"))?;
        Ok(())
    }

    // ---- endpoints and allocations ----

    fn endpoints_where(&self, clause: &str, arg: &str) -> Result<Vec<Endpoint>> {
        let mut out = self.endpoint_rows(clause, arg)?;
        for ep in &mut out {
            ep.addresses = self.addresses_of(&ep.id)?;
        }
        Ok(out)
    }

    /// The endpoints matching `clause`, without their addresses.
    fn endpoint_rows(&self, clause: &str, arg: &str) -> Result<Vec<Endpoint>> {
        let q = format!("SELECT {ENDPOINT_COLS} FROM endpoints WHERE {clause} ORDER BY ifname, id");
        let mut stmt = self.tx.prepare(&q).map_err(sql("list endpoints"))?;
        let raws = stmt
            .query_map([arg], |r| {
                Ok((
                    Endpoint {
                        id: r.get(0)?,
                        container_id: r.get(1)?,
                        network_id: r.get(2)?,
                        ifname: r.get(3)?,
                        host_ifname: r.get(4)?,
                        mac: r.get(5)?,
                        aliases: Vec::new(),
                        addresses: Vec::new(),
                    },
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(sql("list endpoints"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("list endpoints"))?;
        let mut out = Vec::with_capacity(raws.len());
        for (mut ep, aliases) in raws {
            ep.aliases = json("aliases", &aliases)?;
            out.push(ep);
        }
        Ok(out)
    }

    fn addresses_of(&self, endpoint_id: &str) -> Result<Vec<EndpointAddress>> {
        self.addresses_where("endpoint_id = ?1", endpoint_id)
            .map(|all| all.into_iter().map(|(_, a)| a).collect())
    }

    /// `(endpoint id, address)` of the allocations matching `clause`, in allocation order.
    fn addresses_where(&self, clause: &str, arg: &str) -> Result<Vec<(String, EndpointAddress)>> {
        let q = format!(
            "SELECT endpoint_id, address, prefix_len, gateway FROM allocations WHERE {clause} \
             ORDER BY rowid"
        );
        let mut stmt = self.tx.prepare(&q).map_err(sql("read addresses"))?;
        let rows = stmt
            .query_map([arg], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, u8>(2)?,
                    r.get::<_, Option<String>>(3)?,
                ))
            })
            .map_err(sql("read addresses"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("read addresses"))?;
        rows.into_iter()
            .map(|(e, a, p, g)| {
                Ok((
                    e,
                    EndpointAddress {
                        addr: decode("address", &a)?,
                        prefix_len: p,
                        gateway: g.map(|g| decode("gateway", &g)).transpose()?,
                    },
                ))
            })
            .collect()
    }

    /// Every endpoint.
    pub fn all_endpoints(&self) -> Result<Vec<Endpoint>> {
        // Two queries, whatever the number of endpoints (not one more per endpoint).
        let mut eps = self.endpoint_rows("?1 = ?1", "")?;
        let mut by_endpoint: HashMap<String, Vec<EndpointAddress>> = HashMap::new();
        for (e, a) in self.addresses_where("?1 = ?1", "")? {
            by_endpoint.entry(e).or_default().push(a);
        }
        for ep in &mut eps {
            ep.addresses = by_endpoint.remove(&ep.id).unwrap_or_default();
        }
        Ok(eps)
    }

    /// The endpoints of one container.
    pub fn endpoints_of_container(&self, container_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoints_where("container_id = ?1", container_id)
    }

    /// The endpoints on one network.
    pub fn endpoints_of_network(&self, network_id: &str) -> Result<Vec<Endpoint>> {
        self.endpoints_where("network_id = ?1", network_id)
    }

    /// How many of the networks are built in (one count: no network is read).
    pub fn count_builtin_networks(&self) -> Result<usize> {
        self.tx
            .query_row("SELECT count(*) FROM networks WHERE builtin", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n as usize)
            .map_err(sql("count networks"))
    }

    /// How many endpoints a network has (one indexed count, whatever their number).
    pub fn count_endpoints_of_network(&self, network_id: &str) -> Result<usize> {
        self.tx
            .prepare("SELECT count(*) FROM endpoints WHERE network_id = ?1")
            .and_then(|mut s| s.query_row([network_id], |r| r.get::<_, i64>(0)))
            .map(|n| n as usize)
            .map_err(sql("count endpoints"))
    }

    /// Addresses already taken on a network.
    pub fn used_addresses(&self, network_id: &str) -> Result<BTreeSet<IpAddr>> {
        let mut stmt = self
            .tx
            .prepare("SELECT address FROM allocations WHERE network_id = ?1")
            .map_err(sql("read allocations"))?;
        let rows = stmt
            .query_map([network_id], |r| r.get::<_, String>(0))
            .map_err(sql("read allocations"))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql("read allocations"))?;
        rows.iter().map(|a| decode("address", a)).collect()
    }

    /// Whether `addr` is allocated on a network (one primary-key lookup).
    pub fn address_taken(&self, network_id: &str, addr: IpAddr) -> Result<bool> {
        self.tx
            .prepare("SELECT 1 FROM allocations WHERE network_id = ?1 AND address = ?2")
            .and_then(|mut s| s.exists(params![network_id, addr.to_string()]))
            .map_err(sql("read allocations"))
    }

    /// Where the next allocation in `subnet` of a network starts, if one was made.
    pub fn address_cursor(&self, network_id: &str, subnet: &IpNet) -> Result<Option<IpAddr>> {
        let next: Option<String> = self
            .tx
            .prepare("SELECT next FROM address_cursors WHERE network_id = ?1 AND subnet = ?2")
            .and_then(|mut s| {
                s.query_row(params![network_id, subnet.to_string()], |r| r.get(0))
                    .optional()
            })
            .map_err(sql("read address cursor"))?;
        next.map(|a| decode("address", &a)).transpose()
    }

    /// Records where the next allocation in `subnet` of a network starts.
    pub fn set_address_cursor(&self, network_id: &str, subnet: &IpNet, next: IpAddr) -> Result<()> {
        self.tx
            .prepare(
                "INSERT INTO address_cursors (network_id, subnet, next) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (network_id, subnet) DO UPDATE SET next = excluded.next",
            )
            .and_then(|mut s| s.execute(params![network_id, subnet.to_string(), next.to_string()]))
            .map_err(sql("write address cursor"))?;
        Ok(())
    }

    /// Steps the cursor of `subnet` back to `addr` when `addr` was the last address given out
    /// there (the cursor stands at `after`): releasing it then undoes its allocation, so a
    /// failed setup leaves the store as it found it.
    pub fn release_address_cursor(
        &self,
        network_id: &str,
        subnet: &IpNet,
        addr: IpAddr,
        after: IpAddr,
    ) -> Result<()> {
        self.tx
            .prepare(
                "UPDATE address_cursors SET next = ?3 \
                 WHERE network_id = ?1 AND subnet = ?2 AND next = ?4",
            )
            .and_then(|mut s| {
                s.execute(params![
                    network_id,
                    subnet.to_string(),
                    addr.to_string(),
                    after.to_string()
                ])
            })
            .map_err(sql("write address cursor"))?;
        Ok(())
    }

    /// Inserts an endpoint and claims its addresses (unique per network).
    pub fn insert_endpoint(&self, ep: &Endpoint) -> Result<()> {
        let q = format!("INSERT INTO endpoints ({ENDPOINT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7)");
        self.tx
            .execute(
                &q,
                params![
                    ep.id,
                    ep.container_id,
                    ep.network_id,
                    ep.ifname,
                    ep.host_ifname,
                    ep.mac,
                    to_json(&ep.aliases)
                ],
            )
            .map_err(sql("insert endpoint"))?;
        for a in &ep.addresses {
            self.tx
                .execute(
                    "INSERT INTO allocations (network_id, address, endpoint_id, prefix_len, gateway) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        ep.network_id,
                        a.addr.to_string(),
                        ep.id,
                        a.prefix_len,
                        a.gateway.map(|g| g.to_string())
                    ],
                )
                .map_err(sql("claim address"))?;
        }
        Ok(())
    }

    /// Deletes an endpoint and releases its addresses.
    pub fn delete_endpoint(&self, id: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM endpoints WHERE id = ?1", [id])
            .map_err(sql("delete endpoint"))?;
        Ok(())
    }
}
