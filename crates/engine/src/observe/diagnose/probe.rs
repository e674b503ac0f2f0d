//! The last step of a walk: a TCP connection opened from inside SRC's network namespace
//! (a thread that entered it, see `berth_kernel::netns::run_in`), or from the host's.

use std::io::ErrorKind;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

/// How long the probe waits for an answer.
pub(crate) const TIMEOUT: Duration = Duration::from_secs(2);

/// What the probe saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Probe {
    /// The handshake completed.
    Open,
    /// Connection refused: the destination answered, nothing listens there.
    Refused,
    /// No answer within [`TIMEOUT`] (something drops the packets).
    Silent,
    /// Another error (unreachable network or host, ...).
    Failed(String),
}

fn connect(addr: SocketAddr) -> Probe {
    match TcpStream::connect_timeout(&addr, TIMEOUT) {
        Ok(_) => Probe::Open,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => Probe::Refused,
        Err(e) if e.kind() == ErrorKind::TimedOut || e.kind() == ErrorKind::WouldBlock => {
            Probe::Silent
        }
        Err(e) => Probe::Failed(e.to_string()),
    }
}

/// Connects to `addr` from inside the namespace at `netns`, or from the caller's namespace
/// when `netns` is `None`.
pub(crate) fn tcp(netns: Option<&str>, addr: SocketAddr) -> Probe {
    let Some(path) = netns else {
        return connect(addr);
    };
    let ns = match berth_kernel::netns::open(Path::new(path)) {
        Ok(ns) => ns,
        Err(e) => return Probe::Failed(format!("open network namespace {path}: {e}")),
    };
    match berth_kernel::netns::run_in(&ns, move || connect(addr)) {
        Ok(p) => p,
        Err(e) => Probe::Failed(format!("enter network namespace {path}: {e}")),
    }
}
