//! `berth run`: create a container with its network, start its command, and either wait for
//! it (exit with its status) or hand it to a detached supervisor and print its id.

use crate::cli::RunArgs;
use crate::{Failure, Outcome};
use berth_engine::container::{self, RunRequest, Stdio3};
use berth_engine::{Engine, Paths};
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// berth itself failed (as Docker's 125).
const BERTH_FAILED: u8 = 125;

pub(crate) fn run(paths: Paths, a: RunArgs) -> Result<Outcome, Failure> {
    let fail = |e: anyhow::Error| Failure::with_code(e, BERTH_FAILED);
    let mut engine = Engine::open(paths.clone()).map_err(|e| fail(e.into()))?;
    let req = RunRequest {
        name: a.name,
        networks: a.networks,
        ip: a.ip,
        aliases: a.aliases,
        hostname: a.hostname,
        dns: a.dns,
        auto_remove: a.rm,
        command: a.command,
    };
    let c = container::create(&mut engine, &req).map_err(|e| fail(e.into()))?;
    if a.detach {
        return match detach(&paths, &c.id) {
            Ok(()) => {
                println!("{}", c.id);
                Ok(Outcome::Ok)
            }
            Err(e) => {
                let _ = container::remove(&mut engine, &c.id, true);
                Err(fail(e))
            }
        };
    }
    let started = container::start(&mut engine, &c, Stdio3::inherit());
    let mut child = match started {
        Ok(child) => child,
        Err(e) => {
            let _ = container::remove(&mut engine, &c.id, true);
            return Err(fail(e.into()));
        }
    };
    let status = child.wait().map_err(|e| fail(e.into()))?;
    let code = container::record_exit(&mut engine, &c, status).map_err(|e| fail(e.into()))?;
    Ok(Outcome::Code(code))
}

/// Starts `berth container-shim ID` in its own process group, its output in the container's
/// log, and waits for its one line saying the container's process started.
fn detach(paths: &Paths, id: &str) -> anyhow::Result<()> {
    let log_path = paths.log(id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let exe = std::env::current_exe()?;
    let mut shim = Command::new(exe)
        .arg("--root")
        .arg(&paths.root)
        .arg("--run-root")
        .arg(&paths.run_root)
        .args(["container-shim", id])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log)
        .process_group(0)
        .spawn()?;
    let out = shim.stdout.take().expect("stdout was piped");
    let mut line = String::new();
    std::io::BufReader::new(out).read_line(&mut line)?;
    if line.trim() == "started" {
        return Ok(());
    }
    let _ = shim.wait();
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    let reason = log
        .lines()
        .rfind(|l| l.starts_with("Error:"))
        .unwrap_or("supervisor exited");
    anyhow::bail!(
        "start detached container: {}",
        reason.trim_start_matches("Error: ")
    )
}
