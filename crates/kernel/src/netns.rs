//! Network namespaces: create persistent ones at any path, remove them,
//! open them, and run code inside one.
//!
//! Namespace membership is per thread. Code that must run inside another
//! namespace runs on a dedicated thread ([`run_in`]). The one exception is
//! [`open_in`], which makes a socket there: the calling thread enters for the
//! `socket` call alone and comes straight back (or the process aborts).

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;
use std::thread;

use crate::{Error, Result};

/// The calling thread's own network namespace.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";
/// `statfs.f_type` of nsfs, the filesystem of namespace files.
const NSFS_MAGIC: i64 = 0x6e73_6673;
/// `ioctl(fd, NS_GET_NSTYPE)`: `_IO(0xb7, 0x3)`.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

pub(crate) fn cstring(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::Invalid(format!("path {} contains a NUL byte", path.display())))
}

/// Creates a new, persistent network namespace bound at `path`, like
/// `ip netns add` but at any path (`ip netns add` uses `/run/netns/NAME`).
///
/// Creates the file (it must not exist yet: [`Error::is_exists`]), then a
/// dedicated thread `unshare(CLONE_NEWNET)`s and bind-mounts its
/// `/proc/thread-self/ns/net` onto the file. The namespace lives as long as
/// that mount. It starts with only `lo`, which is down. On failure the file
/// is removed again.
pub fn create(path: &Path) -> Result<()> {
    create_with(path, || ())
}

/// [`create`], then runs `init` inside the new namespace on the thread that made it, and
/// returns its value: e.g. set sysctls and open netlink sockets there (they stay bound to
/// the new namespace) without spawning a second thread. `init` does not run when creating
/// the namespace fails.
pub fn create_with<T: Send + 'static>(
    path: &Path,
    init: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    let target = cstring(path)?;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(path)
        .map_err(|e| {
            Error::io(
                format!("create network namespace file {}", path.display()),
                e,
            )
        })?;
    let op = format!("create network namespace at {}", path.display());
    let op_thread = op.clone();
    let result = thread::Builder::new()
        .name("berth-netns-new".into())
        .spawn(move || -> Result<T> {
            // SAFETY: unshare takes no pointers. It only changes the network
            // namespace of this thread, which ends right after `init`.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(Error::last_os(format!("{op_thread}: unshare")));
            }
            let source = CString::new(THREAD_NETNS).expect("constant has no NUL");
            // SAFETY: both paths are valid NUL-terminated strings that live
            // across the call; fstype and data may be NULL for MS_BIND.
            let rc = unsafe {
                libc::mount(
                    source.as_ptr(),
                    target.as_ptr(),
                    std::ptr::null(),
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            if rc != 0 {
                return Err(Error::last_os(format!("{op_thread}: bind mount")));
            }
            Ok(init())
        })
        .map_err(|e| Error::io(format!("{op}: spawn thread"), e))
        .and_then(|handle| match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        });
    if result.is_err() {
        let _ = fs::remove_file(path);
    }
    result
}

/// Removes a namespace created by [`create`]: `umount2(MNT_DETACH)` then
/// unlink, like `ip netns delete`. Succeeds if it is already gone. The
/// namespace itself lives on while a process or open file still uses it.
pub fn remove(path: &Path) -> Result<()> {
    let target = cstring(path)?;
    // SAFETY: target is a valid NUL-terminated string for the call.
    let rc = unsafe { libc::umount2(target.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) };
    if rc != 0 {
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENOENT) => return Ok(()),
            // Not a mount point: a leftover file from an interrupted create.
            Some(libc::EINVAL) => {}
            _ => {
                return Err(Error::io(
                    format!("unmount network namespace {}", path.display()),
                    err,
                ))
            }
        }
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(
            format!("remove network namespace file {}", path.display()),
            e,
        )),
    }
}

/// Opens the network namespace file at `path` (a mount made by [`create`],
/// `/run/netns/NAME` or `/proc/PID/ns/net`). Fails with
/// [`Error::Invalid`] if it is not a network namespace.
pub fn open(path: &Path) -> Result<File> {
    let file = File::open(path)
        .map_err(|e| Error::io(format!("open network namespace {}", path.display()), e))?;
    check_netns(&file, path)?;
    Ok(file)
}

