//! The reaper thread: deletes what the doors' teardowns handed over (`reap` on the control
//! socket, see `berth_engine::reap`) so that the runtime's call does not wait for the
//! kernel's link deletions. Jobs run in arrival order with the thread's own engine (the
//! control thread keeps answering meanwhile).
//!
//! Links go at once. An idle door network's bridge lingers for [`LINGER`] first: a runtime
//! that starts the next container on it within that time (`podman run --rm` in a loop)
//! finds it ready, and one that does not gets it removed shortly after, as netavark would.
//! `BERTH_BRIDGE_LINGER_MS` sets it (0: at once).
//!
//! A job may carry descriptors to close (a teardown's nf_tables socket, whose last close
//! waits out the RCU grace period of its element deletions): this thread closes them after
//! the job's link deletions, by which time that grace period has passed.

use berth_engine::reap::{self, Reap};
use berth_engine::{Engine, Paths};
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::sync::mpsc::{channel, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// How long an idle door network keeps its bridge.
pub(crate) const LINGER: Duration = Duration::from_millis(1000);

fn linger() -> Duration {
    std::env::var("BERTH_BRIDGE_LINGER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(LINGER, Duration::from_millis)
}

/// One hand-off: what to delete, and descriptors to close after.
pub(crate) struct Job {
    pub(crate) reap: Reap,
    pub(crate) close: Vec<OwnedFd>,
}

/// Starts the thread; jobs sent on the returned channel run in order.
pub(crate) fn spawn(paths: Paths) -> std::io::Result<Sender<Job>> {
    let (tx, rx) = channel::<Job>();
    let linger = linger();
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            let mut engine = None;
            // Networks to look at again, and when.
            let mut due: BTreeMap<String, Instant> = BTreeMap::new();
            loop {
                let wait = due
                    .values()
                    .min()
                    .map(|d| d.saturating_duration_since(Instant::now()));
                let job = match wait {
                    Some(w) => match rx.recv_timeout(w) {
                        Ok(job) => Some(job),
                        Err(RecvTimeoutError::Timeout) => None,
                        Err(RecvTimeoutError::Disconnected) => return,
                    },
                    None => match rx.recv() {
                        Ok(job) => Some(job),
                        Err(_) => return,
                    },
                };
                let now = Instant::now();
                let mut work = Reap::default();
                // Closed when this round ends, after its link deletions.
                let mut _close = Vec::new();
                if let Some(job) = job {
                    work.links = job.reap.links;
                    for n in job.reap.networks {
                        due.insert(n, now + linger);
                    }
                    _close = job.close;
                }
                let ready: Vec<String> = due
                    .iter()
                    .filter(|(_, d)| **d <= now)
                    .map(|(n, _)| n.clone())
                    .collect();
                for n in &ready {
                    due.remove(n);
                }
                work.networks = ready;
                if work.is_empty() {
                    continue;
                }
                if engine.is_none() {
                    engine = Engine::open(paths.clone())
                        .map_err(|e| tracing::warn!("reaper: open the store: {e}"))
                        .ok();
                }
                if let Some(engine) = engine.as_mut() {
                    for e in reap::run(engine, &work) {
                        tracing::warn!("reaper: {e}");
                    }
                }
            }
        })?;
    Ok(tx)
}
