//! berth-agent: the one resident process per host (per `<run-root>`), on the data path only
//! for `[::1]` host ports.
//!
//! It serves DNS for containers ([`berth_dns`]) on the gateways of bridge networks, restores
//! berth's nftables table when someone deletes or flushes it (`repair`, from nf_tables
//! notifications), relays `[::1]` host ports to their containers (`relay`: IPv6 has no
//! `route_localnet`, so NAT cannot), keeps this host registered in the cluster store and
//! programs the peers of its overlay networks (`overlay`, when a store is configured), and
//! exports metrics on 127.0.0.1:9355 (`metrics`). The doors tell it about changes over
//! `<run-root>/agent.sock` (`control`; the client side is `berth_engine::agent`), and start it
//! on demand; their teardowns hand it the link deletions (and the socket
//! closes) they need not wait for (`reaper`). A door may also hand it a whole command to run
//! on a warm store connection (`door`, over `<run-root>/door.sock`), and runs the command
//! itself when no agent takes it. Killing it stops no other traffic: links,
//! addresses, overlay peers and the firewall live in the kernel; DNS and `[::1]` ports work again once it restarts.
//!
//! One instance per run root: `<run-root>/agent.pid` is held with `flock` while it runs.

mod checkpoint;
mod control;
mod deferred;
mod door;
mod metrics;
mod overlay;
mod reaper;
mod relay;
mod repair;
mod snapshot;

use berth_engine::{Engine, Paths};
use berth_kernel::signals::Termination;
use prometheus_client::registry::Registry;
use std::io::{Seek, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::sync::{Arc, Mutex};

pub use door::Handler as DoorHandler;

/// How the agent runs.
#[derive(Clone)]
pub struct Options {
    /// DNS port on every gateway address (53 unless testing).
    pub dns_port: u16,
    /// Where to serve `/metrics`; `None` turns metrics off.
    pub metrics: Option<SocketAddr>,
    /// Runs the doors' commands handed to the agent (`door`); `None`: the doors run their
    /// own.
    pub door: Option<DoorHandler>,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("dns_port", &self.dns_port)
            .field("metrics", &self.metrics)
            .field("door", &self.door.is_some())
            .finish()
    }
}

/// What stops the agent from starting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("an agent is already running for {run_root} (pid {pid})")]
    AlreadyRunning { run_root: String, pid: String },
    #[error(transparent)]
    Engine(#[from] berth_engine::Error),
    #[error("start DNS: {0}")]
    Dns(#[from] berth_dns::Error),
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    #[error("load the first state: {0}")]
    Reload(String),
}

fn io(op: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let op = op.into();
    move |source| Error::Io { op, source }
}

/// The agent's mutable core, shared by the control thread.
pub(crate) struct State {
    pub(crate) engine: Engine,
    pub(crate) dns: berth_dns::Server,
    pub(crate) dns_port: u16,
    pub(crate) relays: relay::Relays,
    pub(crate) metrics: metrics::AgentMetrics,
    /// Endpoints of other hosts, when a cluster store is configured.
    pub(crate) peers: Option<Arc<overlay::Peers>>,
    /// Deferred link and bridge deletions (`reaper`).
    pub(crate) reaper: std::sync::mpsc::Sender<reaper::Job>,
    /// The records DNS serves, as last handed to it: `reload-names` adds one container to
    /// them without re-reading the store.
    pub(crate) records: Option<berth_dns::Snapshot>,
}

/// Runs the agent in the foreground until SIGTERM or SIGINT.
pub fn run(paths: Paths, opts: Options) -> Result<(), Error> {
    let term = Termination::block(&[libc::SIGTERM, libc::SIGINT]).map_err(|e| Error::Io {
        op: "block termination signals".into(),
        source: std::io::Error::other(e),
    })?;
    std::fs::create_dir_all(&paths.run_root).map_err(io("create the run root"))?;
    let pid_path = paths.agent_pid();
    let mut pid_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&pid_path)
        .map_err(io(format!("open {}", pid_path.display())))?;
    if pid_file.try_lock().is_err() {
        return Err(Error::AlreadyRunning {
            run_root: paths.run_root.display().to_string(),
            pid: std::fs::read_to_string(&pid_path)
                .unwrap_or_default()
                .trim()
                .to_string(),
        });
    }
    pid_file.set_len(0).map_err(io("truncate the pid file"))?;
    pid_file.rewind().map_err(io("rewind the pid file"))?;
    writeln!(pid_file, "{}", std::process::id()).map_err(io("write the pid file"))?;

    let engine = Engine::open(paths.clone())?;
    let mut registry = Registry::default();
    let agent_metrics = metrics::AgentMetrics::new(&mut registry);
    let dns = berth_dns::Server::start(berth_dns::Config::default())?;
    dns.metrics().register(&mut registry);
    let mut state = State {
        engine,
        dns,
        dns_port: opts.dns_port,
        relays: relay::Relays::start().map_err(io("start the [::1] relay"))?,
        metrics: agent_metrics.clone(),
        peers: paths
            .cluster
            .as_ref()
            .map(|c| Arc::new(overlay::Peers::new(&c.host))),
        reaper: reaper::spawn(paths.clone()).map_err(io("start the reaper thread"))?,
        records: None,
    };
    if let Err(e) = control::reload(&mut state).map_err(Error::Reload)? {
        // Everything else serves; the next reload tries the relay again.
        tracing::warn!("{e}");
    }
    let peers = state.peers.clone();
    let state = Arc::new(Mutex::new(state));
    if let (Some(cfg), Some(peers)) = (paths.cluster.clone(), peers) {
        overlay::spawn(paths.clone(), cfg, peers, Arc::clone(&state))
            .map_err(io("start the overlay thread"))?;
    }

    if let Some(addr) = opts.metrics {
        metrics::serve(addr, Arc::new(Mutex::new(registry)))
            .map_err(io(format!("serve metrics on {addr}")))?;
    }
    repair::spawn(paths.clone(), agent_metrics).map_err(io("watch the nftables table"))?;
    // Before the socket exists: the processes that see it leave checkpoints to this.
    checkpoint::spawn(&paths).map_err(berth_engine::Error::from)?;
    let sock = paths.agent_socket();
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock).map_err(io(format!("bind {}", sock.display())))?;
    let deferred = Arc::new(deferred::Deferred::default());
    deferred::spawn(Arc::clone(&deferred), Arc::clone(&state))
        .map_err(io("start the reloader thread"))?;
    control::spawn(listener, Arc::clone(&state), deferred)
        .map_err(io("start the control thread"))?;
    // Last: the commands run here tell the control thread about their changes.
    let door_sock = paths.door_socket();
    let _ = std::fs::remove_file(&door_sock);
    let workers = match opts.door {
        Some(handler) => {
            let listener = UnixListener::bind(&door_sock)
                .map_err(io(format!("bind {}", door_sock.display())))?;
            Some(
                door::spawn(listener, paths.clone(), handler)
                    .map_err(io("start the door workers"))?,
            )
        }
        None => None,
    };
    tracing::info!(pid = std::process::id(), "berth agent running");

    let sig = term.wait();
    tracing::info!(sig, "berth agent stopping");
    let _ = std::fs::remove_file(&door_sock);
    if let Some(w) = workers {
        w.finish();
    }
    let _ = std::fs::remove_file(&sock);
    let _ = std::fs::remove_file(&pid_path);
    Ok(())
}
