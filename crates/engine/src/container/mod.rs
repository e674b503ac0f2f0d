//! Container verbs: create (with its network), start, exec, stop, remove, connect.
//!
//! A container is a process in its own network, UTS and mount namespaces; the host's
//! filesystem stays visible. Its network namespace is a file under `<run-root>/netns` that
//! outlives the process until the container is removed, so `exec` works after it exits.
//!
//! Containers of other runtimes (podman through the netavark door, CNI runtimes) are
//! *external*: the runtime owns the process and the namespace, berth adds and removes their
//! endpoints (`external`) and shows them with its own.

mod connect;
pub(crate) mod create;
pub mod external;
mod process;
pub(crate) mod remove;

pub use connect::{connect, disconnect};
pub use create::{create, RunRequest};
pub use process::{
    exec_command, exit_code, forward_termination_signals, record_exit, start, Launch, Stdio3,
};
pub use remove::{remove, stop};

use crate::{Engine, Error, Result};
use berth_kernel::process as kproc;
use berth_store::{Container, ContainerState, Endpoint, Network};
use std::collections::{BTreeMap, HashMap};

/// Finds a container by name, id or id prefix.
pub fn find(engine: &mut Engine, reference: &str) -> Result<Container> {
    engine
        .store
        .read(|tx| -> Result<_> { Ok(tx.container(reference)?) })?
        .ok_or_else(|| Error::NotFound {
            kind: "container",
            name: reference.to_string(),
        })
}

/// All containers with their endpoints.
pub fn list(engine: &mut Engine) -> Result<Vec<(Container, Vec<Endpoint>)>> {
    engine.store.read(|tx| -> Result<_> {
        // Every endpoint in one read, not one read per container (the agent's reload lists
        // them all).
        let mut by_container: HashMap<String, Vec<Endpoint>> = HashMap::new();
        for e in tx.all_endpoints()? {
            by_container
                .entry(e.container_id.clone())
                .or_default()
                .push(e);
        }
        Ok(tx
            .containers()?
            .into_iter()
            .map(|c| {
                let eps = by_container.remove(&c.id).unwrap_or_default();
                (c, eps)
            })
            .collect())
    })
}

/// A container, its endpoints and their networks (by network id).
pub type WithNetworks = (Container, Vec<Endpoint>, BTreeMap<String, Network>);

/// The container of exactly this id with its endpoints and their networks, in one read of a
/// few point lookups; `None` when there is no such container.
pub fn by_id_with_networks(engine: &mut Engine, id: &str) -> Result<Option<WithNetworks>> {
    engine.store.read(|tx| -> Result<_> {
        let Some(c) = tx.container(id)?.filter(|c| c.id == id) else {
            return Ok(None);
        };
        let eps = tx.endpoints_of_container(id)?;
        let nets = tx.networks_of(&eps)?;
        Ok(Some((c, eps, nets)))
    })
}

/// The container's published ports.
pub fn published_ports(engine: &mut Engine, id: &str) -> Result<Vec<berth_store::PortMapping>> {
    engine
        .store
        .read(|tx| -> Result<_> { Ok(tx.ports_of_container(id)?) })
}

/// Every published port of every container (one query).
pub fn all_published_ports(engine: &mut Engine) -> Result<Vec<berth_store::PortMapping>> {
    engine.store.read(|tx| -> Result<_> { Ok(tx.all_ports()?) })
}

/// The container's endpoints.
pub fn endpoints(engine: &mut Engine, id: &str) -> Result<Vec<Endpoint>> {
    engine
        .store
        .read(|tx| -> Result<_> { Ok(tx.endpoints_of_container(id)?) })
}

/// Refuses berth's own verbs on a container another runtime owns.
pub(crate) fn require_own(c: &Container) -> Result<()> {
    match &c.owner {
        None => Ok(()),
        Some(owner) => Err(Error::Conflict(format!(
            "container {} belongs to a runtime that uses berth through its {owner} door: \
             manage it with that runtime (podman, the CNI runtime)",
            c.name
        ))),
    }
}

/// True when the container's recorded process is alive (and is still the same process).
/// An external container counts as running while its runtime's namespace exists.
pub fn is_running(c: &Container) -> bool {
    if c.owner.is_some() {
        return external::namespace_exists(c);
    }
    c.state == ContainerState::Running
        && match (c.pid, c.pid_start) {
            (Some(pid), Some(start)) => kproc::is_alive(pid, start),
            _ => false,
        }
}

/// For a container still being created: whether the berth process creating it is alive.
pub fn creator_alive(c: &Container) -> bool {
    match (c.pid, c.pid_start) {
        (Some(pid), Some(start)) => kproc::is_alive(pid, start),
        _ => false,
    }
}

/// The state to show: a `running` row whose process is gone (its supervisor was killed)
/// shows as `exited`.
pub fn live_state(c: &Container) -> ContainerState {
    match c.state {
        ContainerState::Running if !is_running(c) => ContainerState::Exited,
        s => s,
    }
}
