//! The reaper thread: deletes what the doors' teardowns handed over (`reap` on the control
//! socket, see `berth_engine::reap`) so that the runtime's call does not wait for the
//! kernel's link deletions. One job at a time, in arrival order, with its own engine (the
//! control thread keeps answering meanwhile).

use berth_engine::reap::{self, Reap};
use berth_engine::{Engine, Paths};
use std::sync::mpsc::{channel, Sender};

/// Starts the thread; jobs sent on the returned channel run in order.
pub(crate) fn spawn(paths: Paths) -> std::io::Result<Sender<Reap>> {
    let (tx, rx) = channel::<Reap>();
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || {
            let mut engine = None;
            for job in rx {
                if engine.is_none() {
                    engine = Engine::open(paths.clone())
                        .map_err(|e| tracing::warn!("reaper: open the store: {e}"))
                        .ok();
                }
                let Some(engine) = engine.as_mut() else {
                    continue;
                };
                for e in reap::run(engine, &job) {
                    tracing::warn!("reaper: {e}");
                }
            }
        })?;
    Ok(tx)
}
