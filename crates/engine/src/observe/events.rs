//! The event log: the verbs append what they changed; `berth events` reads it back.
//!
//! Recording never fails a verb: the change is already made in the kernel and the store, so
//! a failure to log it is reported on stderr and the verb goes on.

use crate::{Engine, Result};
use berth_store::{Event, Store};
use std::time::{SystemTime, UNIX_EPOCH};

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// An event stamped now (`kind` network, container or firewall).
pub(crate) fn event(
    kind: &str,
    action: &str,
    actor: (&str, &str),
    attrs: &[(&str, &str)],
) -> Event {
    Event {
        id: 0,
        time_us: now_us(),
        kind: kind.into(),
        action: action.into(),
        actor_id: actor.0.into(),
        actor_name: actor.1.into(),
        attributes: attrs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

/// Appends one event.
pub(crate) fn record(
    store: &mut Store,
    kind: &str,
    action: &str,
    actor: (&str, &str),
    attrs: &[(&str, &str)],
) {
    with_endpoints(
        store,
        &[event(kind, action, actor, attrs)],
        action,
        None,
        &[],
        &[],
    );
}

/// Appends `before`, then a network `action` event per endpoint of `c` (connect or
/// disconnect, as Docker emits on create and rm), then `after`: all in one transaction, so
/// that a verb pays for one commit whatever it logs.
pub(crate) fn with_endpoints(
    store: &mut Store,
    before: &[Event],
    action: &str,
    c: Option<&berth_store::Container>,
    eps: &[berth_store::Endpoint],
    after: &[Event],
) {
    // Stamped as they are written, so that times follow the ids.
    let insert = |tx: &berth_store::Tx<'_>, ev: &Event| -> Result<()> {
        let mut ev = ev.clone();
        ev.time_us = now_us();
        tx.insert_event(&ev)?;
        Ok(())
    };
    let written = store.write(|tx| -> Result<()> {
        for ev in before {
            insert(tx, ev)?;
        }
        if let (Some(c), false) = (c, eps.is_empty()) {
            let nets = tx.networks()?;
            for ep in eps {
                let name = nets
                    .iter()
                    .find(|n| n.id == ep.network_id)
                    .map_or(ep.network_id.as_str(), |n| n.name.as_str());
                let attrs = [
                    ("container", c.name.as_str()),
                    ("container_id", c.id.as_str()),
                ];
                insert(
                    tx,
                    &event("network", action, (&ep.network_id, name), &attrs),
                )?;
            }
        }
        for ev in after {
            insert(tx, ev)?;
        }
        Ok(())
    });
    if let Err(e) = written {
        tracing::warn!("record events: {e}");
    }
}

/// Events after id `after_id` at or after `since_us`, oldest first (at most `limit`).
pub fn list(engine: &mut Engine, after_id: i64, since_us: i64, limit: u32) -> Result<Vec<Event>> {
    Ok(engine
        .store
        .read(|tx| tx.events_after(after_id, since_us, limit))?)
}

/// The id of the newest event, 0 when there is none.
pub fn last_id(engine: &mut Engine) -> Result<i64> {
    Ok(engine.store.read(|tx| tx.last_event_id())?)
}

impl Engine {
    /// Records an event from outside the engine's verbs (the agent's firewall repair).
    pub fn record_event(&mut self, kind: &str, action: &str, actor: (&str, &str)) {
        record(&mut self.store, kind, action, actor, &[]);
    }
}

/// Network connect events for a container's endpoints (as Docker emits on create).
pub(crate) fn endpoints(
    store: &mut Store,
    action: &str,
    c: &berth_store::Container,
    eps: &[berth_store::Endpoint],
) {
    with_endpoints(store, &[], action, Some(c), eps, &[]);
}

/// RFC 3339 UTC with microseconds: `2026-12-01T18:00:00.123456Z`.
pub fn format_time(us: i64) -> String {
    let secs = crate::ids::rfc3339(us.div_euclid(1_000_000) as u64);
    format!(
        "{}.{:06}Z",
        secs.trim_end_matches('Z'),
        us.rem_euclid(1_000_000)
    )
}

/// Parses a `--since` / `--until` value into microseconds since the epoch: RFC 3339 UTC
/// (`2026-12-01T18:00:00Z`, fractions allowed), Unix seconds (`1764612000`, `1764612000.5`),
/// or a duration before `now_us` (`30s`, `10m`, `2h`, `1d`).
pub fn parse_time(s: &str, now_us: i64) -> Result<i64> {
    let bad = || {
        crate::Error::Invalid(format!(
            "invalid time {s:?}: use RFC 3339 (2026-12-01T18:00:00Z), Unix seconds, or a duration ago (10m, 2h)"
        ))
    };
    let t = s.trim();
    if let Some(unit) = t.chars().last().filter(|c| "smhd".contains(*c)) {
        if let Ok(n) = t[..t.len() - 1].parse::<u64>() {
            let mult: i64 = match unit {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                _ => 86_400,
            };
            return Ok(now_us - n as i64 * mult * 1_000_000);
        }
    }
    if let Ok(secs) = t.parse::<f64>() {
        if secs >= 0.0 {
            return Ok((secs * 1e6) as i64);
        }
        return Err(bad());
    }
    parse_rfc3339(t).ok_or_else(bad)
}

fn parse_rfc3339(s: &str) -> Option<i64> {
    let s = s.strip_suffix('Z').or_else(|| s.strip_suffix("+00:00"))?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let micros = match frac {
        "" => 0,
        f if f.bytes().all(|b| b.is_ascii_digit()) => format!("{:0<6}", &f[..f.len().min(6)])
            .parse::<i64>()
            .ok()?,
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + hh * 3600 + mm * 60 + ss) * 1_000_000) + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_parse_every_form() {
        let t = 1_764_612_000_123_456;
        assert_eq!(format_time(t), "2025-12-01T18:00:00.123456Z");
        assert_eq!(parse_time(&format_time(t), 0).unwrap(), t);
        assert_eq!(
            parse_time("2025-12-01T18:00:00Z", 0).unwrap(),
            1_764_612_000_000_000
        );
        assert_eq!(parse_time("1764612000", 0).unwrap(), 1_764_612_000_000_000);
        assert_eq!(parse_time("10m", 600_000_000).unwrap(), 0);
        assert_eq!(parse_time("0s", 42).unwrap(), 42);
        for bad in ["yesterday", "2025-13-01T00:00:00Z", "-5", "10x"] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
    }
}
