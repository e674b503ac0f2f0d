//! ADD: attach the container's interface to the configuration's berth network.

use super::config::{self, Config, Dns};
use super::error::code;
use super::{result, CniError, Env, OWNER};
use berth_engine::container::external::{self, AttachRequest, Attachment};
use berth_engine::{network, Engine, Error};
use berth_store::Network;
use std::net::IpAddr;

/// The berth network a configuration stands for: an existing one named by `network`, else
/// the one named `name`, defined from the configuration when it does not exist yet.
pub(super) fn berth_network(engine: &mut Engine, conf: &Config) -> Result<Network, CniError> {
    match &conf.network {
        Some(n) => network::find(engine, n).map_err(|e| match e {
            Error::NotFound { .. } => CniError::config(format!(
                "berth network {n} (key \"network\") not found: create it with berth network create"
            )),
            e => e.into(),
        }),
        None => Ok(network::ensure(engine, &conf.create_request())?),
    }
}

/// Addresses of the `ips` capability (`ADDR` or `ADDR/PREFIX`).
fn static_ips(conf: &Config) -> Result<Vec<IpAddr>, CniError> {
    conf.runtime_config
        .ips
        .iter()
        .map(|s| {
            let addr = s.split_once('/').map_or(s.as_str(), |(a, _)| a);
            addr.parse().map_err(|_| {
                CniError::config(format!(
                    "runtimeConfig.ips entry {s:?} is not an IP address"
                ))
            })
        })
        .collect()
}

pub(super) fn run(engine: &mut Engine, env: &Env, conf: &Config) -> Result<String, CniError> {
    env.require("CNI_CONTAINERID", &env.container_id)?;
    let netns = env.require("CNI_NETNS", &env.netns)?;
    env.require("CNI_IFNAME", &env.ifname)?;
    if !std::path::Path::new(netns).exists() {
        return Err(CniError::env(format!("CNI_NETNS {netns} does not exist")));
    }
    let ips = static_ips(conf)?;
    let aliases = conf.aliases()?;
    let publish = config::publish_values(&conf.runtime_config.port_mappings)?;
    let existed = network::find(engine, conf.network.as_deref().unwrap_or(&conf.name)).is_ok();
    let net = berth_network(engine, conf)?;
    let out = attach(engine, env, conf, &net, ips, aliases, publish);
    if out.is_err() && !existed {
        // Bad input changes nothing: not even the network definition this call made.
        let _ = network::remove(engine, &net.id);
    }
    out
}

fn attach(
    engine: &mut Engine,
    env: &Env,
    conf: &Config,
    net: &Network,
    ips: Vec<IpAddr>,
    aliases: Vec<String>,
    publish: Vec<String>,
) -> Result<String, CniError> {
    let (id, netns, ifname) = (&env.container_id, &env.netns, &env.ifname);
    let mut req = AttachRequest {
        owner: OWNER.into(),
        runtime_id: id.clone(),
        name: env.arg("K8S_POD_NAME").map(str::to_string),
        netns: netns.into(),
        attachments: vec![Attachment {
            network: net.id.clone(),
            ifname: ifname.clone(),
            ips,
            mac: conf.runtime_config.mac.clone(),
            aliases,
        }],
        publish,
        dns: Vec::new(),
        agent_args: Vec::new(),
    };
    let attached = match external::attach(engine, &req) {
        // A pod name is a hint: another container may hold it in berth.
        Err(Error::Conflict(m)) if req.name.is_some() && m.starts_with("container name") => {
            req.name = None;
            external::attach(engine, &req)
        }
        r => r,
    }
    .map_err(|e| match e {
        Error::Conflict(m) if m.contains("already attached") => CniError::msg(code::CONFLICT, m),
        e => e.into(),
    })?;
    let a = attached.first().expect("one attachment asked for");
    let dns = conf.dns.clone().or_else(|| agent_dns(&a.endpoint));
    let out = result::build(
        &conf.cni_version,
        conf.prev_result.as_ref(),
        &a.endpoint,
        netns,
        a.default_route,
        dns.as_ref(),
    );
    Ok(out.to_string())
}

/// berth's agent on the gateway, as the container's resolver (unless the agent is off).
fn agent_dns(ep: &berth_store::Endpoint) -> Option<Dns> {
    if !berth_engine::agent::enabled() {
        return None;
    }
    let gw = ep
        .addresses
        .iter()
        .filter_map(|a| a.gateway)
        .min_by_key(|g| g.is_ipv6())?;
    Some(Dns {
        nameservers: vec![gw.to_string()],
        search: vec!["berth.internal".into()],
        ..Dns::default()
    })
}