fn check_netns(file: &File, path: &Path) -> Result<()> {
    let not_netns = || Error::Invalid(format!("{} is not a network namespace", path.display()));
    // SAFETY: statfs is plain old data; all-zero is a valid value.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open for the duration of the call and `stat` is a
    // valid, writable statfs.
    if unsafe { libc::fstatfs(file.as_raw_fd(), &mut stat) } != 0 {
        return Err(Error::last_os(format!("statfs {}", path.display())));
    }
    #[allow(clippy::unnecessary_cast)] // f_type's type differs between targets
    if stat.f_type as i64 != NSFS_MAGIC {
        return Err(not_netns());
    }
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the fd.
    let kind = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE as _) };
    if kind < 0 {
        return Err(Error::last_os(format!(
            "query namespace type of {}",
            path.display()
        )));
    }
    if kind != libc::CLONE_NEWNET {
        return Err(not_netns());
    }
    Ok(())
}

/// The calling thread's current network namespace
/// (`/proc/thread-self/ns/net`).
pub fn current() -> Result<File> {
    File::open(THREAD_NETNS).map_err(|e| Error::io("open the current network namespace", e))
}

/// The inode number of a namespace file; two files refer to the same
/// namespace when their inodes are equal.
pub fn inode(ns: &File) -> Result<u64> {
    ns.metadata()
        .map(|m| m.ino())
        .map_err(|e| Error::io("stat network namespace", e))
}

/// The inode number of the namespace at `path` (following
/// `/proc/.../ns/net` links).
pub fn inode_of(path: &Path) -> Result<u64> {
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|e| Error::io(format!("stat network namespace {}", path.display()), e))
}

/// Moves the current thread into a network namespace and back again on
/// drop, whatever way the scope is left.
struct Entered {
    original: File,
}

impl Entered {
    fn enter(ns: &File) -> Result<Entered> {
        let original = current()?;
        setns(ns, "enter network namespace")?;
        Ok(Entered { original })
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        if let Err(err) = setns(&self.original, "return to the original network namespace") {
            // The thread is a dedicated one that ends right after this, so
            // nothing else runs in the wrong namespace.
            tracing::error!(%err, "cannot leave network namespace");
        }
    }
}

fn setns(ns: &File, op: &str) -> Result<()> {
    // SAFETY: setns takes an fd that stays open for the call and a flag.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(Error::last_os(op));
    }
    Ok(())
}

/// Opens a socket (or anything else bound to a namespace when made) inside `ns`, on the
/// calling thread: `setns` into `ns`, `open`, `setns` back. No thread is spawned, so it
/// costs two system calls instead of a thread's start and join (~150 µs per container).
///
/// `open` must only make the object: it runs with the calling thread in `ns`, and other
/// threads of the process are not affected. Should the thread fail to return to its own
/// namespace (the kernel refusing a namespace it was just in), the process aborts rather
/// than go on in the wrong one.
pub fn open_in<T>(ns: &File, open: impl FnOnce() -> T) -> Result<T> {
    let original = current()?;
    setns(ns, "enter network namespace")?;
    let made = std::panic::catch_unwind(std::panic::AssertUnwindSafe(open));
    if let Err(err) = setns(&original, "return to the original network namespace") {
        tracing::error!(%err, "cannot leave a network namespace: aborting");
        std::process::abort();
    }
    match made {
        Ok(v) => Ok(v),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Runs `f` inside the network namespace `ns` and returns its value.
///
/// `f` runs on a new thread that enters `ns` (`setns(CLONE_NEWNET)`) behind
/// a guard whose drop switches back to the thread's original namespace even
/// if `f` panics; the calling thread never changes namespace. Sockets that
/// `f` opens stay bound to `ns`. A panic in `f` is resumed on the caller.
pub fn run_in<T: Send + 'static>(ns: &File, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let ns = ns
        .try_clone()
        .map_err(|e| Error::io("duplicate network namespace fd", e))?;
    let handle = thread::Builder::new()
        .name("berth-netns".into())
        .spawn(move || -> Result<T> {
            let _entered = Entered::enter(&ns)?;
            Ok(f())
        })
        .map_err(|e| Error::io("spawn thread for network namespace", e))?;
    match handle.join() {
        Ok(result) => result,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_is_a_network_namespace() {
        let ns = open(Path::new(THREAD_NETNS)).unwrap();
        assert_eq!(
            inode(&ns).unwrap(),
            inode_of(Path::new(THREAD_NETNS)).unwrap()
        );
    }

    #[test]
    fn other_files_are_rejected() {
        let err = open(Path::new("/proc/self/ns/uts")).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        let err = open(Path::new("/proc/self/status")).unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        let err = open(Path::new("/nonexistent/berth")).unwrap_err();
        assert!(err.is_not_found());
    }
}
