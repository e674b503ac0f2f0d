//! The server: one thread running a single-threaded tokio runtime (TCP, forwarding) and,
//! per listen address, one thread blocked in `recvmmsg` on its UDP socket.
//!
//! UDP queries answered by berth or the cache never touch the runtime: the listener thread
//! receives, answers and sends. Blocking in the receive call instead of waiting in epoll
//! saves two system calls each time the socket runs dry, which under load is often
//! (measured: about a third more queries per second than a tokio receive loop). Each wake-up
//! takes every query already queued (up to `UDP_BATCH`, `recvmmsg(MSG_WAITFORONE)`) and
//! sends all their answers with one `sendmmsg`, where consecutive answers of one size to
//! one client go out as one UDP GSO send (`berth_kernel::udp`): the kernel routes, filters
//! and bridges them once and splits them into the separate datagrams at the client's
//! socket. The kernel's path of each answer was most of the server's CPU time; batching
//! and GSO halve the CPU time per query (bench/dns/README.md). Forwarded queries are
//! handed to the runtime, which sends their answers on the same socket.

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use berth_kernel::udp::{self, Received};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{oneshot, OwnedSemaphorePermit};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::timeout;

use crate::config::Config;
use crate::error::{Error, SnapshotError};
use crate::handler::{source, Action, Job, Shared};
use crate::log_limit::LogLimit;
use crate::metrics::Metrics;
use crate::records::{Container, Index, Snapshot};

/// How long closing a listener may take before `set_listeners` stops waiting for it.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Largest query read from UDP; anything longer is cut and answered FORMERR.
const UDP_QUERY_BUF: usize = 4096;
/// Most UDP queries taken (and answers sent) per system call.
const UDP_BATCH: usize = 32;
/// A UDP listener thread wakes up this often when idle, to notice it should stop even if
/// the wake-up by `shutdown` were lost.
const UDP_IDLE_WAKE: Duration = Duration::from_millis(500);
/// Stack of a UDP listener thread: the hot path needs a few KiB.
const UDP_THREAD_STACK: usize = 256 * 1024;

static SOCKET_LOG: LogLimit = LogLimit::new();

