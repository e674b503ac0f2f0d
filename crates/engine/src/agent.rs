//! The doors' side of the agent: tell it that something changed, starting it when needed.
//!
//! The agent (`berth agent`, crate `berth-agent`) serves DNS, repairs the firewall, relays
//! `[::1]` host ports (which NAT cannot serve) and exports metrics. No other part of the
//! data path depends on it: if it cannot be reached or started, a command still succeeds
//! and says so in a warning. `BERTH_NO_AGENT=1` turns it off for
//! the calling command (for hosts that want no resident process).
//!
//! Protocol: one line per request on the unix socket `<run-root>/agent.sock`, one line back.
//! `reload [setup|teardown MICROS]` (re-read the store; answered `ok` once DNS and the
//! `[::1]` relay serve the new state, else `error WHY`; the optional timing feeds the
//! setup/teardown metrics), `reload-soon [...]` (answered at once, reloaded later),
//! `reload-ports ID [setup MICROS]` (answered once container ID's `[::1]` ports are relayed;
//! the rest reloaded later), `adopt-ports ID port=PROTO/PORT... [setup MICROS]` (the same
//! ports' sockets, bound by the door and passed with the request: [`adopt_ports`]), `reap teardown MICROS link=NAME... net=ID...` (the same, plus
//! links and idle door networks to delete on the agent's own thread, `crate::reap`, with the
//! teardown's nf_tables socket passed along for the agent to close; answered before the
//! reload),
//! `dns-port N` and `ping`. A door does not wait for the answer to `reload-soon`, `adopt-ports` or
//! a `reap` with no `[::1]` port ([`post`]): the agent reads a request after its door has gone.

use crate::Paths;
use std::io::{BufRead, BufReader};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a door waits for a starting agent to answer.
const START_TIMEOUT: Duration = Duration::from_secs(5);

fn disabled() -> bool {
    std::env::var_os("BERTH_NO_AGENT").is_some_and(|v| v != "0" && !v.is_empty())
}

/// Whether this command uses the agent (`BERTH_NO_AGENT` unset or 0).
pub fn enabled() -> bool {
    !disabled()
}

/// Sends one request and reads the answer line.
pub fn request(paths: &Paths, line: &str) -> std::io::Result<String> {
    request_with(paths, line, &[])
}

