//! Published ports: one row per host port, unique per protocol, host port and host address.

use crate::model::PortMapping;
use crate::tx::{sql, Tx};
use crate::Result;
use rusqlite::{params, Row};

const COLS: &str = "container_id, protocol, host_ip, host_port, container_port";

fn row(r: &Row<'_>) -> rusqlite::Result<PortMapping> {
    Ok(PortMapping {
        container_id: r.get(0)?,
        protocol: r.get(1)?,
        host_ip: r.get(2)?,
        host_port: r.get(3)?,
        container_port: r.get(4)?,
    })
}

impl Tx<'_> {
    fn port_query(
        &self,
        op: &str,
        filter: &str,
        args: impl rusqlite::Params,
    ) -> Result<Vec<PortMapping>> {
        let mut stmt = self
            .tx
            .prepare(&format!("SELECT {COLS} FROM ports {filter}"))
            .map_err(sql(op))?;
        let rows = stmt.query_map(args, row).map_err(sql(op))?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql(op))
    }

    /// Every published port, ordered by container, protocol and host port.
    pub fn all_ports(&self) -> Result<Vec<PortMapping>> {
        self.port_query(
            "list published ports",
            "ORDER BY container_id, protocol, host_port, host_ip",
            [],
        )
    }

    /// The ports a container publishes, ordered by protocol and host port.
    pub fn ports_of_container(&self, container_id: &str) -> Result<Vec<PortMapping>> {
        self.port_query(
            "list a container's published ports",
            "WHERE container_id = ?1 ORDER BY protocol, host_port, host_ip",
            params![container_id],
        )
    }

    /// Published ports of `protocol` with a host port in `first..=last` (any host address).
    pub fn ports_in_range(
        &self,
        protocol: &str,
        first: u16,
        last: u16,
    ) -> Result<Vec<PortMapping>> {
        self.port_query(
            "look up published ports",
            "WHERE protocol = ?1 AND host_port BETWEEN ?2 AND ?3 ORDER BY host_port",
            params![protocol, first, last],
        )
    }

    /// Records published ports. A row that repeats one already there is an error.
    pub fn insert_ports(&self, ports: &[PortMapping]) -> Result<()> {
        let op = "record published ports";
        let mut stmt = self
            .tx
            .prepare(&format!(
                "INSERT INTO ports ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"
            ))
            .map_err(sql(op))?;
        for p in ports {
            stmt.execute(params![
                p.container_id,
                p.protocol,
                p.host_ip,
                p.host_port,
                p.container_port
            ])
            .map_err(sql(op))?;
        }
        Ok(())
    }

    /// Forgets every published port of a container (its elements are the caller's).
    pub fn delete_ports(&self, container_id: &str) -> Result<()> {
        self.tx
            .execute("DELETE FROM ports WHERE container_id = ?1", [container_id])
            .map_err(sql("delete published ports"))?;
        Ok(())
    }
}
