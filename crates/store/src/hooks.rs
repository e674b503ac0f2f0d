//! Host-end names registered ahead on the fast path's netdev chain, so that a container's
//! setup and teardown need not change the chain (each change of a chain's device list makes
//! the next nf_tables socket to close wait for an RCU grace period): a name is spare, then
//! given to one endpoint, then retired when that endpoint goes (a name is never reused, so a
//! new host end never meets an old one of the same name the kernel is still deleting).

use crate::tx::{sql, Tx};
use crate::Result;
use rusqlite::params;

const SPARE: i64 = 0;
const GIVEN: i64 = 1;
const RETIRED: i64 = 2;

impl Tx<'_> {
    /// Gives out a spare name, if there is one (an indexed lookup).
    pub fn take_hook_name(&self) -> Result<Option<String>> {
        let name: Option<String> = self
            .tx
            .prepare("SELECT name FROM hook_names WHERE state = ?1 LIMIT 1")
            .and_then(|mut s| {
                let mut rows = s.query([SPARE])?;
                rows.next()?.map(|r| r.get(0)).transpose()
            })
            .map_err(sql("read spare hook names"))?;
        if let Some(n) = &name {
            self.set_hook_state(n, GIVEN)?;
        }
        Ok(name)
    }

    /// Records names just registered on the chain as spare.
    pub fn add_hook_names(&self, names: &[String]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare("INSERT OR IGNORE INTO hook_names (name, state) VALUES (?1, ?2)")
            .map_err(sql("add hook names"))?;
        for n in names {
            stmt.execute(params![n, SPARE])
                .map_err(sql("add hook names"))?;
        }
        Ok(())
    }

    /// Whether `name` is one of the registered names (given out or not).
    pub fn is_hook_name(&self, name: &str) -> Result<bool> {
        self.tx
            .prepare("SELECT 1 FROM hook_names WHERE name = ?1")
            .and_then(|mut s| s.exists([name]))
            .map_err(sql("look up a hook name"))
    }

    /// How many spare names are left.
    pub fn spare_hook_names(&self) -> Result<usize> {
        self.count_hook_names(SPARE)
    }

    /// Retires the name of an endpoint that goes (nothing if it is not a registered name);
    /// returns how many retired names there now are.
    pub fn retire_hook_name(&self, name: &str) -> Result<usize> {
        self.tx
            .prepare("UPDATE hook_names SET state = ?2 WHERE name = ?1 AND state = ?3")
            .and_then(|mut s| s.execute(params![name, RETIRED, GIVEN]))
            .map_err(sql("retire a hook name"))?;
        self.count_hook_names(RETIRED)
    }

    /// The retired names.
    pub fn retired_hook_names(&self) -> Result<Vec<String>> {
        self.hook_names_where("WHERE state = 2")
    }

    /// Every registered name, in any state.
    pub fn hook_names(&self) -> Result<Vec<String>> {
        self.hook_names_where("")
    }

    /// Forgets names taken off the chain.
    pub fn forget_hook_names(&self, names: &[String]) -> Result<()> {
        let mut stmt = self
            .tx
            .prepare("DELETE FROM hook_names WHERE name = ?1")
            .map_err(sql("forget hook names"))?;
        for n in names {
            stmt.execute([n]).map_err(sql("forget hook names"))?;
        }
        Ok(())
    }

    fn set_hook_state(&self, name: &str, state: i64) -> Result<()> {
        self.tx
            .prepare("UPDATE hook_names SET state = ?2 WHERE name = ?1")
            .and_then(|mut s| s.execute(params![name, state]))
            .map_err(sql("update a hook name"))?;
        Ok(())
    }

    fn count_hook_names(&self, state: i64) -> Result<usize> {
        self.tx
            .prepare("SELECT count(*) FROM hook_names WHERE state = ?1")
            .and_then(|mut s| s.query_row([state], |r| r.get::<_, i64>(0)))
            .map(|n| n as usize)
            .map_err(sql("count hook names"))
    }

    fn hook_names_where(&self, filter: &str) -> Result<Vec<String>> {
        let mut stmt = self
            .tx
            .prepare(&format!(
                "SELECT name FROM hook_names {filter} ORDER BY name"
            ))
            .map_err(sql("read hook names"))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql("read hook names"))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(sql("read hook names"))
    }
}
