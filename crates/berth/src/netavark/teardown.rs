//! teardown: remove the container's endpoints on the listed networks; idempotent, and the
//! host side is cleaned when podman's namespace is already gone.

use super::types::NetworkOptions;
use super::OWNER;
use berth_engine::container::external;
use berth_engine::Engine;

pub(super) fn run(engine: &mut Engine, opts: &NetworkOptions) -> Result<(), String> {
    let names: Vec<String> = opts.networks.keys().cloned().collect();
    if names.is_empty() {
        return Ok(());
    }
    external::detach(engine, OWNER, &opts.container_id, &names)
        .map(drop)
        .map_err(|e| format!("teardown of container {}: {e}", opts.container_name))
}
