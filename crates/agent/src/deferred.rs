//! Deferred reloads: the changes nothing waits for (a teardown's, a setup's past its ports),
//! gathered into one reload once the control socket has been quiet for [`QUIET`], or at the
//! latest [`MAX_DEFER`] after the first of them.
//!
//! A reload re-reads the whole store, so its cost grows with the containers on the host
//! (27 ms at 1000, against 2.4 ms at 100, before this). Run after each of a burst of door
//! calls, it made every call of the burst wait for the previous call's reload: the runtime's
//! setup time grew with the host's size. Gathered, a burst pays for one reload at its end
//! (and one per [`MAX_DEFER`] while it lasts).

use crate::State;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long the control socket must be quiet before a deferred reload runs.
pub(crate) const QUIET: Duration = Duration::from_millis(20);
/// How long a deferred reload waits at most, however busy the socket.
pub(crate) const MAX_DEFER: Duration = Duration::from_secs(1);

/// The pending reload, shared by the control thread (which asks for it) and the reloader.
#[derive(Default)]
pub(crate) struct Deferred {
    pending: Mutex<Pending>,
    wake: Condvar,
}

#[derive(Default)]
struct Pending {
    /// When the oldest change not yet reloaded was asked for.
    first: Option<Instant>,
    /// The last request on the control socket.
    last: Option<Instant>,
}

impl Deferred {
    /// Asks for a reload, which runs once the socket is quiet.
    pub(crate) fn request(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        p.first.get_or_insert(now);
        p.last = Some(now);
        self.wake.notify_one();
    }

    /// A request came in: the socket is not quiet.
    pub(crate) fn touch(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.last = Some(Instant::now());
    }

    /// A full reload just ran: it read every change asked for before it.
    pub(crate) fn done(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.first = None;
    }

    /// Waits until a reload is due, and takes it.
    fn take_due(&self) {
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let Some(first) = p.first else {
                p = self.wake.wait(p).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let quiet_at = p.last.map_or(first, |l| l.max(first)) + QUIET;
            let due = quiet_at.min(first + MAX_DEFER);
            let now = Instant::now();
            if now >= due {
                p.first = None;
                return;
            }
            p = self
                .wake
                .wait_timeout(p, due - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// Starts the reloader thread: each due reload locks the state and re-reads the store.
pub(crate) fn spawn(deferred: Arc<Deferred>, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("reloader".into())
        .spawn(move || loop {
            deferred.take_due();
            let mut st = state.lock().unwrap_or_else(|e| e.into_inner());
            if let Ok(Err(e)) | Err(e) = crate::control::reload(&mut st) {
                tracing::warn!("deferred reload: {e}");
            }
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reload_waits_for_quiet_then_runs_once() {
        let d = Deferred::default();
        d.request();
        let t = Instant::now();
        d.take_due();
        assert!(t.elapsed() >= QUIET - Duration::from_millis(1));
        assert!(d.pending.lock().unwrap().first.is_none());
    }

    #[test]
    fn a_busy_socket_defers_it_at_most_max_defer() {
        let d = Arc::new(Deferred::default());
        d.request();
        let start = Instant::now();
        let busy = {
            let d = Arc::clone(&d);
            std::thread::spawn(move || {
                while start.elapsed() < MAX_DEFER * 2 {
                    d.touch();
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        d.take_due();
        let waited = start.elapsed();
        assert!(waited >= MAX_DEFER - Duration::from_millis(1), "{waited:?}");
        assert!(waited < MAX_DEFER * 2, "{waited:?}");
        busy.join().unwrap();
    }

    #[test]
    fn a_full_reload_takes_the_pending_one() {
        let d = Deferred::default();
        d.request();
        d.done();
        assert!(d.pending.lock().unwrap().first.is_none());
    }
}
