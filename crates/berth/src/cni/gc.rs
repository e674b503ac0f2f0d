//! GC (1.1.0): remove this network's attachments that the runtime no longer knows — every
//! one not named in `cni.dev/valid-attachments` (or the older `cni.dev/attachments`).

use super::config::Config;
use super::error::code;
use super::{CniError, OWNER};
use berth_engine::container::external::{self, berth_id};
use berth_engine::{network, Engine, Error};
use std::collections::BTreeSet;

pub(super) fn run(engine: &mut Engine, conf: &Config) -> Result<(), CniError> {
    if !super::at_least(&conf.cni_version, "1.1.0") {
        return Err(CniError::msg(
            code::INCOMPATIBLE_VERSION,
            format!(
                "GC needs CNI 1.1.0, the configuration says {}",
                conf.cni_version
            ),
        ));
    }
    let keep: BTreeSet<(String, String)> = conf
        .keep()
        .ok_or_else(|| CniError::config("GC needs cni.dev/valid-attachments"))?
        .iter()
        .map(|a| (berth_id(&a.container_id), a.ifname.clone()))
        .collect();
    let name = conf.network.clone().unwrap_or_else(|| conf.name.clone());
    let net = match network::find(engine, &name) {
        Ok(n) => n,
        Err(Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    let mut errors = Vec::new();
    for (c, eps) in external::list(engine, OWNER)? {
        let stale = eps
            .iter()
            .any(|e| e.network_id == net.id && !keep.contains(&(c.id.clone(), e.ifname.clone())));
        if stale {
            if let Err(e) = external::detach(engine, OWNER, &c.id, std::slice::from_ref(&net.id)) {
                errors.push(format!("container {}: {e}", c.name));
            }
        }
    }
    match errors.is_empty() {
        true => Ok(()),
        false => Err(CniError::msg(code::INTERNAL, errors.join("; "))),
    }
}
