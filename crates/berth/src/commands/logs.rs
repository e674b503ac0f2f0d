//! `berth logs`: the output of a detached container.

use crate::{Failure, Outcome};
use berth_engine::{container, Engine};
use std::io::Write;

pub(crate) fn run(engine: &mut Engine, reference: &str) -> Result<Outcome, Failure> {
    let c = container::find(engine, reference)?;
    match std::fs::read(engine.paths().log(&c.id)) {
        Ok(bytes) => std::io::stdout().write_all(&bytes)?,
        // A container run in the foreground wrote to its caller's terminal: no log.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    Ok(Outcome::Ok)
}