/// Leaves one request (and copies of `fds`) in the agent's socket without waiting for its
/// answer: once the connection is made, the agent reads what was written even after this
/// side has closed. For requests whose caller needs nothing served before it returns.
pub fn post(paths: &Paths, line: &str, fds: &[BorrowedFd<'_>]) -> std::io::Result<()> {
    let s = UnixStream::connect(paths.agent_socket())?;
    berth_kernel::fdpass::send(&s, format!("{line}\n").as_bytes(), fds)
}

/// [`post`], starting the agent with `start_args` when none answers.
fn post_starting(
    paths: &Paths,
    start_args: &[String],
    line: &str,
    fds: &[BorrowedFd<'_>],
) -> std::io::Result<()> {
    post(paths, line, fds).or_else(|_| {
        start(paths, start_args)?;
        post(paths, line, fds)
    })
}

/// [`request`], handing the agent copies of `fds` with it (`SCM_RIGHTS`).
pub fn request_with(paths: &Paths, line: &str, fds: &[BorrowedFd<'_>]) -> std::io::Result<String> {
    let s = UnixStream::connect(paths.agent_socket())?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    berth_kernel::fdpass::send(&s, format!("{line}\n").as_bytes(), fds)?;
    let mut answer = String::new();
    BufReader::new(s).read_line(&mut answer)?;
    Ok(answer.trim().to_string())
}

/// Starts `berth agent --foreground [ARGS]` detached from the caller (own process group,
/// output in `<run-root>/agent.log`) and waits until its socket answers.
pub fn start(paths: &Paths, args: &[String]) -> std::io::Result<()> {
    std::fs::create_dir_all(&paths.run_root)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(paths.agent_log())?;
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("--root")
        .arg(&paths.root)
        .arg("--run-root")
        .arg(&paths.run_root);
    if let Some(c) = &paths.cluster {
        cmd.args(["--store", &c.url, "--host-name", &c.host]);
        if let Some(a) = c.advertise {
            cmd.arg("--advertise").arg(a.to_string());
        }
    }
    cmd.args(["agent", "--foreground"])
        .args(args)
        // A CNI plugin's environment would make the child take the CNI door.
        .env_remove("CNI_COMMAND")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0);
    let mut child = cmd.spawn()?;
    let deadline = Instant::now() + START_TIMEOUT;
    let mut exited = None;
    loop {
        if request(paths, "ping").is_ok() {
            return Ok(());
        }
        // A child that exits may have lost the race to another starting agent: that one
        // answers once it is up, so keep asking until the deadline.
        if exited.is_none() {
            exited = child.try_wait()?;
        }
        if Instant::now() >= deadline {
            return Err(std::io::Error::other(match exited {
                Some(status) => format!(
                    "the agent exited ({status}); see {}",
                    paths.agent_log().display()
                ),
                None => "the agent did not answer in time".to_string(),
            }));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Tells the agent container `id` was set up or joined a network (starting the agent if it
/// is not running) and waits until it serves the container's names and `[::1]` ports.
/// Failures are warnings: the data path does not need the agent.
pub fn notify(paths: &Paths, id: &str, timing: Option<(&str, Duration)>) {
    notify_with(paths, timing, &[], Wait::Names(id))
}

/// What a change needs served by the agent before its command returns.
#[derive(Clone, Copy, Debug)]
pub enum Wait<'a> {
    /// This container's names (asked of berth's DNS) and `[::1]` relays, read by id; the
    /// rest may follow just after. A full re-read of the store grows with the containers on
    /// the host (~8 ms per setup at 1000 before this), a container read by id does not.
    Names(&'a str),
    /// The `[::1]` relays of this container's ports; the rest may follow just after.
    Ports(&'a str),
    /// Nothing: the request is posted ([`post`]) and the agent reloads after.
    No,
}

/// [`notify`], starting the agent with `start_args` (`--dns-port N`) when it is not running,
/// and waiting for what `wait` says. A running agent keeps the options it was started with.
pub fn notify_with(
    paths: &Paths,
    timing: Option<(&str, Duration)>,
    start_args: &[String],
    wait: Wait<'_>,
) {
    if disabled() {
        return;
    }
    let line = match wait {
        Wait::Names(id) => reload_line(&format!("reload-names {id}"), timing),
        Wait::Ports(id) => reload_line(&format!("reload-ports {id}"), timing),
        Wait::No => reload_line("reload-soon", timing),
    };
    if let Wait::No = wait {
        // Nothing to wait for: the request is left in the agent's socket (it reads it just
        // after), which spares this call the agent's wake-up (~0.25 ms on this VM).
        if let Err(e) = post_starting(paths, start_args, &line, &[]) {
            tracing::warn!("berth agent not reachable ({e}): DNS, firewall repair and [::1] ports are not updated");
        }
        return;
    }
    let r = request(paths, &line)
        .or_else(|_| {
            start(paths, start_args)?;
            request(paths, &line)
        })
        .and_then(|answer| match answer.starts_with("error unknown request") {
            // An agent from before `reload-ports` or `reload-names`: the whole reload serves
            // the names and ports too.
            true => request(paths, &reload_line("reload", timing)),
            false => Ok(answer),
        });
    match r {
        Ok(answer) if answer == "ok" => {}
        Ok(answer) => tracing::warn!(
            "berth agent: {}",
            answer.strip_prefix("error ").unwrap_or(&answer)
        ),
        Err(e) => tracing::warn!(
            "berth agent not reachable ({e}): DNS, firewall repair and [::1] ports are not updated"
        ),
    }
}

/// A setup's `[::1]` relays (`relays`, container `id`'s), bound here and posted to the agent
/// with `adopt-ports ID port=PROTO/PORT... [setup MICROS]` and their sockets: each port takes
/// connections from now on (the kernel queues them until the agent serves the socket), and
/// the door waits for nothing. When a port cannot be bound here (held by the agent's relay
/// of a container not yet reloaded away, or by anyone), or there are more than a request
/// carries, it falls back to `reload-ports`: the agent binds them and the door waits.
pub fn adopt_ports(
    paths: &Paths,
    timing: Option<(&str, Duration)>,
    start_args: &[String],
    id: &str,
    relays: &[crate::ports::relay::Relay],
) {
    use crate::ports::relay;
    if disabled() {
        return;
    }
    let fallback = || notify_with(paths, timing, start_args, Wait::Ports(id));
    if relays.len() > berth_kernel::fdpass::MAX_FDS {
        return fallback();
    }
    let mut words = vec![format!("adopt-ports {id}")];
    let mut sockets = Vec::new();
    for r in relays {
        match relay::listen(r) {
            Ok(s) => {
                words.push(format!("port={}/{}", r.proto.as_str(), r.host_port));
                sockets.push(s);
            }
            Err(e) if relay::no_v6_loopback(&e) => {}
            Err(_) => return fallback(),
        }
    }
    if sockets.is_empty() {
        return notify_with(paths, timing, start_args, Wait::No);
    }
    let line = reload_line(&words.join(" "), timing);
    let fds: Vec<BorrowedFd<'_>> = sockets.iter().map(|s| s.as_fd()).collect();
    if let Err(e) = post_starting(paths, start_args, &line, &fds) {
        tracing::warn!("berth agent not reachable ({e}): [::1] ports are not relayed");
    }
}

/// Whether an agent may be running (its socket exists and this command may use it); a
/// request tells for sure.
pub fn may_be_running(paths: &Paths) -> bool {
    !disabled() && paths.agent_socket().exists()
}

/// Hands `r` to a running agent (which re-reads the store after answering, as after a
/// teardown), with `close`: descriptors for the agent to close on its own thread
/// (`crate::reap` says why). False when no agent took it. Waits for the answer only when
/// `r` has `[::1]` ports to close.
pub fn reap(
    paths: &Paths,
    r: &crate::reap::Reap,
    took: Duration,
    close: &[BorrowedFd<'_>],
) -> bool {
    let line = format!("reap teardown {} {}", took.as_micros(), r.to_words());
    if disabled() {
        return false;
    }
    // `[::1]` ports must be closed when the teardown returns: wait for the agent's answer.
    // Links and networks the agent takes whenever it reads the request.
    match r.ports.is_empty() {
        true => post(paths, &line, close).is_ok(),
        false => request_with(paths, &line, close).is_ok_and(|a| a == "ok"),
    }
}

/// Tells a running agent the store changed; starts none.
pub fn notify_if_running(paths: &Paths, timing: Option<(&str, Duration)>) {
    if !disabled() {
        let _ = request(paths, &reload_line("reload", timing));
    }
}

fn reload_line(verb: &str, timing: Option<(&str, Duration)>) -> String {
    match timing {
        Some((what, took)) => format!("{verb} {what} {}", took.as_micros()),
        None => verb.into(),
    }
}
