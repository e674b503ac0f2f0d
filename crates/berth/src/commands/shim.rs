//! `berth container-shim ID` (internal): the supervisor of a detached container. It starts
//! the container's process with its output in the log, says `started` (or `failed CODE
//! MESSAGE`) on stdout, waits, and
//! records the exit status (removing the container when it was run with `--rm`).

use crate::{Failure, Outcome};
use berth_engine::container::{self, Stdio3};
use berth_engine::Engine;
use std::io::Write;
use std::process::Stdio;

pub(crate) fn run(engine: &mut Engine, id: &str) -> Result<Outcome, Failure> {
    let c = container::find(engine, id)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(engine.paths().log(&c.id))?;
    let stdio = Stdio3 {
        stdin: Stdio::null(),
        stdout: Stdio::from(log.try_clone()?),
        stderr: Stdio::from(log),
    };
    let started = container::start(engine, &c, stdio, container::Launch::Detached);
    {
        // One line for `berth run -d`: `started`, or `failed CODE MESSAGE`.
        let mut out = std::io::stdout().lock();
        let _ = match &started {
            Ok(_) => writeln!(out, "started"),
            Err(e) => writeln!(out, "failed {} {e}", e.exec_status().unwrap_or(125)),
        };
        let _ = out.flush();
    }
    let mut child = started?;
    let status = child.wait()?;
    container::record_exit(engine, &c, status)?;
    Ok(Outcome::Ok)
}