/// The embedded DNS server.
///
/// It owns a thread (`berth-dns`) running a single-threaded tokio runtime, plus one thread
/// per listen address for UDP (`berth-dns-udp`); its methods are synchronous and may be
/// called from any thread that is not itself inside an async runtime (they block briefly).
/// It serves nothing until it has listeners, and answers only forwarding until it has
/// records. Dropping it is [`Server::shutdown`].
pub struct Server {
    shared: Arc<Shared>,
    runtime: Handle,
    listeners: Mutex<BTreeMap<SocketAddr, Listener>>,
    /// Held while a snapshot is built and stored, so concurrent callers cannot store an
    /// older snapshot after a newer one. It holds a second copy of the served index once
    /// [`Server::add_container`] has made one: the two take each added container in turn.
    records: Mutex<Option<Index>>,
    serial: AtomicU32,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Listener {
    bound: SocketAddr,
    udp: UdpListener,
    tcp: AbortHandle,
    /// Receives one message per socket when it is closed.
    closed: mpsc::Receiver<()>,
}

struct UdpListener {
    socket: Weak<Owned<std::net::UdpSocket>>,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<()>,
}

impl UdpListener {
    /// Stops the thread and waits for it.
    fn close(self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(s) = self.socket.upgrade() {
            // Wakes the thread blocked in recvmmsg (Linux returns ENOTCONN for an
            // unconnected socket but still shuts it down and wakes its readers).
            let _ = socket2::SockRef::from(&s.inner).shutdown(std::net::Shutdown::Read);
        }
        let _ = self.thread.join();
    }
}

/// Sends on drop; declared after the socket it guards, so it fires once the socket is closed.
struct Owned<T> {
    inner: T,
    _closed: ClosedSignal,
}

struct ClosedSignal(mpsc::Sender<()>);

impl Drop for ClosedSignal {
    fn drop(&mut self) {
        let _ = self.0.send(());
    }
}

impl Server {
    /// Starts the server thread with an empty snapshot and no listeners.
    pub fn start(config: Config) -> Result<Server, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(Error::Start)?;
        let handle = runtime.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = thread::Builder::new()
            .name("berth-dns".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = stopped.await;
                });
                // Dropping the runtime drops every task and with them every socket.
                drop(runtime);
            })
            .map_err(Error::Start)?;
        let empty = Index::build(&Snapshot::default(), 0)?;
        Ok(Server {
            shared: Arc::new(Shared::new(config, empty)),
            runtime: handle,
            listeners: Mutex::new(BTreeMap::new()),
            records: Mutex::new(None),
            serial: AtomicU32::new(0),
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Replaces the records. Queries that arrive after this returns see the new snapshot;
    /// an invalid snapshot is refused and the previous one stays.
    pub fn set_records(&self, snapshot: &Snapshot) -> Result<(), SnapshotError> {
        let mut spare = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let index = Index::build(snapshot, serial)?;
        self.shared.records.store(Arc::new(index));
        *spare = None;
        Ok(())
    }

    /// Adds container `c` to the records: `snapshot` is the records last set or added to,
    /// with `c` appended (what [`Server::set_records`] would be given). Costs one container,
    /// whatever the number of containers, once a second copy of the index exists: the copy
    /// not served takes `c`, is served, and the one it replaces takes `c` in turn once no
    /// query holds it (queries hold it for one packet). The first call after
    /// [`Server::set_records`], or one whose old copy stays held (over 10 ms), builds from
    /// `snapshot` instead. `c` must not be in the records already (build anew with
    /// `set_records` then); on error nothing changes.
    pub fn add_container(&self, snapshot: &Snapshot, c: &Container) -> Result<(), SnapshotError> {
        let mut spare = self.records.lock().unwrap_or_else(|e| e.into_inner());
        let serial = self.serial.fetch_add(1, Ordering::Relaxed) + 1;
        let Some(mut next) = spare.take() else {
            self.shared
                .records
                .store(Arc::new(Index::build(snapshot, serial)?));
            *spare = Some(Index::build(snapshot, serial)?);
            return Ok(());
        };
        if let Err(e) = next.add_container(c) {
            // Nothing was added (its networks are checked first): the copy stays as it was.
            *spare = Some(next);
            return Err(e);
        }
        next.set_serial(serial);
        let mut old = self.shared.records.swap(Arc::new(next));
        let deadline = std::time::Instant::now() + std::time::Duration::from_millis(10);
        let old = loop {
            match Arc::try_unwrap(old) {
                Ok(index) => break Some(index),
                Err(_) if std::time::Instant::now() >= deadline => break None,
                Err(held) => {
                    old = held;
                    thread::yield_now();
                }
            }
        };
        *spare = match old {
            Some(mut index) => {
                index.add_container(c)?;
                index.set_serial(serial);
                Some(index)
            }
            None => Some(Index::build(snapshot, serial)?),
        };
        Ok(())
    }

    /// Makes the set of listen addresses `addrs` (UDP and TCP on each): binds the new ones
    /// and closes the ones not listed; listeners on addresses that stay are not touched.
    ///
    /// Addresses need not exist yet (IP_FREEBIND). Port 0 picks a free port, the same for
    /// UDP and TCP (see [`Server::listeners`]). An address that cannot be bound is reported
    /// in [`Error::Listen`] while all the others are applied; calling again retries it.
    pub fn set_listeners(&self, addrs: &[SocketAddr]) -> Result<(), Error> {
        let mut listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        let removed: Vec<SocketAddr> = listeners
            .keys()
            .filter(|a| !addrs.contains(a))
            .copied()
            .collect();
        let mut closing = Vec::new();
        for a in removed {
            if let Some(l) = listeners.remove(&a) {
                l.tcp.abort();
                l.udp.close();
                closing.push(l.closed);
            }
        }
        // Wait for the old sockets to be closed, so an address can be given back at once.
        for closed in closing {
            for _ in 0..2 {
                let _ = closed.recv_timeout(CLOSE_WAIT);
            }
        }
        let mut failures = Vec::new();
        for &a in addrs {
            if listeners.contains_key(&a) {
                continue;
            }
            match self.listen(a) {
                Ok(l) => {
                    tracing::debug!(address = %a, bound = %l.bound, "dns listener added");
                    listeners.insert(a, l);
                }
                Err(e) => failures.push((a, e)),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(Error::Listen(failures))
        }
    }

    /// The listen addresses as asked for, each with the address actually bound.
    pub fn listeners(&self) -> Vec<(SocketAddr, SocketAddr)> {
        let listeners = self.listeners.lock().unwrap_or_else(|e| e.into_inner());
        listeners.iter().map(|(a, l)| (*a, l.bound)).collect()
    }

    /// The server's metrics; register them with [`Metrics::register`].
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Stops serving: closes every listener and joins the server thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        let listeners =
            std::mem::take(&mut *self.listeners.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, l) in listeners {
            l.udp.close();
        }
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    fn listen(&self, addr: SocketAddr) -> io::Result<Listener> {
        let (udp, tcp, bound) = bind_pair(addr)?;
        let (tx, closed) = mpsc::channel();
        let tcp = {
            let _guard = self.runtime.enter();
            Owned {
                inner: TcpListener::from_std(tcp)?,
                _closed: ClosedSignal(tx.clone()),
            }
        };
        udp.set_nonblocking(false)?;
        udp.set_read_timeout(Some(UDP_IDLE_WAKE))?;
        let udp = Arc::new(Owned {
            inner: udp,
            _closed: ClosedSignal(tx),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let socket = Arc::downgrade(&udp);
        let thread = {
            let (shared, runtime, stop) = (self.shared.clone(), self.runtime.clone(), stop.clone());
            thread::Builder::new()
                .name(format!("berth-dns-udp {bound}"))
                .stack_size(UDP_THREAD_STACK)
                .spawn(move || serve_udp(shared, runtime, udp, stop))?
        };
        let tcp = self
            .runtime
            .spawn(serve_tcp(self.shared.clone(), tcp))
            .abort_handle();
        Ok(Listener {
            bound,
            udp: UdpListener {
                socket,
                stop,
                thread,
            },
            tcp,
            closed,
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

fn socket(addr: SocketAddr, ty: Type, protocol: Protocol) -> io::Result<Socket> {
    let s = Socket::new(Domain::for_address(addr), ty, Some(protocol))?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
        s.set_freebind_v6(true)?;
    } else {
        s.set_freebind_v4(true)?;
    }
    s.set_nonblocking(true)?;
    Ok(s)
}

/// Binds UDP and TCP on `addr`; with port 0, on one port that is free for both.
fn bind_pair(
    addr: SocketAddr,
) -> io::Result<(std::net::UdpSocket, std::net::TcpListener, SocketAddr)> {
    let mut tries = 0;
    loop {
        let udp = socket(addr, Type::DGRAM, Protocol::UDP)?;
        // Best effort: absorb bursts (capped by net.core.rmem_max).
        let _ = udp.set_recv_buffer_size(1 << 20);
        udp.bind(&addr.into())?;
        let bound = udp
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound address is not an IP address"))?;
        let tcp = socket(bound, Type::STREAM, Protocol::TCP)?;
        tcp.set_reuse_address(true)?;
        match tcp.bind(&bound.into()) {
            Ok(()) => {
                tcp.listen(1024)?;
                return Ok((udp.into(), tcp.into(), bound));
            }
            Err(e) if addr.port() == 0 && e.kind() == io::ErrorKind::AddrInUse && tries < 16 => {
                tries += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// The UDP listener thread: receive a batch, answer each query, send the answers as one
/// batch; forwarded queries go to the runtime.
fn serve_udp(
    shared: Arc<Shared>,
    runtime: Handle,
    sock: Arc<Owned<std::net::UdpSocket>>,
    stop: Arc<AtomicBool>,
) {
    let mut bufs = vec![[0u8; UDP_QUERY_BUF]; UDP_BATCH];
    let mut meta = [Received { len: 0, peer: None }; UDP_BATCH];
    let unspecified = SocketAddr::from(([0, 0, 0, 0], 0));
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = (0..UDP_BATCH)
        .map(|_| (Vec::with_capacity(512), unspecified))
        .collect();
    let mut sender = udp::Sender::default();
    let s = &sock.inner;
    while !stop.load(Ordering::Relaxed) {
        let n = match udp::recv_many(s.as_fd(), &mut bufs, &mut meta) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                if SOCKET_LOG.allow() {
                    tracing::warn!(error = %e, "dns udp receive failed");
                }
                // Errors that repeat (none are expected) must not spin.
                thread::sleep(Duration::from_millis(1));
                continue;
            }
        };
        let started = Instant::now();
        let mut ready = 0;
        for (buf, m) in bufs.iter().zip(&meta).take(n) {
            // No sender: the socket was shut down (the loop condition ends the thread).
            let Some(peer) = m.peer else { continue };
            let (out, to) = &mut replies[ready];
            let send = match shared.handle(source(peer), &buf[..m.len], false, started, out) {
                Action::Drop => false,
                Action::Reply => true,
                Action::Forward(job) => match shared.forwards.clone().try_acquire_owned() {
                    Ok(permit) => {
                        forward_udp(&shared, &runtime, &sock, job, permit, peer);
                        false
                    }
                    Err(_) => {
                        shared.refuse_job(&job, out);
                        true
                    }
                },
            };
            if send {
                *to = peer;
                ready += 1;
            }
        }
        send_all(s, &mut sender, &replies[..ready]);
    }
}

/// Sends `replies` on the (blocking) socket; one that the kernel refuses is dropped, as a
/// failed `send_to` would be.
fn send_all(s: &std::net::UdpSocket, sender: &mut udp::Sender, replies: &[(Vec<u8>, SocketAddr)]) {
    let mut sent = 0;
    while sent < replies.len() {
        match sender.send(s.as_fd(), &replies[sent..]) {
            Ok(0) => break,
            Ok(k) => sent += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => sent += 1,
        }
    }
}

/// Forwards `job` on the runtime; the answer goes out on the listener's socket.
fn forward_udp(
    shared: &Arc<Shared>,
    runtime: &Handle,
    sock: &Arc<Owned<std::net::UdpSocket>>,
    job: Job,
    permit: OwnedSemaphorePermit,
    peer: SocketAddr,
) {
    let shared = shared.clone();
    let sock = Arc::downgrade(sock);
    runtime.spawn(async move {
        let _permit = permit;
        let mut out = Vec::new();
        shared.forward(job, false, &mut out).await;
        // The listener may have been closed meanwhile. The socket blocks, but not the
        // runtime: with a full send buffer the answer is dropped.
        if let Some(s) = sock.upgrade() {
            let _ = socket2::SockRef::from(&s.inner).send_to_with_flags(
                &out,
                &peer.into(),
                libc::MSG_DONTWAIT,
            );
        }
    });
}

async fn serve_tcp(shared: Arc<Shared>, listener: Owned<TcpListener>) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.inner.accept() => match accepted {
                Ok((stream, peer)) => {
                    if conns.len() < shared.config.max_tcp_connections {
                        conns.spawn(serve_conn(shared.clone(), stream, peer));
                    }
                }
                Err(e) => {
                    if SOCKET_LOG.allow() {
                        tracing::warn!(error = %e, "dns tcp accept failed");
                    }
                    // EMFILE and friends: give connections time to finish.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn serve_conn(shared: Arc<Shared>, mut stream: TcpStream, peer: SocketAddr) {
    let _ = stream.set_nodelay(true);
    let idle = shared.config.tcp_idle_timeout;
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut frame = Vec::new();
    loop {
        let mut len = [0u8; 2];
        if !matches!(timeout(idle, stream.read_exact(&mut len)).await, Ok(Ok(_))) {
            return;
        }
        buf.resize(usize::from(u16::from_be_bytes(len)), 0);
        if !matches!(timeout(idle, stream.read_exact(&mut buf)).await, Ok(Ok(_))) {
            return;
        }
        let started = Instant::now();
        match shared.handle(source(peer), &buf, true, started, &mut out) {
            Action::Drop => return,
            Action::Reply => {}
            Action::Forward(job) => shared.forward(job, true, &mut out).await,
        }
        frame.clear();
        frame.extend_from_slice(&(out.len() as u16).to_be_bytes());
        frame.extend_from_slice(&out);
        if !matches!(timeout(idle, stream.write_all(&frame)).await, Ok(Ok(()))) {
            return;
        }
    }
}
