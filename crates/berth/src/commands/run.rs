//! `berth run`: create a container with its network, start its command, and either wait for
//! it (exit with its status) or hand it to a detached supervisor and print its id.

use crate::cli::{ContainerArgs, RunArgs};
use crate::{Failure, Outcome};
use berth_engine::container::{self, RunRequest, Stdio3};
use berth_engine::{Engine, Paths};
use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

/// berth itself failed (as Docker's 125).
pub(crate) const BERTH_FAILED: u8 = 125;

/// The engine's request for `run` and `create`.
pub(crate) fn request(a: ContainerArgs) -> RunRequest {
    RunRequest {
        name: a.name,
        networks: a.networks,
        ip: a.ip,
        aliases: a.aliases,
        hostname: a.hostname,
        dns: a.dns,
        publish: a.publish,
        auto_remove: a.rm,
        command: a.command,
    }
}

pub(crate) fn run(paths: Paths, a: RunArgs) -> Result<Outcome, Failure> {
    let fail = |e: anyhow::Error| Failure::with_code(e, BERTH_FAILED);
    let mut engine = Engine::open(paths.clone()).map_err(|e| fail(e.into()))?;
    let c = container::create(&mut engine, &request(a.container)).map_err(|e| fail(e.into()))?;
    if a.detach {
        return match detach(&paths, &c.id) {
            Ok(()) => {
                println!("{}", c.id);
                Ok(Outcome::Ok)
            }
            Err(f) => {
                let _ = container::remove(&mut engine, &c.id, true);
                Err(f)
            }
        };
    }
    let signals = container::forward_termination_signals().map_err(|e| fail(e.into()))?;
    let started = container::start(
        &mut engine,
        &c,
        Stdio3::inherit(),
        container::Launch::Foreground(&signals),
    );
    let mut child = match started {
        Ok(child) => child,
        Err(e) => {
            let _ = container::remove(&mut engine, &c.id, true);
            let code = e.exec_status().unwrap_or(BERTH_FAILED);
            return Err(Failure::with_code(e, code));
        }
    };
    let status = child.wait().map_err(|e| fail(e.into()))?;
    let code = container::record_exit(&mut engine, &c, status).map_err(|e| fail(e.into()))?;
    Ok(Outcome::Code(code))
}

/// Starts `berth container-shim ID` in its own process group, its output in the container's
/// log, and waits for its one line: `started`, or `failed CODE MESSAGE`.
pub(crate) fn detach(paths: &Paths, id: &str) -> Result<(), Failure> {
    let fail = |e: anyhow::Error| Failure::with_code(e, BERTH_FAILED);
    let log_path = paths.log(id);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| fail(e.into()))?;
    let exe = std::env::current_exe().map_err(|e| fail(e.into()))?;
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
        .spawn()
        .map_err(|e| fail(e.into()))?;
    let out = shim.stdout.take().expect("stdout was piped");
    let mut line = String::new();
    std::io::BufReader::new(out)
        .read_line(&mut line)
        .map_err(|e| fail(e.into()))?;
    if line.trim() == "started" {
        return Ok(());
    }
    let _ = shim.wait();
    match line
        .trim()
        .strip_prefix("failed ")
        .and_then(|r| r.split_once(' '))
    {
        Some((code, msg)) => Err(Failure::with_code(
            anyhow::anyhow!("{msg}"),
            code.parse().unwrap_or(BERTH_FAILED),
        )),
        None => Err(fail(anyhow::anyhow!(
            "start detached container: its supervisor exited (see {})",
            log_path.display()
        ))),
    }
}
