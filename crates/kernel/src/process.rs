//! Container processes: isolation applied between fork and exec, and
//! liveness checks that survive pid reuse.

use std::ffi::CString;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::fd::FromRawFd;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use crate::netns::cstring;
use crate::{Error, Result};

/// Longest hostname the kernel accepts (`HOST_NAME_MAX`).
const HOST_NAME_MAX: usize = 64;

/// What a container process needs before `exec`. Applied in the forked
/// child by [`apply`], in this order: enter `netns`, unshare UTS and mount
/// namespaces, set the hostname, make `/` recursively private, bind the
/// files, `setsid`.
#[derive(Debug, Default)]
pub struct Isolation {
    /// Network namespace to enter (`setns`); `None` keeps the caller's.
    pub netns: Option<File>,
    /// Give the child its own UTS namespace (required for `hostname`).
    pub new_uts: bool,
    /// Hostname to set inside the new UTS namespace.
    pub hostname: Option<String>,
    /// Give the child its own mount namespace (required for `bind_files`).
    /// `/` is made recursively private first, so nothing the child mounts
    /// propagates back to the host.
    pub new_mount_ns: bool,
    /// Plain bind mounts `(source, destination)` of single files, e.g. our
    /// resolv.conf over `/etc/resolv.conf`. A destination that is a symlink
    /// is resolved (when [`apply`] runs) and the bind goes onto its target;
    /// a destination that does not exist is skipped.
    pub bind_files: Vec<(PathBuf, PathBuf)>,
    /// Start a new session (`setsid`), detaching from the caller's terminal.
    pub new_session: bool,
}

/// Everything the child uses, prepared before fork: the closure below runs
/// between fork and exec, where it must not allocate or lock.
struct Prepared {
    netns: Option<File>,
    unshare_flags: libc::c_int,
    hostname: Option<Vec<u8>>,
    private_root: bool,
    binds: Vec<(CString, CString)>,
    new_session: bool,
}

fn prepare(iso: Isolation) -> Result<Prepared> {
    if iso.hostname.is_some() && !iso.new_uts {
        return Err(Error::Invalid(
            "a hostname needs a new UTS namespace (new_uts)".into(),
        ));
    }
    if !iso.bind_files.is_empty() && !iso.new_mount_ns {
        return Err(Error::Invalid(
            "bind_files need a new mount namespace (new_mount_ns)".into(),
        ));
    }
    let hostname = match iso.hostname {
        Some(name) => {
            if name.is_empty() || name.len() > HOST_NAME_MAX || name.contains('\0') {
                return Err(Error::Invalid(format!("hostname {name:?}")));
            }
            Some(name.into_bytes())
        }
        None => None,
    };
    let mut binds = Vec::new();
    for (src, dst) in iso.bind_files {
        fs::metadata(&src).map_err(|e| Error::io(format!("bind source {}", src.display()), e))?;
        let dst = match fs::canonicalize(&dst) {
            Ok(resolved) => resolved,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                tracing::debug!(dst = %dst.display(), "bind destination missing; skipped");
                continue;
            }
            Err(e) => {
                return Err(Error::io(
                    format!("resolve bind destination {}", dst.display()),
                    e,
                ))
            }
        };
        binds.push((cstring(&src)?, cstring(&dst)?));
    }
    let mut unshare_flags = 0;
    if iso.new_uts {
        unshare_flags |= libc::CLONE_NEWUTS;
    }
    if iso.new_mount_ns {
        unshare_flags |= libc::CLONE_NEWNS;
    }
    Ok(Prepared {
        netns: iso.netns,
        unshare_flags,
        hostname,
        private_root: iso.new_mount_ns,
        binds,
        new_session: iso.new_session,
    })
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

impl Prepared {
    /// Runs in the forked child. Only system calls; no allocation.
    fn run(&self) -> io::Result<()> {
        // The container starts with default signal dispositions and no signal blocked,
        // whatever its caller ignored (a shell's background job ignores SIGINT) or blocked
        // (a foreground `berth run` blocks termination signals to forward them), as a
        // container runtime's init does.
        for sig in 1..libc::SIGRTMIN() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                // SAFETY: signal() with SIG_DFL installs no handler; invalid numbers fail.
                unsafe { libc::signal(sig, libc::SIG_DFL) };
            }
        }
        // SAFETY: sigset_t is plain data that sigemptyset initialises; sigprocmask reads it
        // and takes NULL for the old mask.
        check(unsafe {
            let mut empty: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut empty);
            libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut())
        })?;
        if let Some(ns) = &self.netns {
            // SAFETY: the fd is owned by `self` and open; setns takes no pointers.
            check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) })?;
        }
        if self.unshare_flags != 0 {
            // SAFETY: unshare takes no pointers; the child is single-threaded.
            check(unsafe { libc::unshare(self.unshare_flags) })?;
        }
        if let Some(name) = &self.hostname {
            // SAFETY: the pointer and length describe `name`, alive for the call.
            check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })?;
        }
        if self.private_root {
            // SAFETY: target is a static NUL-terminated string; source, fstype
            // and data may be NULL when only changing propagation.
            check(unsafe {
                libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                )
            })?;
        }
        for (src, dst) in &self.binds {
            // SAFETY: both strings are NUL-terminated and owned by `self`;
            // fstype and data may be NULL for MS_BIND.
            check(unsafe {
                libc::mount(
                    src.as_ptr(),
                    dst.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            })?;
        }
        if self.new_session {
            // SAFETY: setsid takes no arguments.
            check(unsafe { libc::setsid() })?;
        }
        Ok(())
    }
}

