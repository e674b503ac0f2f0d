//! `detach`: idempotent, best effort, complete when the namespace is already gone.

use super::find;
use crate::endpoint;
use crate::{Engine, Error, Result};
use berth_store::Endpoint;
use std::time::Instant;

pub(super) fn detach_endpoints(engine: &mut Engine, eps: &[Endpoint]) -> Vec<String> {
    let mut errors = Vec::new();
    for ep in eps {
        match crate::network::find(engine, &ep.network_id) {
            Ok(net) => errors.extend(endpoint::detach(
                &engine.paths,
                &mut engine.store,
                &net,
                ep,
                None,
                endpoint::HostEnd::Delete,
                true,
            )),
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

/// Detaches a runtime's container from `networks` (names or ids; empty: from all). The row
/// goes with its last endpoint. Idempotent: what is already gone — the container, an
/// endpoint, the namespace — is success. Returns whether anything was removed.
pub fn detach(
    engine: &mut Engine,
    owner: &str,
    runtime_id: &str,
    networks: &[String],
) -> Result<bool> {
    let t0 = Instant::now();
    let Some((c, eps)) = find(engine, owner, runtime_id)? else {
        return Ok(false);
    };
    let mut ids = Vec::new();
    for n in networks {
        match crate::network::find(engine, n) {
            Ok(net) => ids.push(net.id),
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let (gone, stay): (Vec<Endpoint>, Vec<Endpoint>) = eps
        .into_iter()
        .partition(|e| networks.is_empty() || ids.contains(&e.network_id));
    if stay.is_empty() {
        crate::container::remove::teardown(engine, &c, &gone)?;
        return Ok(true);
    }
    if gone.is_empty() {
        return Ok(false);
    }
    let mut errors = Vec::new();
    let all: Vec<Endpoint> = gone.iter().chain(&stay).cloned().collect();
    let nets = engine
        .store
        .read(|tx| -> Result<_> { Ok(tx.networks_of(&all)?) })?;
    let target = crate::fw::published_endpoint(&all, &nets).map(|e| e.id.clone());
    if target.is_some_and(|t| gone.iter().any(|e| e.id == t)) {
        // The ports lead into an endpoint that goes: they go too.
        let unpublished = berth_firewall::Firewall::open()
            .map_err(crate::Error::from)
            .and_then(|mut fw| crate::container::remove::unpublish(engine, &mut fw, &c, &all, &[]));
        if let Err(e) = unpublished {
            errors.push(e.to_string());
        }
        if let Err(e) = engine
            .store
            .write(|tx| -> Result<()> { Ok(tx.delete_ports(&c.id)?) })
        {
            errors.push(e.to_string());
        }
    }
    errors.extend(detach_endpoints(engine, &gone));
    crate::agent::notify_if_running(&engine.paths, Some(("teardown", t0.elapsed())));
    match errors.is_empty() {
        true => Ok(true),
        false => Err(Error::Incomplete(errors)),
    }
}
