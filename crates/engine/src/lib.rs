//! The berth engine: networks, containers and their endpoints, driven by every door.
//!
//! The engine turns requests ("create network web", "run this command on networks a and b")
//! into store rows, kernel objects and firewall elements, and undoes them. It owns the
//! ordering rules of the brief: validate every input before touching anything; setup is
//! all-or-nothing (a failure undoes what was done and leaves no link, address, element, IP
//! reservation or row behind); teardown is best effort, idempotent and reports every failure.
//!
//! Kernel access goes through `berth-kernel` (netlink, namespaces, process isolation), state
//! through `berth-store`, address arithmetic through `berth-ipam`, nftables through
//! `berth-firewall`. The engine never spawns `ip`, `bridge` or `sysctl`.
//!
//! Layout: [`network`] (create, list, remove, connect), [`container`] (run, stop, rm, exec),
//! `bridge` (the bridge driver: activating a network on this host), `endpoint` (one veth
//! attachment), `gc` (reconcile kernel and store), [`ports`] (published ports), `fw` (the firewall
//! opened, repaired and reloaded from the store), [`view`] (inspect JSON), [`overlay`] (networks
//! across hosts, in the cluster store), [`observe`] (stats, diagnose, topology and the event
//! log: read-only views of all the above), [`agent`] and [`door`] (the doors' side of the
//! agent: change notices, and whole door commands the agent runs on a warm connection).

pub mod agent;
mod bridge;
pub mod container;
pub mod door;
mod endpoint;
mod error;
mod files;
mod fw;
mod gc;
mod ids;
mod lock;
pub mod network;
pub mod observe;
pub mod overlay;
mod paths;
pub mod ports;
pub mod reap;
pub mod timing;
mod validate;
pub mod view;

pub use error::{Error, Result};
pub use paths::Paths;

use berth_store::Store;

/// An open engine: the state store plus the directories of this berth "host".
pub struct Engine {
    paths: Paths,
    store: Store,
}

impl Engine {
    /// Opens the store under `paths.root` and makes sure the built-in networks exist.
    pub fn open(paths: Paths) -> Result<Engine> {
        validate::require_root()?;
        // With an agent running, its checkpointer keeps the WAL short (see
        // `berth_store::Checkpoints`): this process waits for no checkpoint's fsyncs.
        let checkpoints = match agent::may_be_running(&paths) {
            true => berth_store::Checkpoints::Elsewhere,
            false => berth_store::Checkpoints::Here,
        };
        let store = Store::open_with(&paths.root, checkpoints)?;
        let mut engine = Engine { paths, store };
        network::ensure_builtin(&mut engine)?;
        Ok(engine)
    }

    /// Ends the engine of a process that exits next, leaving the store's connection for the
    /// exit to close ([`Store::close_at_exit`]): the doors' and the CLI's last step.
    pub fn close_at_exit(self) {
        self.store.close_at_exit();
    }

    /// The directories this engine works in.
    pub fn paths(&self) -> &Paths {
        &self.paths
    }

    /// Reconciles the kernel with the store; returns what was removed.
    pub fn gc(&mut self) -> Result<Vec<String>> {
        gc::run(self)
    }

    /// Whether berth's table is installed with all its rules (elements are not checked).
    pub fn firewall_complete(&mut self) -> Result<bool> {
        Ok(berth_firewall::Firewall::open()?.is_complete()?)
    }

    /// Reinstalls berth's firewall table and every element the store implies (`berth
    /// firewall reload`); returns how many elements it restored.
    pub fn firewall_reload(&mut self) -> Result<usize> {
        fw::reload(&mut self.store)
    }
}
