//! `stop` and `rm`: ending a container's process and tearing down its network.

use crate::endpoint;
use crate::observe::events;
use crate::ports;
use crate::{Engine, Error, Result};
use berth_firewall::{Firewall, Update};
use berth_kernel::{netns, process as kproc};
use berth_store::{Container, ContainerState, Endpoint};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// Signals the container's process group (a detached container leads its own), else the
/// process alone (a foreground one shares its caller's group).
fn signal(pid: i32, sig: i32) {
    if kproc::kill_group(pid, sig).is_err() {
        let _ = kproc::kill(pid, sig);
    }
}

/// Waits up to `timeout` for the container's process to end (woken by its exit).
fn wait_dead(c: &Container, timeout: Duration) -> bool {
    if let (None, ContainerState::Running, Some(pid), Some(start)) =
        (&c.owner, c.state, c.pid, c.pid_start)
    {
        return kproc::wait_exit(pid, start, timeout);
    }
    let deadline = Instant::now() + timeout;
    while super::is_running(c) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

/// Sends SIGTERM, waits up to `timeout`, then SIGKILL. Stopping a stopped container is fine.
pub fn stop(engine: &mut Engine, reference: &str, timeout: Duration) -> Result<String> {
    let c = super::find(engine, reference)?;
    super::require_own(&c)?;
    if !super::is_running(&c) {
        return Ok(c.name);
    }
    let pid = c.pid.expect("a running container has a pid");
    signal(pid, libc::SIGTERM);
    if !wait_dead(&c, timeout) {
        signal(pid, libc::SIGKILL);
        if !wait_dead(&c, Duration::from_secs(10)) {
            return Err(Error::Conflict(format!(
                "container {} (pid {pid}) did not stop after SIGKILL",
                c.name
            )));
        }
    }
    wait_recorded(engine, &c.id);
    events::record(
        &mut engine.store,
        "container",
        "stop",
        (&c.id, &c.name),
        &[],
    );
    Ok(c.name)
}

/// Gives the container's supervisor a moment to record the exit status it saw.
fn wait_recorded(engine: &mut Engine, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while Instant::now() < deadline {
        match super::find(engine, id) {
            Ok(c) if c.state == berth_store::ContainerState::Running => {
                std::thread::sleep(Duration::from_millis(10))
            }
            _ => return,
        }
    }
}

/// Removes a container: its process (with `force`), endpoints, namespace, files and row.
/// With `force`, a container that does not exist is not an error (as `docker rm -f`).
/// Returns the removed container's name, or `None` when there was nothing to remove.
pub fn remove(engine: &mut Engine, reference: &str, force: bool) -> Result<Option<String>> {
    let c = match super::find(engine, reference) {
        Ok(c) => c,
        Err(Error::NotFound { .. }) if force => return Ok(None),
        Err(e) => return Err(e),
    };
    super::require_own(&c)?;
    if super::is_running(&c) {
        if !force {
            return Err(Error::Conflict(format!(
                "container {} is running: stop it first or use rm -f",
                c.name
            )));
        }
        let pid = c.pid.expect("a running container has a pid");
        signal(pid, libc::SIGKILL);
        if !wait_dead(&c, Duration::from_secs(10)) {
            return Err(Error::Conflict(format!(
                "container {} (pid {pid}) did not die after SIGKILL",
                c.name
            )));
        }
    }
    let eps = super::endpoints(engine, &c.id)?;
    let result = teardown(engine, &c, &eps);
    let removed = events::event("container", "remove", (&c.id, &c.name), &[]);
    events::with_endpoints(
        &mut engine.store,
        &[],
        "disconnect",
        Some(&c),
        &eps,
        &[removed],
    );
    result?;
    Ok(Some(c.name))
}

/// Removes everything of a container, going on past failures; reports all of them.
/// Works when the namespace file or the namespace itself is already gone. The namespace of
/// an external container belongs to its runtime and stays.
pub(crate) fn teardown(engine: &mut Engine, c: &Container, eps: &[Endpoint]) -> Result<()> {
    let t0 = Instant::now();
    let mut phases = crate::timing::Phases::new("teardown");
    let mut errors = Vec::new();
    // One nf_tables socket for the whole teardown, closed at its end: closing it waits for
    // the kernel's clean-up of the last commit (an RCU grace period), which by then has
    // passed during the link deletions, or which a running agent waits out (crate::reap).
    let mut fw = match Firewall::open() {
        Ok(fw) => Some(fw),
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let handoff =
        c.owner.is_some() && !eps.is_empty() && crate::agent::may_be_running(&engine.paths);
    // The `[::1]` ports a running agent relays for this container, from the rows unpublish
    // reads: the agent closes them before answering the hand-off (crate::reap).
    let mut relayed = Vec::new();
    let mut fast_done = false;
    if let Some(fw) = fw.as_mut() {
        match unpublish(engine, fw, c, eps, eps) {
            Ok(r) => {
                relayed = r;
                fast_done = true;
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    phases.mark("unpublish");
    // A namespace berth made is released first: with it goes the container's side of every
    // veth pair, and the kernel deletes the pairs in its namespace clean-up work rather than
    // making this process wait for a synchronous link deletion (endpoint::HostEnd).
    // Another runtime's namespace stays: its pairs go to a running agent (crate::reap).
    let mut host_end = endpoint::HostEnd::Delete;
    if let Some(p) = c.netns.as_ref().filter(|_| c.owner.is_none()) {
        match netns::remove(std::path::Path::new(p)) {
            Ok(()) => host_end = endpoint::HostEnd::Released,
            Err(e) => errors.push(format!("remove network namespace {p}: {e}")),
        }
    } else if handoff {
        host_end = endpoint::HostEnd::Handoff;
    }
    phases.mark("netns");
    for ep in eps {
        let net = engine
            .store
            .read(|tx| -> Result<_> { Ok(tx.network(&ep.network_id)?) });
        match net {
            Ok(Some(net)) => errors.extend(endpoint::detach(
                &engine.paths,
                &mut engine.store,
                &net,
                ep,
                fw.as_mut(),
                host_end,
                !fast_done,
            )),
            Ok(None) => errors.push(format!(
                "network {} of endpoint {} is gone",
                ep.network_id, ep.host_ifname
            )),
            Err(e) => errors.push(e.to_string()),
        }
        phases.mark("endpoint");
    }
    let dir = engine.paths.container_dir(&c.id);
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            errors.push(format!("remove {}: {e}", dir.display()))
        }
        _ => {}
    }
    if let Err(e) = engine
        .store
        .write(|tx| -> Result<()> { Ok(tx.delete_container(&c.id)?) })
    {
        errors.push(e.to_string());
    }
    phases.mark("files-row");
    if host_end == endpoint::HostEnd::Handoff {
        let reap = crate::reap::Reap {
            links: eps.iter().map(|e| e.host_ifname.clone()).collect(),
            networks: eps.iter().map(|e| e.network_id.clone()).collect(),
            ports: relayed.iter().map(|r| (r.proto, r.host_port)).collect(),
        };
        // The nf_tables socket goes along: its last close waits for the grace period of
        // the element deletions (crate::reap), which the agent's thread can wait out.
        let close: Vec<_> = fw.as_ref().map(|f| f.as_fd()).into_iter().collect();
        // An agent that went away meanwhile: do it here after all.
        if !crate::agent::reap(&engine.paths, &reap, t0.elapsed(), &close) {
            errors.extend(crate::reap::run(engine, &reap));
        }
    } else if !eps.is_empty() {
        crate::agent::notify_if_running(&engine.paths, Some(("teardown", t0.elapsed())));
    }
    phases.mark("agent");
    drop(fw);
    phases.mark("fw-close");
    match errors.is_empty() {
        true => Ok(()),
        false => Err(Error::Incomplete(errors)),
    }
}

/// Removes a container's port elements and flushes their conntrack entries. Its rows go
/// with the container's row. Returns the `[::1]` relays those ports had.
///
/// The fast-path elements of `leaving` (endpoints about to go) go in the same batch: begun
/// first in a teardown, the kernel's clean-up of that commit (an RCU grace period, which the
/// process's exit would wait for) passes while the links go.
pub(crate) fn unpublish(
    engine: &mut Engine,
    fw: &mut Firewall,
    c: &Container,
    eps: &[Endpoint],
    leaving: &[Endpoint],
) -> Result<Vec<ports::relay::Relay>> {
    let (rows, nets, fast) = engine.store.read(|tx| -> Result<_> {
        let rows = tx.ports_of_container(&c.id)?;
        // The endpoints' networks say which endpoint the ports lead into.
        let nets = match rows.is_empty() && leaving.is_empty() {
            true => BTreeMap::new(),
            false => tx.networks_of(eps)?,
        };
        let mut fast = Update::new();
        for ep in leaving {
            if let Some(net) = nets.get(&ep.network_id) {
                crate::endpoint::leave_fast_path_in(tx, net, ep, &mut fast)?;
            }
        }
        Ok((rows, nets, fast))
    })?;
    if rows.is_empty() {
        crate::fw::apply_installed(Some(fw), &fast)?;
        return Ok(Vec::new());
    }
    let relays = rows
        .iter()
        .filter_map(|p| ports::relay::relay_of(p, eps, &nets))
        .collect();
    let Some(ep) = crate::fw::published_endpoint(eps, &nets) else {
        crate::fw::apply_installed(Some(fw), &fast)?;
        return Ok(relays);
    };
    let (v4, v6) = ports::targets(std::slice::from_ref(ep));
    let elements = ports::elements(&rows, v4, v6);
    // Element counters say whether any connection was ever translated to this container
    // through these ports; when none was, the conntrack table (which a flush has to walk
    // whole, ~262144 buckets) cannot hold an entry of theirs.
    let mut used = None;
    let t = Instant::now();
    if fw.is_installed()? {
        used = fw.ports_used(&elements).unwrap_or_else(|e| {
            tracing::debug!("{e}");
            None
        });
        let counted = t.elapsed().as_micros() as u64;
        let mut fast = fast;
        fw.apply(fast.remove_ports(&elements))?;
        tracing::debug!(target: "berth::timing", verb = "teardown", phase = "counters", us = counted);
        tracing::debug!(target: "berth::timing", verb = "teardown", phase = "elements", us = t.elapsed().as_micros() as u64 - counted);
    }
    let t = Instant::now();
    let flushed = match used {
        Some(0) => 0,
        _ => ports::flush_conntrack(&elements)?,
    };
    tracing::debug!(target: "berth::timing", verb = "teardown", phase = "conntrack", us = t.elapsed().as_micros() as u64, flushed);
    Ok(relays)
}
