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

/// The name a new container with id `id` gets: `given`, if no other container has it;
/// without one, the first of [`crate::ids::names_for`] that no container has. `None` when
/// `given` is taken (the caller says so in its own words).
pub(crate) fn free_name(
    tx: &berth_store::Tx<'_>,
    id: &str,
    given: Option<&str>,
) -> Result<Option<String>> {
    if let Some(name) = given {
        return Ok(tx
            .container_by_name(name)?
            .is_none()
            .then(|| name.to_string()));
    }
    for name in crate::ids::names_for(id) {
        if tx.container_by_name(&name)?.is_none() {
            return Ok(Some(name));
        }
    }
    Err(crate::Error::Conflict(format!(
        "every name berth makes for container {id} is taken"
    )))
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

#[cfg(test)]
mod tests {
    use super::free_name;
    use berth_store::{Container, ContainerState, NetworkMode, Store};

    fn named(id: &str, name: &str) -> Container {
        Container {
            id: id.into(),
            name: name.into(),
            hostname: id[..12].into(),
            command: vec!["true".into()],
            mode: NetworkMode::Bridge,
            netns: None,
            pid: None,
            pid_start: None,
            state: ContainerState::Created,
            exit_code: None,
            auto_remove: false,
            dns: Vec::new(),
            created: "2026-12-04T00:00:00Z".into(),
            started: None,
            finished: None,
            owner: None,
        }
    }

    #[test]
    fn a_generated_name_gives_way_to_the_next_and_a_given_one_does_not() {
        let dir = std::env::temp_dir().join(format!("berth-free-name-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut store = Store::open(&dir).unwrap();
        let id = "ab".repeat(32);
        let names = crate::ids::names_for(&id);
        store
            .write(|tx| -> crate::Result<()> {
                assert_eq!(free_name(tx, &id, None)?.as_ref(), Some(&names[0]));
                assert_eq!(free_name(tx, &id, Some("web"))?.as_deref(), Some("web"));
                // Each name taken by another container moves a generated name on.
                for (k, taken) in names.iter().enumerate() {
                    tx.insert_container(&named(&format!("{k}").repeat(64), taken))?;
                    match names.get(k + 1) {
                        Some(next) => assert_eq!(free_name(tx, &id, None)?.as_ref(), Some(next)),
                        None => assert!(matches!(
                            free_name(tx, &id, None),
                            Err(crate::Error::Conflict(_))
                        )),
                    }
                }
                // A name the caller gives is its own or none.
                assert_eq!(free_name(tx, &id, Some(&names[0]))?, None);
                Ok(())
            })
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