/// Configures `cmd` so that the child applies `iso` after fork and before
/// exec. The caller then spawns `cmd`; a failing step makes `spawn` fail
/// with that step's OS error.
pub fn apply(cmd: &mut Command, iso: Isolation) -> Result<()> {
    let prepared = prepare(iso)?;
    // SAFETY: the closure runs in the child between fork and exec. It only
    // makes async-signal-safe system calls on data prepared before the fork
    // (fds, C strings, byte buffers) and does not allocate or take locks.
    unsafe {
        cmd.pre_exec(move || prepared.run());
    }
    Ok(())
}

/// Parses `/proc/PID/stat`: the state letter (field 3) and the start time
/// in clock ticks since boot (field 22). The command name (field 2) may
/// contain spaces and parentheses, so parsing starts after the last `)`.
pub(crate) fn parse_stat(stat: &str) -> Option<(char, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    // Fields 4..=21 come next; field 22 is the 19th after the state.
    let start = fields.nth(18)?.parse().ok()?;
    Some((state, start))
}

fn read_stat(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, clock
/// ticks since boot), to tell it apart from a later process that reuses the
/// pid; `None` if there is no such process.
pub fn start_time(pid: i32) -> Option<u64> {
    read_stat(pid).map(|(_, start)| start)
}

/// True if `pid` is running and is the process that started at
/// `start_time`. Zombies (exited, not yet reaped) count as not alive.
pub fn is_alive(pid: i32, start_time: u64) -> bool {
    matches!(read_stat(pid), Some((state, start)) if start == start_time && state != 'Z' && state != 'X')
}

/// Waits up to `timeout` for process `pid` (the one that started at `start_time`) to exit;
/// true once it has (or was never there). Woken by the exit itself (a pidfd becomes
/// readable when its process ends), not by polling; kernels without `pidfd_open` fall back
/// to checking every millisecond.
pub fn wait_exit(pid: i32, start_time: u64, timeout: std::time::Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    if pid <= 0 {
        return true;
    }
    // SAFETY: pidfd_open takes a pid and flags, no pointers; the result is a new fd we own.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) } as i32;
    if fd >= 0 {
        // SAFETY: fd was just returned by pidfd_open and is owned by nothing else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        // The pid may have been reused between the caller's check and the open.
        if !is_alive(pid, start_time) {
            return true;
        }
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            let ms = left.as_millis().min(i32::MAX as u128) as i32;
            // SAFETY: p is a valid pollfd for the duration of the call; nfds is 1.
            let rc = unsafe { libc::poll(&mut p, 1, ms) };
            if rc > 0 {
                return true;
            }
            if rc == 0 || std::time::Instant::now() >= deadline {
                return !is_alive(pid, start_time);
            }
            // EINTR: poll again.
        }
    }
    while is_alive(pid, start_time) {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    true
}

/// Sends `signal` to process `pid` (`kill -SIGNAL PID`). A missing process
/// is an error with [`Error::is_not_found`]. Only single processes: pids
/// that would address process groups (0 and negative) are refused.
pub fn kill(pid: i32, signal: i32) -> Result<()> {
    if pid <= 0 {
        return Err(Error::Invalid(format!(
            "kill pid {pid}: not a single process"
        )));
    }
    // SAFETY: kill takes no pointers.
    if unsafe { libc::kill(pid, signal) } != 0 {
        return Err(Error::last_os(format!(
            "send signal {signal} to process {pid}"
        )));
    }
    Ok(())
}

/// Sends `signal` to the process group led by `pgid` (`kill(-pgid)`): a container's command
/// and the processes it started. Not-found (no such group) stays typed.
pub fn kill_group(pgid: i32, signal: i32) -> Result<()> {
    if pgid <= 1 {
        return Err(Error::Invalid(format!(
            "kill process group {pgid}: not a process group berth started"
        )));
    }
    // SAFETY: kill takes no pointers; -pgid with pgid > 1 names one process group.
    if unsafe { libc::kill(-pgid, signal) } != 0 {
        return Err(Error::last_os(format!(
            "send signal {signal} to process group {pgid}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_odd_command_names() {
        let stat = "1234 (a) b) c) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615";
        assert_eq!(parse_stat(stat), Some(('S', 98765)));
        assert_eq!(parse_stat("1 (x) S 1 2"), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn own_process_is_alive() {
        let pid = std::process::id() as i32;
        let start = start_time(pid).unwrap();
        assert!(is_alive(pid, start));
        assert!(!is_alive(pid, start + 1));
        assert_eq!(start_time(-1), None);
        kill(pid, 0).unwrap();
    }

    #[test]
    fn kill_refuses_groups_and_types_missing_processes() {
        assert!(matches!(kill(0, 0), Err(Error::Invalid(_))));
        assert!(matches!(kill(-1, 0), Err(Error::Invalid(_))));
        // pid_max is at most 2^22, so this pid cannot exist.
        assert!(kill(i32::MAX, 0).unwrap_err().is_not_found());
    }

    #[test]
    fn isolation_is_validated_before_fork() {
        let iso = Isolation {
            hostname: Some("c1".into()),
            ..Isolation::default()
        };
        assert!(matches!(prepare(iso), Err(Error::Invalid(_))));
        let iso = Isolation {
            bind_files: vec![("/etc/hostname".into(), "/etc/hosts".into())],
            ..Isolation::default()
        };
        assert!(matches!(prepare(iso), Err(Error::Invalid(_))));
        let iso = Isolation {
            new_mount_ns: true,
            bind_files: vec![("/etc/hostname".into(), "/nonexistent/berth".into())],
            ..Isolation::default()
        };
        assert!(prepare(iso).unwrap().binds.is_empty());
    }
}
