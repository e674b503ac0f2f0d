//! External containers: another runtime owns the process and the network namespace.
//!
//! podman (through the netavark door) and CNI runtimes hand berth a namespace path they
//! created. berth records a container row with an `owner` (the door), gives it endpoints on
//! berth networks exactly as `run` does (same IPAM, veth, firewall elements, published
//! ports, DNS records), and removes them again — never the namespace itself. The runtime's
//! container id becomes berth's id when it is 64 lower-case hex characters (podman's and
//! containerd's are), else a stable 64-hex digest of it, so `berth ps` and `podman ps` agree.
//!
//! [`attach`] is all or nothing; [`detach`] is idempotent, best effort, and works when the
//! namespace is already gone. Layout: `attach`, `detach`, `verify` (CHECK), `ipam` (address
//! pools and extra routes of an attachment), and here the request types, ids, lookups and
//! DNS updates.

mod attach;
mod detach;
mod ipam;
mod verify;

pub use attach::{attach, Attached};
pub use detach::detach;
pub use ipam::{AddressPool, ExtraRoute};
pub use verify::verify;

use crate::ids;
use crate::{Engine, Error, Result};
use berth_store::{Container, Endpoint};
use std::net::IpAddr;
use std::path::PathBuf;

/// One network attachment a runtime asks for.
#[derive(Clone, Debug, Default)]
pub struct Attachment {
    /// A berth network name or id.
    pub network: String,
    /// The interface name inside the container (`eth0`).
    pub ifname: String,
    /// Static addresses, at most one per subnet of the network.
    pub ips: Vec<IpAddr>,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: Option<String>,
    pub aliases: Vec<String>,
    /// Where dynamic addresses come from, for the subnets these fall in (else anywhere free).
    pub pools: Vec<AddressPool>,
    /// Extra routes inside the container through this interface.
    pub routes: Vec<ExtraRoute>,
}

/// What a runtime asks for when it attaches its container.
#[derive(Clone, Debug, Default)]
pub struct AttachRequest {
    /// The door: `netavark` or `cni`.
    pub owner: String,
    /// The container id as the runtime knows it.
    pub runtime_id: String,
    /// The container's name; a generated one when `None`.
    pub name: Option<String>,
    /// The runtime's network namespace file.
    pub netns: PathBuf,
    pub attachments: Vec<Attachment>,
    /// Published ports in `-p` syntax; applied when the container has none yet. The runtime
    /// reserves the host ports (podman binds them), so host listeners are not probed.
    pub publish: Vec<String>,
    /// DNS servers the container's names should be forwarded to.
    pub dns: Vec<String>,
    /// Extra arguments for `berth agent` when this call has to start it (`--dns-port N`).
    pub agent_args: Vec<String>,
    /// The container is told to ask berth's DNS for names (its runtime puts the gateway in
    /// its resolv.conf): the agent must have its records before the call returns. Without
    /// this, and without ports, the agent reloads after answering.
    pub uses_names: bool,
}

/// berth's id for a runtime's container id.
pub fn berth_id(runtime_id: &str) -> String {
    let hex64 = runtime_id.len() == 64
        && runtime_id
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c));
    if hex64 {
        return runtime_id.to_string();
    }
    // Four FNV-1a 64 streams with different offsets: stable across releases, 256 bits.
    (0u64..4)
        .map(|k| {
            let offset = ids::FNV_OFFSET ^ k.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            format!("{:016x}", ids::fnv1a(offset, runtime_id.as_bytes()))
        })
        .collect()
}

/// The external container with this runtime id and its endpoints, if berth has it.
pub fn find(
    engine: &mut Engine,
    owner: &str,
    runtime_id: &str,
) -> Result<Option<(Container, Vec<Endpoint>)>> {
    let id = berth_id(runtime_id);
    let found = engine.store.read(|tx| -> Result<_> {
        match tx.container_by_id(&id)? {
            Some(c) => {
                let eps = tx.endpoints_of_container(&c.id)?;
                Ok(Some((c, eps)))
            }
            _ => Ok(None),
        }
    })?;
    match found {
        Some((c, _)) if c.owner.as_deref() != Some(owner) => Err(Error::Conflict(format!(
            "container {} exists in berth but does not belong to the {owner} door",
            c.name
        ))),
        f => Ok(f),
    }
}

/// Sets the DNS servers of every `owner` container on `network` (netavark's `update
/// --network-dns-servers`): their names are forwarded there from now on. Returns how many
/// containers changed.
pub fn set_network_dns(
    engine: &mut Engine,
    owner: &str,
    network: &str,
    servers: &[String],
) -> Result<usize> {
    for d in servers {
        berth_ipam::parse_ip(d)?;
    }
    let net = crate::network::find(engine, network)?;
    let n = engine.store.write(|tx| -> Result<usize> {
        let mut n = 0;
        for c in tx.containers()? {
            let on = tx
                .endpoints_of_container(&c.id)?
                .iter()
                .any(|e| e.network_id == net.id);
            if on && c.owner.as_deref() == Some(owner) {
                tx.set_dns(&c.id, servers)?;
                n += 1;
            }
        }
        Ok(n)
    })?;
    crate::agent::notify_if_running(&engine.paths, None);
    Ok(n)
}

/// Whether the runtime's namespace file of `c` still exists.
pub fn namespace_exists(c: &Container) -> bool {
    c.netns
        .as_deref()
        .is_some_and(|p| std::path::Path::new(p).exists())
}

/// Every external container of `owner` with its endpoints.
pub fn list(engine: &mut Engine, owner: &str) -> Result<Vec<(Container, Vec<Endpoint>)>> {
    Ok(super::list(engine)?
        .into_iter()
        .filter(|(c, _)| c.owner.as_deref() == Some(owner))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::berth_id;

    #[test]
    fn runtime_ids_map_to_stable_64_hex_ids() {
        let podman = "a".repeat(64);
        assert_eq!(berth_id(&podman), podman);
        let a = berth_id("pod-1");
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(a, berth_id("pod-1"));
        assert_ne!(a, berth_id("pod-2"));
        assert_ne!(berth_id(&"A".repeat(64)), "A".repeat(64));
    }
}
