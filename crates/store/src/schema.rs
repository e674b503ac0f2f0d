//! Versioned schema migrations, tracked in `PRAGMA user_version`.
//!
//! Migrations are append-only: a released step is never edited, a change is a new step.

use rusqlite::{Connection, TransactionBehavior};

const MIGRATIONS: &[&str] = &[
    // 1: networks, their subnets, containers, endpoints and address allocations.
    "CREATE TABLE networks (
        id        TEXT PRIMARY KEY,
        name      TEXT NOT NULL UNIQUE,
        driver    TEXT NOT NULL,
        bridge    TEXT UNIQUE,
        internal  INTEGER NOT NULL DEFAULT 0,
        icc       INTEGER NOT NULL DEFAULT 1,
        mtu       INTEGER,
        ipv6      INTEGER NOT NULL DEFAULT 0,
        builtin   INTEGER NOT NULL DEFAULT 0,
        options   TEXT NOT NULL DEFAULT '{}',
        labels    TEXT NOT NULL DEFAULT '{}',
        created   TEXT NOT NULL
    );
    CREATE TABLE subnets (
        network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
        position   INTEGER NOT NULL,
        subnet     TEXT NOT NULL,
        gateway    TEXT NOT NULL,
        ip_range   TEXT,
        PRIMARY KEY (network_id, position)
    );
    CREATE TABLE containers (
        id          TEXT PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        hostname    TEXT NOT NULL,
        command     TEXT NOT NULL,
        mode        TEXT NOT NULL,
        netns       TEXT,
        pid         INTEGER,
        pid_start   INTEGER,
        state       TEXT NOT NULL,
        exit_code   INTEGER,
        auto_remove INTEGER NOT NULL DEFAULT 0,
        dns         TEXT NOT NULL DEFAULT '[]',
        created     TEXT NOT NULL,
        started     TEXT,
        finished    TEXT
    );
    CREATE TABLE endpoints (
        id           TEXT PRIMARY KEY,
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        network_id   TEXT NOT NULL REFERENCES networks(id),
        ifname       TEXT NOT NULL,
        host_ifname  TEXT NOT NULL UNIQUE,
        mac          TEXT NOT NULL,
        aliases      TEXT NOT NULL DEFAULT '[]',
        UNIQUE (container_id, network_id),
        UNIQUE (container_id, ifname)
    );
    CREATE TABLE allocations (
        network_id  TEXT NOT NULL REFERENCES networks(id),
        address     TEXT NOT NULL,
        endpoint_id TEXT NOT NULL REFERENCES endpoints(id) ON DELETE CASCADE,
        prefix_len  INTEGER NOT NULL,
        gateway     TEXT,
        PRIMARY KEY (network_id, address)
    );
    CREATE INDEX endpoints_by_network ON endpoints(network_id);
    CREATE INDEX allocations_by_endpoint ON allocations(endpoint_id);",
    // 2: published ports, one row per host port (a range is expanded). host_ip is '' for
    // every host address of both families, '0.0.0.0' / '::' for every address of one.
    "CREATE TABLE ports (
        container_id   TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        protocol       TEXT NOT NULL,
        host_ip        TEXT NOT NULL,
        host_port      INTEGER NOT NULL,
        container_port INTEGER NOT NULL,
        PRIMARY KEY (protocol, host_port, host_ip)
    );
    CREATE INDEX ports_by_container ON ports(container_id);",
    // 3: the event log (`berth events`): one row per change, ordered by id. time_us is
    // microseconds since the Unix epoch; attributes a JSON object of strings.
    "CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        time_us    INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        action     TEXT NOT NULL,
        actor_id   TEXT NOT NULL,
        actor_name TEXT NOT NULL,
        attributes TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_time ON events(time_us);",
    // 4: who owns a container's network namespace: NULL for berth's own containers, else
    // the door whose runtime made it ('netavark' for podman, 'cni'); berth never removes
    // such a namespace, only its endpoints.
    "ALTER TABLE containers ADD COLUMN owner TEXT;",
    // 5: where the next address allocation of each subnet starts (after the last one given
    // out), so allocating is a few point lookups whatever the number of addresses in use.
    "CREATE TABLE address_cursors (
        network_id TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
        subnet     TEXT NOT NULL,
        next       TEXT NOT NULL,
        PRIMARY KEY (network_id, subnet)
    );",
    // 6: host-end names registered ahead on the fast path's chain (the firewall's netdev
    // table): 0 spare, 1 given to an endpoint, 2 retired (its endpoint gone, still listed).
    "CREATE TABLE hook_names (
        name  TEXT PRIMARY KEY,
        state INTEGER NOT NULL
    );
    CREATE INDEX hook_names_by_state ON hook_names(state);",
];

/// Brings the schema to the newest version, one transaction per step.
pub(crate) fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    // Up to date (every call but the first): a read, no write lock.
    let version: usize = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version >= MIGRATIONS.len() {
        return Ok(());
    }
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let version: usize = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let Some(step) = MIGRATIONS.get(version) else {
            return Ok(());
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", version + 1)?;
        tx.commit()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_reach_latest_version_and_are_rerunnable() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let v: usize = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len());
    }
}
