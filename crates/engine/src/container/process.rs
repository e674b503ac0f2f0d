//! Starting a container's process (and `exec`) inside its namespaces, and recording its end.

use crate::error::KernelContext;
use crate::files::ContainerFiles;
use crate::ids::now;
use crate::observe::events;
use crate::{Engine, Result};
use berth_kernel::{netns, process as kproc, signals as kproc_signals};
use berth_store::{Container, NetworkMode};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};

/// Standard input, output and error for a container's process.
pub struct Stdio3 {
    pub stdin: Stdio,
    pub stdout: Stdio,
    pub stderr: Stdio,
}

impl Stdio3 {
    /// The caller's own terminal or pipes.
    pub fn inherit() -> Stdio3 {
        Stdio3 {
            stdin: Stdio::inherit(),
            stdout: Stdio::inherit(),
            stderr: Stdio::inherit(),
        }
    }
}

/// A command prepared to run inside the container's namespaces: its network namespace, a
/// new UTS namespace with its hostname and a new mount namespace where its resolv.conf,
/// hosts and hostname files cover the host's. Host-mode containers keep the host's network
/// and UTS namespaces and files, as with Docker.
pub fn exec_command(engine: &Engine, c: &Container, argv: &[String]) -> Result<Command> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| crate::Error::Invalid("no command given".into()))?;
    let mut cmd = Command::new(program);
    cmd.args(args);
    cmd.env("HOSTNAME", &c.hostname);
    let host = c.mode == NetworkMode::Host;
    let ns = match &c.netns {
        Some(p) => Some(
            netns::open(std::path::Path::new(p))
                .op(|| format!("open network namespace of container {} ({p})", c.name))?,
        ),
        None => None,
    };
    let files = ContainerFiles::at(&engine.paths.container_dir(&c.id));
    let iso = kproc::Isolation {
        netns: ns,
        new_uts: !host,
        hostname: (!host).then(|| c.hostname.clone()),
        new_mount_ns: !host,
        bind_files: match host {
            true => Vec::new(),
            false => files.binds(),
        },
        new_session: false,
    };
    kproc::apply(&mut cmd, iso).op(|| format!("prepare process of container {}", c.name))?;
    Ok(cmd)
}

/// How a container's command is attached to its caller.
pub enum Launch<'a> {
    /// In the caller's process group (its terminal keeps working); the forwarder passes the
    /// caller's termination signals on.
    Foreground(&'a kproc_signals::Forwarder),
    /// Leader of its own process group, so `stop` and `rm -f` reach everything it started.
    Detached,
}

/// Starts the container's command and records it as running.
pub fn start(
    engine: &mut Engine,
    c: &Container,
    stdio: Stdio3,
    launch: Launch<'_>,
) -> Result<Child> {
    let mut cmd = exec_command(engine, c, &c.command)?;
    cmd.stdin(stdio.stdin)
        .stdout(stdio.stdout)
        .stderr(stdio.stderr);
    if let Launch::Detached = launch {
        cmd.process_group(0);
    }
    let child = cmd.spawn().map_err(|source| crate::Error::Exec {
        program: c.command[0].clone(),
        container: c.name.clone(),
        source,
    })?;
    if let Launch::Foreground(signals) = launch {
        signals.set_target(child.id() as i32);
    }
    let pid = child.id() as i32;
    let start_time = kproc::start_time(pid).unwrap_or(0);
    let at = now();
    engine
        .store
        .write(|tx| -> Result<()> { Ok(tx.set_running(&c.id, pid, start_time, &at)?) })?;
    let pid_s = pid.to_string();
    events::record(
        &mut engine.store,
        "container",
        "start",
        (&c.id, &c.name),
        &[("pid", &pid_s)],
    );
    Ok(child)
}

/// The shell-style exit code of a status: the code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(255)
}

/// Records the end of the container's process; removes it when it was run with `--rm`.
pub fn record_exit(engine: &mut Engine, c: &Container, status: ExitStatus) -> Result<i32> {
    let code = exit_code(status);
    let at = now();
    engine
        .store
        .write(|tx| -> Result<()> { Ok(tx.set_exited(&c.id, code, &at)?) })?;
    let code_s = code.to_string();
    events::record(
        &mut engine.store,
        "container",
        "die",
        (&c.id, &c.name),
        &[("exit_code", &code_s)],
    );
    if c.auto_remove {
        super::remove(engine, &c.id, true)?;
    }
    Ok(code)
}

/// Starts forwarding SIGINT, SIGTERM, SIGHUP and SIGQUIT aimed at this process to the
/// container's process (set its pid with `set_target`), so that a foreground `run` outlives
/// them long enough to record the exit status and honour `--rm`.
pub fn forward_termination_signals() -> Result<kproc_signals::Forwarder> {
    kproc_signals::Forwarder::start(&[libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT])
        .op(|| "forward signals to the container".into())
}
