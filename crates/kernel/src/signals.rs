//! Passing the caller's termination signals on to a child it waits for.
//!
//! `berth run` in the foreground waits for the container's process. A Ctrl-C, SIGTERM or
//! SIGHUP aimed at berth must reach that process rather than kill berth before it can
//! record the exit status and honour `--rm`. [`Forwarder::start`] blocks the signals in the
//! calling thread (threads started later inherit the mask) and a dedicated thread takes them
//! with `sigwait` and sends each to the current target. [`crate::process::apply`] empties the
//! signal mask in the child, so the container itself blocks nothing.

use crate::{Error, Result};
use std::sync::{Arc, Mutex};

/// The pid signals go to, and a signal that arrived before there was one.
#[derive(Default)]
struct Target {
    pid: i32,
    pending: Option<i32>,
}

/// Forwards the chosen signals to a target pid for the rest of the process's life.
pub struct Forwarder {
    target: Arc<Mutex<Target>>,
}

fn send(pid: i32, sig: i32) {
    // SAFETY: kill takes no pointers; callers pass pid > 0, which names one process.
    unsafe { libc::kill(pid, sig) };
}

fn sigset(signals: &[i32]) -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigemptyset initialises it before any other use.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigemptyset(&mut set) };
    for s in signals {
        // SAFETY: as above; an invalid signal number only makes sigaddset fail.
        unsafe { libc::sigaddset(&mut set, *s) };
    }
    set
}

/// Blocks `signals` in the calling thread (threads started later inherit the mask).
fn block(signals: &[i32]) -> Result<libc::sigset_t> {
    let set = sigset(signals);
    // SAFETY: `set` is initialised; the old mask is not wanted (NULL).
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Error::Io {
            op: "block termination signals".into(),
            source: std::io::Error::from_raw_os_error(rc),
        });
    }
    Ok(set)
}

impl Forwarder {
    /// Blocks `signals` in the calling thread and starts the forwarding thread. Call it on
    /// the main thread before starting other threads that should not receive them.
    pub fn start(signals: &[i32]) -> Result<Forwarder> {
        let set = block(signals)?;
        let target = Arc::new(Mutex::new(Target::default()));
        let t = Arc::clone(&target);
        std::thread::Builder::new()
            .name("signal-forwarder".into())
            .spawn(move || loop {
                let mut sig: libc::c_int = 0;
                // SAFETY: `set` lives in this closure; `sig` is a valid out pointer.
                if unsafe { libc::sigwait(&set, &mut sig) } != 0 {
                    continue;
                }
                let mut target = t.lock().unwrap_or_else(|e| e.into_inner());
                match target.pid {
                    pid if pid > 0 => send(pid, sig),
                    // No child yet: deliver it as soon as there is one.
                    _ => target.pending = Some(sig),
                }
            })
            .map_err(|source| Error::Io {
                op: "start signal forwarding thread".into(),
                source,
            })?;
        Ok(Forwarder { target })
    }

    /// Sends every forwarded signal to `pid` from now on, starting with one that arrived
    /// before any target was set.
    pub fn set_target(&self, pid: i32) {
        let mut target = self.target.lock().unwrap_or_else(|e| e.into_inner());
        target.pid = pid;
        if let (Some(sig), true) = (target.pending.take(), pid > 0) {
            send(pid, sig);
        }
    }
}

/// Termination signals held for a long-running process (the agent) to wait for in order.
pub struct Termination {
    set: libc::sigset_t,
}

impl Termination {
    /// Blocks `signals` in the calling thread; threads started later inherit the mask, so
    /// only [`Termination::wait`] takes them. Call it on the main thread first.
    pub fn block(signals: &[i32]) -> Result<Termination> {
        Ok(Termination {
            set: block(signals)?,
        })
    }

    /// Waits for one of the signals and returns it.
    pub fn wait(&self) -> i32 {
        loop {
            let mut sig: libc::c_int = 0;
            // SAFETY: `self.set` is an initialised sigset_t; `sig` is a valid out pointer.
            if unsafe { libc::sigwait(&self.set, &mut sig) } == 0 {
                return sig;
            }
        }
    }
}
