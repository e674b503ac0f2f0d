//! `berth events`: the event log, then new events as they are recorded (the store is
//! polled every 100 ms: one indexed query), until `--until` or until interrupted.

use crate::cli::{EventsArgs, Format};
use crate::{Failure, Outcome};
use berth_engine::observe::events::{self, format_time, now_us, parse_time};
use berth_engine::Engine;
use berth_store::Event;
use std::io::Write;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(100);

pub(crate) fn run(engine: &mut Engine, a: EventsArgs) -> Result<Outcome, Failure> {
    let now = now_us();
    let since = a.since.as_deref().map(|s| parse_time(s, now)).transpose()?;
    let until = a.until.as_deref().map(|s| parse_time(s, now)).transpose()?;
    // Without --since only events from now on are shown, as `docker events` does.
    let mut after = match since {
        Some(_) => 0,
        None => events::last_id(engine)?,
    };
    let since = since.unwrap_or(0);
    loop {
        let batch = events::list(engine, after, since, 1000)?;
        let mut out = std::io::stdout().lock();
        for e in &batch {
            if until.is_some_and(|u| e.time_us > u) {
                return Ok(Outcome::Ok);
            }
            // A reader that went away (`| head`) ends the stream quietly.
            if closed(writeln!(out, "{}", line(e, a.format)))? {
                return Ok(Outcome::Ok);
            }
            after = e.id;
        }
        if closed(out.flush())? {
            return Ok(Outcome::Ok);
        }
        if batch.len() < 1000 {
            if until.is_some_and(|u| now_us() > u) {
                return Ok(Outcome::Ok);
            }
            std::thread::sleep(POLL);
        }
    }
}

fn line(e: &Event, format: Format) -> String {
    match format {
        Format::Json => serde_json::json!({
            "Type": e.kind,
            "Action": e.action,
            "Actor": {"ID": e.actor_id, "Name": e.actor_name, "Attributes": e.attributes},
            "time": e.time_us / 1_000_000,
            "timeNano": e.time_us as i128 * 1000,
            "Time": format_time(e.time_us),
        })
        .to_string(),
        Format::Table => {
            let mut attrs = vec![format!("name={}", e.actor_name)];
            attrs.extend(
                e.attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={}", short(v))),
            );
            format!(
                "{} {} {} {} ({})",
                format_time(e.time_us),
                e.kind,
                e.action,
                short(&e.actor_id),
                attrs.join(", ")
            )
        }
    }
}

/// A berth id (64 hex characters) as its 12-character short form, as `ps` shows it.
fn short(v: &str) -> &str {
    match v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        true => &v[..12],
        false => v,
    }
}

/// Whether a write failed because the reader closed the pipe; other errors stay errors.
pub(crate) fn closed(r: std::io::Result<()>) -> Result<bool, Failure> {
    match r {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(true),
        Err(e) => Err(e.into()),
    }
}
