//! The WAL checkpointer. While the agent runs, every other berth process leaves checkpoints
//! to it (`berth_store::Checkpoints::Elsewhere`, chosen by `Engine::open`): copying the WAL
//! into the database file costs `fsync`s, several ms on a disk, which a door call would
//! otherwise pay every few calls (seen as `do_fsync` in podman's `sched_switch` stacks).
//! This thread, on a connection of its own, checkpoints whenever the WAL has grown past
//! [`PAST`] pages; it never blocks a reader or writer (`PASSIVE`). Each checkpoint costs the
//! next writer one `fsync` (of the WAL's new header), and a WAL starts over only when no
//! reader is in it at that moment (the agent's own reloads often are): a low threshold gives
//! many chances to start over long before the other processes' own bound
//! ([`berth_store::WAL_UNATTENDED_PAGES`]). A threshold of 500 left too few: under load the
//! WAL reached that bound first (`podman_netavark.rs`'s WAL test, in CI).

use berth_engine::Paths;
use berth_store::{Checkpoints, Store};
use std::time::Duration;

/// How often the WAL's length is looked at (one read of the WAL index's header).
const INTERVAL: Duration = Duration::from_millis(200);

/// WAL frames past which it checkpoints: what a process on its own checkpoints at.
const PAST: u32 = berth_store::WAL_CHECKPOINT_PAGES;

/// Starts the thread, with its connection open before it returns.
pub(crate) fn spawn(paths: &Paths) -> Result<(), berth_store::Error> {
    let mut store = Store::open_with(&paths.root, Checkpoints::Here)?;
    std::thread::Builder::new()
        .name("checkpoint".into())
        .spawn(move || loop {
            std::thread::sleep(INTERVAL);
            match store.checkpoint_past(PAST) {
                Ok(Some((frames, copied))) => tracing::debug!(frames, copied, "checkpoint"),
                Ok(None) => {}
                Err(e) => tracing::warn!("checkpoint: {e}"),
            }
        })
        .map_err(|e| berth_store::Error::Io {
            op: "start the checkpoint thread".into(),
            source: e,
        })?;
    Ok(())
}
