//! DEL: remove the container's interface from the network, idempotently. Works without
//! `CNI_NETNS` and when the namespace is gone: the host side is still cleaned.

use super::config::Config;
use super::{CniError, Env, OWNER};
use berth_engine::container::external;
use berth_engine::{network, Engine, Error};

pub(super) fn run(engine: &mut Engine, env: &Env, conf: &Config) -> Result<(), CniError> {
    let id = env.require("CNI_CONTAINERID", &env.container_id)?;
    let name = conf.network.clone().unwrap_or_else(|| conf.name.clone());
    let net = match network::find(engine, &name) {
        Ok(n) => n,
        // Never added (or already removed): nothing to do.
        Err(Error::NotFound { .. }) => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    external::detach(engine, OWNER, id, &[net.id])?;
    Ok(())
}
