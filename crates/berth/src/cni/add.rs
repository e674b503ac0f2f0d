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

/// Static addresses: the `ips` capability, `args.cni.ips` and `CNI_ARGS` `IP=A[,B]`, each
/// `ADDR` or `ADDR/PREFIX` (the prefix must be the subnet's).
fn static_ips(env: &Env, conf: &Config, net: &Network) -> Result<Vec<IpAddr>, CniError> {
    let from_args = env.arg("IP").into_iter().flat_map(|v| v.split(','));
    let given = conf
        .runtime_config
        .ips
        .iter()
        .map(|s| ("runtimeConfig.ips", s.as_str()))
        .chain(conf.arg_ips.iter().map(|s| ("args.cni.ips", s.as_str())))
        .chain(from_args.map(|s| ("CNI_ARGS IP", s)));
    let mut out: Vec<IpAddr> = Vec::new();
    for (source, s) in given {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let bad = || CniError::config(format!("{source} entry {s:?} is not an IP address"));
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        if let Some(p) = prefix {
            let p: u8 = p.parse().map_err(|_| bad())?;
            let subnet = net.subnets.iter().find(|n| n.subnet.contains(&addr));
            if let Some(n) = subnet.filter(|n| n.subnet.prefix_len() != p) {
                return Err(CniError::config(format!(
                    "{source} entry {s:?}: the subnet of network {} is {}",
                    net.name, n.subnet
                )));
            }
        }
        if !out.contains(&addr) {
            out.push(addr);
        }
    }
    Ok(out)
}

/// With `network` (an existing berth network), `ipam` subnets name subnets it must have.
fn check_joined(conf: &Config, net: &Network) -> Result<(), CniError> {
    if conf.network.is_none() {
        return Ok(());
    }
    for s in &conf.ipam.subnets {
        let found = s.subnet.parse::<berth_ipam::IpNet>().is_ok_and(|want| {
            net.subnets.iter().any(|n| {
                n.subnet == want
                    && s.gateway
                        .as_deref()
                        .is_none_or(|g| g == n.gateway.to_string())
            })
        });
        if !found {
            return Err(CniError::config(format!(
                "ipam subnet {}{} is not a subnet of berth network {} (key \"network\"): leave ipam subnets out when joining a network",
                s.subnet,
                s.gateway.as_deref().map(|g| format!(" with gateway {g}")).unwrap_or_default(),
                net.name
            )));
        }
    }
    Ok(())
}

pub(super) fn run(engine: &mut Engine, env: &Env, conf: &Config) -> Result<String, CniError> {
    env.require("CNI_CONTAINERID", &env.container_id)?;
    let netns = env.require("CNI_NETNS", &env.netns)?;
    env.require("CNI_IFNAME", &env.ifname)?;
    if !std::path::Path::new(netns).exists() {
        return Err(CniError::env(format!("CNI_NETNS {netns} does not exist")));
    }
    let aliases = conf.aliases()?;
    let publish = config::publish_values(&conf.runtime_config.port_mappings)?;
    let existed = network::find(engine, conf.network.as_deref().unwrap_or(&conf.name)).is_ok();
    let net = berth_network(engine, conf)?;
    let out = check_joined(conf, &net)
        .and_then(|()| static_ips(env, conf, &net))
        .and_then(|ips| attach(engine, env, conf, &net, ips, aliases, publish));
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
            pools: conf.ipam.pools.clone(),
            routes: conf.ipam.routes.clone(),
        }],
        publish,
        dns: Vec::new(),
        agent_args: Vec::new(),
        // The result names berth's DNS unless the config brings its own.
        uses_names: conf.dns.is_none(),
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
        &conf.ipam.routes,
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
