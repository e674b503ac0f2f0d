//! The event log: what berth did to networks, containers and the firewall, in order.
//!
//! Rows are appended by the verbs that make the change, in the same process; `id` orders
//! them (an `AUTOINCREMENT` key never reuses a value, so a follower that remembers the last
//! id it printed never repeats one, and misses none unless it falls [`EVENTS_KEPT`] behind).
//!
//! The log keeps the newest [`EVENTS_KEPT`] events. Every [`PRUNE_EVERY`]th append deletes
//! what has fallen out of that window, in the appending transaction: one ranged `DELETE` on
//! the primary key per batch, so an append stays a single insert almost always, and the log
//! holds between `EVENTS_KEPT` and `EVENTS_KEPT + PRUNE_EVERY - 1` rows once it is full.

use crate::model::Event;
use crate::tx::{sql, Tx};
use crate::Result;
use rusqlite::params;

/// How many of the newest events the log keeps.
pub const EVENTS_KEPT: i64 = 10_000;

/// Every this-many-th append prunes the log back to [`EVENTS_KEPT`] events.
pub(crate) const PRUNE_EVERY: i64 = 500;

impl Tx<'_> {
    /// Appends an event; returns its id. Every [`PRUNE_EVERY`]th id also deletes the events
    /// older than the newest [`EVENTS_KEPT`].
    pub fn insert_event(&self, e: &Event) -> Result<i64> {
        let op = "record event";
        self.tx
            .prepare(
                "INSERT INTO events (time_us, kind, action, actor_id, actor_name, attributes) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(sql(op))?
            .execute(params![
                e.time_us,
                e.kind,
                e.action,
                e.actor_id,
                e.actor_name,
                serde_json::to_string(&e.attributes).expect("a string map serialises"),
            ])
            .map_err(sql(op))?;
        let id = self.tx.last_insert_rowid();
        if id % PRUNE_EVERY == 0 && id > EVENTS_KEPT {
            self.tx
                .prepare("DELETE FROM events WHERE id <= ?1")
                .map_err(sql("prune the event log"))?
                .execute([id - EVENTS_KEPT])
                .map_err(sql("prune the event log"))?;
        }
        Ok(id)
    }

    /// Events with an id above `after_id` and a time at or after `since_us`, oldest first,
    /// at most `limit`.
    pub fn events_after(&self, after_id: i64, since_us: i64, limit: u32) -> Result<Vec<Event>> {
        let op = "list events";
        let mut stmt = self
            .tx
            .prepare(
                "SELECT id, time_us, kind, action, actor_id, actor_name, attributes FROM events \
                 WHERE id > ?1 AND time_us >= ?2 ORDER BY id LIMIT ?3",
            )
            .map_err(sql(op))?;
        let rows = stmt
            .query_map(params![after_id, since_us, limit], |r| {
                Ok((
                    Event {
                        id: r.get(0)?,
                        time_us: r.get(1)?,
                        kind: r.get(2)?,
                        action: r.get(3)?,
                        actor_id: r.get(4)?,
                        actor_name: r.get(5)?,
                        attributes: Default::default(),
                    },
                    r.get::<_, String>(6)?,
                ))
            })
            .map_err(sql(op))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql(op))?;
        rows.into_iter()
            .map(|(mut e, attrs)| {
                e.attributes = serde_json::from_str(&attrs).map_err(|err| {
                    crate::Error::Corrupt(format!("bad event attributes {attrs:?}: {err}"))
                })?;
                Ok(e)
            })
            .collect()
    }

    /// The id of the newest event (0 when there is none).
    pub fn last_event_id(&self) -> Result<i64> {
        self.tx
            .query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0))
            .map_err(sql("read the last event id"))
    }
}

#[cfg(test)]
mod tests {
    use crate::model::Event;
    use crate::Store;

    #[test]
    fn events_come_back_in_order_after_an_id_and_a_time() {
        let dir = std::env::temp_dir().join(format!("berth-events-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir).unwrap();
        let ev = |t: i64, action: &str| Event {
            id: 0,
            time_us: t,
            kind: "container".into(),
            action: action.into(),
            actor_id: "abc".into(),
            actor_name: "web".into(),
            attributes: [("network".to_string(), "n1".to_string())].into(),
        };
        store
            .write(|tx| -> crate::Result<()> {
                tx.insert_event(&ev(10, "create"))?;
                tx.insert_event(&ev(20, "start"))?;
                tx.insert_event(&ev(30, "destroy"))?;
                Ok(())
            })
            .unwrap();
        let all = store.read(|tx| tx.events_after(0, 0, 100)).unwrap();
        let actions: Vec<_> = all.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["create", "start", "destroy"]);
        assert_eq!(all[0].attributes["network"], "n1");
        let later = store
            .read(|tx| tx.events_after(all[0].id, 25, 100))
            .unwrap();
        assert_eq!(later.len(), 1);
        assert_eq!(later[0].action, "destroy");
        assert_eq!(store.read(|tx| tx.last_event_id()).unwrap(), all[2].id);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_log_keeps_the_newest_events_and_ids_go_on_after_pruning() {
        use super::{EVENTS_KEPT, PRUNE_EVERY};
        let dir = std::env::temp_dir().join(format!("berth-events-prune-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir).unwrap();
        let ev = |n: i64| Event {
            id: 0,
            time_us: n,
            kind: "container".into(),
            action: format!("a{n}"),
            actor_id: "abc".into(),
            actor_name: "web".into(),
            attributes: Default::default(),
        };
        let span = |store: &mut Store| {
            store
                .read(|tx| {
                    let all = tx.events_after(0, 0, u32::MAX)?;
                    Ok::<_, crate::Error>((all.len() as i64, all[0].id, all[all.len() - 1].id))
                })
                .unwrap()
        };
        // Up to the first pruning id nothing goes.
        let first_prune = (EVENTS_KEPT / PRUNE_EVERY + 1) * PRUNE_EVERY;
        store
            .write(|tx| -> crate::Result<()> {
                for n in 1..first_prune {
                    tx.insert_event(&ev(n))?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(span(&mut store), (first_prune - 1, 1, first_prune - 1));
        // The pruning append leaves exactly the newest EVENTS_KEPT.
        let id = store.write(|tx| tx.insert_event(&ev(first_prune))).unwrap();
        assert_eq!(id, first_prune);
        assert_eq!(
            span(&mut store),
            (EVENTS_KEPT, first_prune - EVENTS_KEPT + 1, first_prune)
        );
        // Ids are never reused after the deletion, and the kept events are intact.
        let next = store.write(|tx| tx.insert_event(&ev(0))).unwrap();
        assert_eq!(next, first_prune + 1);
        let newest = store
            .read(|tx| tx.events_after(first_prune - 2, 0, 10))
            .unwrap();
        let actions: Vec<_> = newest.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(
            actions,
            [
                format!("a{}", first_prune - 1),
                format!("a{first_prune}"),
                "a0".into()
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
