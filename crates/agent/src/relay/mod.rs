//! The `[::1]` relay: the one piece of the data path in userspace (see
//! `berth_engine::ports::relay` for why NAT cannot serve `::1`).
//!
//! One listening socket per relayed host port, all on one tokio thread: each accepted TCP
//! connection is spliced to the container (`tcp`), each UDP client gets a socket of its own
//! towards the container that goes after an idle timeout (`udp`). No process and no rule per
//! port. At each reload the listener set is made to match the store: unchanged listeners are
//! kept, removed ones are closed (with their connections) before the answer goes back, new
//! ones are bound. A door's setup adds its container's listeners on their own (`add`; or
//! binds them itself and passes them over, `adopt`), and its teardown closes them
//! (`close_ports`), before the agent answers; the reload that
//! matches the whole set follows (the agent's `deferred`). If the agent dies, `[::1]` mappings stop until it is restarted; every
//! other address of a mapping stays kernel-only.

mod tcp;
#[cfg(test)]
mod tests;
mod udp;

use berth_engine::ports::relay::Relay;
use berth_engine::ports::spec::Proto;
use std::collections::{BTreeMap, BTreeSet};
use std::os::fd::OwnedFd;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::task::JoinHandle;

/// How long a UDP flow lives without a datagram either way (Docker's proxy: 90 s too).
const UDP_IDLE: Duration = Duration::from_secs(90);

/// The relay's listeners, by mapping.
pub(crate) struct Relays {
    rt: Handle,
    active: BTreeMap<Relay, JoinHandle<()>>,
}

impl Relays {
    /// Starts the relay thread (idle until the first listener).
    pub(crate) fn start() -> std::io::Result<Relays> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()?;
        let handle = rt.handle().clone();
        std::thread::Builder::new()
            .name("relay".into())
            .spawn(move || rt.block_on(std::future::pending::<()>()))?;
        Ok(Relays {
            rt: handle,
            active: BTreeMap::new(),
        })
    }

    /// How many host ports are relayed.
    pub(crate) fn len(&self) -> usize {
        self.active.len()
    }

    /// Makes the listeners match `want`. Removed ones are closed before this returns (so a
    /// removed port refuses connections at once); a listener that cannot be bound is
    /// reported and the others still change.
    pub(crate) fn set(&mut self, want: &[Relay]) -> Result<(), String> {
        let wanted: BTreeSet<&Relay> = want.iter().collect();
        let gone: Vec<Relay> = self
            .active
            .keys()
            .filter(|r| !wanted.contains(r))
            .copied()
            .collect();
        self.close(&gone);
        self.bind_all(want)
    }

    /// Adds `want` to the listeners, leaving the others as they are, except one on the same
    /// host port with another target (a mapping whose container went, not yet reloaded):
    /// that one is replaced. For a setup, which adds one container's ports.
    pub(crate) fn add(&mut self, want: &[Relay]) -> Result<(), String> {
        self.close_replaced(want);
        self.bind_all(want)
    }

    /// Closes the listeners on the host ports of `want` that lead elsewhere.
    fn close_replaced(&mut self, want: &[Relay]) {
        let replaced: Vec<Relay> = self
            .active
            .keys()
            .filter(|a| {
                want.iter()
                    .any(|r| r.proto == a.proto && r.host_port == a.host_port && r != *a)
            })
            .copied()
            .collect();
        self.close(&replaced);
    }

    /// Serves `given`: sockets a door bound on these relays' ports (`adopt-ports`), replacing
    /// a listener on the same host port with another target, as [`Relays::add`] does. A
    /// relay served already keeps its listener (the given socket is closed).
    pub(crate) fn adopt(&mut self, given: Vec<(Relay, OwnedFd)>) -> Result<(), String> {
        let want: Vec<Relay> = given.iter().map(|(r, _)| *r).collect();
        self.close_replaced(&want);
        let mut errors = Vec::new();
        for (r, fd) in given {
            if self.active.contains_key(&r) {
                continue;
            }
            match self.serve(&r, fd) {
                Ok(task) => {
                    tracing::debug!(listen = %r.listen(), target = %r.target, "relaying (adopted)");
                    self.active.insert(r, task);
                }
                Err(e) => errors.push(format!("relay {}/{}: {e}", r.listen(), r.proto.as_str())),
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("; ")),
        }
    }

    /// Closes the listeners on host ports `ports` (a torn-down container's), before returning.
    pub(crate) fn close_ports(&mut self, ports: &[(Proto, u16)]) {
        let gone: Vec<Relay> = self
            .active
            .keys()
            .filter(|a| ports.contains(&(a.proto, a.host_port)))
            .copied()
            .collect();
        self.close(&gone);
    }

    /// Closes the listeners of `gone` (and their connections) before returning.
    fn close(&mut self, gone: &[Relay]) {
        for r in gone {
            if let Some(task) = self.active.remove(r) {
                task.abort();
                // The task owns the socket: once it has ended, the port is closed.
                let _ = self.rt.block_on(task);
            }
        }
    }

    /// Binds each of `want` that has no listener yet.
    fn bind_all(&mut self, want: &[Relay]) -> Result<(), String> {
        let mut errors = Vec::new();
        for r in want {
            if self.active.contains_key(r) {
                continue;
            }
            match self.bind(r) {
                Ok(task) => {
                    tracing::debug!(listen = %r.listen(), target = %r.target, "relaying");
                    self.active.insert(*r, task);
                }
                // A host without ::1 (IPv6 off): nothing to relay. An explicit `-p [::1]:...`
                // was refused there by the engine's probe already.
                Err(e) if no_v6_loopback(&e) => {
                    tracing::debug!(listen = %r.listen(), "not relayed: {e}");
                }
                Err(e) => errors.push(format!("relay {}/{}: {e}", r.listen(), r.proto.as_str())),
            }
        }
        match errors.is_empty() {
            true => Ok(()),
            false => Err(errors.join("; ")),
        }
    }

    /// Binds the listening socket here (so a failure is reported to the door) and hands it
    /// to the relay thread.
    fn bind(&self, r: &Relay) -> std::io::Result<JoinHandle<()>> {
        // The same socket a door binds (`SO_REUSEADDR` on TCP listeners).
        self.serve(r, berth_engine::ports::relay::listen(r)?)
    }

    /// Hands `socket`, bound on `r`'s port, to the relay thread.
    fn serve(&self, r: &Relay, socket: OwnedFd) -> std::io::Result<JoinHandle<()>> {
        let _guard = self.rt.enter();
        match r.proto {
            Proto::Tcp => {
                let l = std::net::TcpListener::from(socket);
                l.set_nonblocking(true)?;
                let l = tokio::net::TcpListener::from_std(l)?;
                Ok(self.rt.spawn(tcp::serve(l, r.target)))
            }
            Proto::Udp => {
                let s = std::net::UdpSocket::from(socket);
                s.set_nonblocking(true)?;
                let s = tokio::net::UdpSocket::from_std(s)?;
                Ok(self.rt.spawn(udp::serve(s, r.target, UDP_IDLE)))
            }
            Proto::Sctp => Err(std::io::Error::other("no SCTP relay")),
        }
    }
}

fn no_v6_loopback(e: &std::io::Error) -> bool {
    berth_engine::ports::relay::no_v6_loopback(e)
}
