//! CHECK: the attachment still is what ADD made — berth's record, the host veth on its
//! bridge, the interface in the namespace with its MAC, addresses and `ipam.routes`, and
//! the addresses in `prevResult`.

use super::config::Config;
use super::error::code;
use super::{CniError, Env, OWNER};
use berth_engine::container::external;
use berth_engine::{network, Engine, Error};

pub(super) fn run(engine: &mut Engine, env: &Env, conf: &Config) -> Result<(), CniError> {
    let id = env.require("CNI_CONTAINERID", &env.container_id)?;
    env.require("CNI_NETNS", &env.netns)?;
    let ifname = env.require("CNI_IFNAME", &env.ifname)?;
    let prev = conf
        .prev_result
        .as_ref()
        .ok_or_else(|| CniError::config("CHECK needs prevResult: the result of ADD"))?;
    let name = conf.network.clone().unwrap_or_else(|| conf.name.clone());
    let unknown = || {
        CniError::msg(
            code::UNKNOWN_CONTAINER,
            format!("container {id} has no interface {ifname} on network {name}"),
        )
    };
    let net = match network::find(engine, &name) {
        Ok(n) => n,
        Err(Error::NotFound { .. }) => return Err(unknown()),
        Err(e) => return Err(e.into()),
    };
    let problems = external::verify(engine, OWNER, id, &net.id, ifname, &conf.ipam.routes)?
        .ok_or_else(unknown)?;
    if !problems.is_empty() {
        return Err(CniError::msg(code::STATE_MISMATCH, problems.join("; ")));
    }
    // The addresses ADD reported must be the ones berth holds.
    let (_, eps) = external::find(engine, OWNER, id)?.ok_or_else(unknown)?;
    let ep = eps
        .iter()
        .find(|e| e.network_id == net.id && e.ifname == ifname)
        .ok_or_else(unknown)?;
    let reported: Vec<String> = prev["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|ip| ip["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    for a in &ep.addresses {
        let want = format!("{}/{}", a.addr, a.prefix_len);
        if !reported.contains(&want) {
            return Err(CniError::msg(
                code::STATE_MISMATCH,
                format!("prevResult does not list address {want} of {ifname}"),
            ));
        }
    }
    Ok(())
}
