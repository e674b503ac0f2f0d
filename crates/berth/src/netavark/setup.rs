//! setup: map podman's networks onto berth networks, attach the container in podman's
//! namespace, publish its ports, and report a `StatusBlock` per network.

use super::types::{
    NetAddress, NetInterface, Network, NetworkOptions, PortMapping, StatusBlock, Subnet,
};
use super::OWNER;
use berth_engine::container::external::{self, AttachRequest, Attachment};
use berth_engine::network::{self, CreateRequest, DOOR_LABEL};
use berth_engine::Engine;
use std::collections::BTreeMap;

/// The berth network for a podman network definition.
fn create_request(n: &Network) -> Result<CreateRequest, String> {
    if n.driver != "bridge" {
        return Err(format!(
            "network {}: driver {:?} is not supported by berth: use bridge",
            n.name, n.driver
        ));
    }
    if let Some(d) = n.ipam_options.as_ref().and_then(|o| o.get("driver")) {
        if d != "host-local" {
            return Err(format!(
                "network {}: ipam driver {d:?} is not supported by berth: use host-local",
                n.name
            ));
        }
    }
    let mut options = Vec::new();
    if let Some(i) = &n.network_interface {
        options.push(format!("bridge_name={i}"));
    }
    let mut mtu = None;
    for (k, v) in n.options.iter().flatten() {
        match k.as_str() {
            "mtu" => mtu = Some(v.clone()),
            // berth always isolates networks from each other.
            "isolate" => {}
            k => {
                return Err(format!(
                    "network {}: option {k:?} is not supported by berth (it takes mtu and isolate)",
                    n.name
                ))
            }
        }
    }
    let subnets = n.subnets.clone().unwrap_or_default();
    Ok(CreateRequest {
        name: n.name.clone(),
        driver: None,
        subnets: subnets.iter().map(|s| s.subnet.clone()).collect(),
        gateways: gateways(&subnets),
        ip_range: None,
        internal: n.internal,
        ipv6: n.ipv6_enabled,
        mtu,
        options,
        labels: vec![
            format!("{DOOR_LABEL}=netavark"),
            format!("podman.network.id={}", n.id),
        ],
    })
}

/// The gateways lined up with the subnets: one left out before a given one (an IPv4 subnet
/// without a gateway, an IPv6 one with) is the subnet's default, as berth would choose it.
fn gateways(subnets: &[Subnet]) -> Vec<String> {
    let given = subnets
        .iter()
        .rposition(|s| s.gateway.is_some())
        .map_or(0, |i| i + 1);
    subnets[..given]
        .iter()
        .map(|s| match s.gateway {
            Some(g) => g.to_string(),
            None => berth_ipam::parse_subnet(&s.subnet)
                .and_then(|n| berth_ipam::subnet_spec(n, None, None))
                .map(|spec| spec.gateway.to_string())
                .unwrap_or_default(),
        })
        .collect()
}

/// podman's port mappings as `-p` values: one per protocol, ranges as `A-B:C-D`.
fn publish_values(maps: &[PortMapping]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for m in maps {
        let range = m.range.max(1);
        let end = |p: u16| {
            p.checked_add(range - 1)
                .ok_or_else(|| format!("port range {p}+{range} goes past 65535"))
        };
        let (hp, cp) = (m.host_port, m.container_port);
        let ports = match range {
            1 => format!("{hp}:{cp}"),
            _ => format!("{hp}-{}:{cp}-{}", end(hp)?, end(cp)?),
        };
        let host = match m.host_ip.as_str() {
            "" => String::new(),
            ip if ip.contains(':') => format!("[{ip}]:"),
            ip => format!("{ip}:"),
        };
        let protos = if m.protocol.is_empty() {
            "tcp"
        } else {
            &m.protocol
        };
        for proto in protos.split(',') {
            out.push(format!("{host}{ports}/{proto}"));
        }
    }
    Ok(out)
}

/// `dns_port`: the door's `NETAVARK_DNS_PORT`, if set.
pub(super) fn run(
    engine: &mut Engine,
    netns: &str,
    opts: &NetworkOptions,
    dns_port: Option<&str>,
) -> Result<String, String> {
    if opts.networks.is_empty() {
        return Err("no networks given in network options".into());
    }
    let dns_port = match dns_port {
        None => None,
        Some(p) => Some(
            p.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| format!("invalid NETAVARK_DNS_PORT {p:?}: use a port number"))?,
        ),
    };
    let publish = publish_values(opts.port_mappings.as_deref().unwrap_or_default())?;
    berth_engine::ports::parse_all(&publish).map_err(|e| e.to_string())?;
    // Every definition is checked before any network is recorded.
    let mut requests = Vec::new();
    for name in opts.networks.keys() {
        let info = opts
            .network_info
            .get(name)
            .ok_or_else(|| format!("network {name} has no entry in network_info"))?;
        requests.push((create_request(info)?, info.dns_enabled));
    }
    let mut made = Vec::new();
    let out = attach(engine, netns, opts, &requests, publish, dns_port, &mut made);
    if out.is_err() {
        // A failed setup leaves no network definition it made behind.
        for id in made {
            let _ = network::remove(engine, &id);
        }
    }
    out
}

fn attach(
    engine: &mut Engine,
    netns: &str,
    opts: &NetworkOptions,
    requests: &[(CreateRequest, bool)],
    publish: Vec<String>,
    dns_port: Option<u16>,
    made: &mut Vec<String>,
) -> Result<String, String> {
    let mut phases = berth_engine::timing::Phases::new("netavark-setup");
    let mut attachments = Vec::new();
    let mut dns_enabled = BTreeMap::new();
    for ((req, dns), (name, per)) in requests.iter().zip(&opts.networks) {
        let (net, new) = network::ensure_made(engine, req).map_err(|e| e.to_string())?;
        if new {
            made.push(net.id.clone());
        }
        dns_enabled.insert(net.id.clone(), (name.clone(), *dns));
        attachments.push(Attachment {
            network: net.id,
            ifname: per.interface_name.clone(),
            ips: per.static_ips.clone().unwrap_or_default(),
            mac: per.static_mac.clone().filter(|m| !m.is_empty()),
            aliases: per.aliases.clone().unwrap_or_default(),
            ..Attachment::default()
        });
    }
    phases.mark("ensure");
    let req = AttachRequest {
        owner: OWNER.into(),
        runtime_id: opts.container_id.clone(),
        name: Some(opts.container_name.clone()),
        netns: netns.into(),
        attachments,
        publish,
        // The container's own servers, else those of its first network that has some.
        dns: opts
            .dns_servers
            .clone()
            .filter(|d| !d.is_empty())
            .or_else(|| {
                opts.networks
                    .keys()
                    .filter_map(|n| opts.network_info.get(n)?.network_dns_servers.clone())
                    .find(|d| !d.is_empty())
            })
            .unwrap_or_default()
            .iter()
            .map(|d| d.to_string())
            .collect(),
        agent_args: dns_port
            .map(|p| vec!["--dns-port".to_string(), p.to_string()])
            .unwrap_or_default(),
        // podman points the container at berth's DNS only on networks with DNS on.
        uses_names: requests.iter().any(|(_, dns)| *dns),
    };
    let attached = external::attach(engine, &req)
        .map_err(|e| format!("setup of container {}: {e}", opts.container_name))?;
    phases.mark("attach");
    if let Some(port) = dns_port {
        move_dns(engine, port);
    }
    let mut out = BTreeMap::new();
    for a in attached {
        let ep = a.endpoint;
        let (name, dns) = dns_enabled[&ep.network_id].clone();
        let gateways: Vec<_> = ep.addresses.iter().filter_map(|a| a.gateway).collect();
        let iface = NetInterface {
            mac_address: ep.mac.clone(),
            subnets: ep
                .addresses
                .iter()
                .map(|a| NetAddress {
                    ipnet: format!("{}/{}", a.addr, a.prefix_len),
                    gateway: a.gateway,
                })
                .collect(),
        };
        let dns_on = dns && berth_engine::agent::enabled();
        out.insert(
            name,
            StatusBlock {
                interfaces: BTreeMap::from([(ep.ifname.clone(), iface)]),
                dns_server_ips: if dns_on { gateways } else { Vec::new() },
                dns_search_domains: if dns_on {
                    vec!["berth.internal".to_string()]
                } else {
                    Vec::new()
                },
            },
        );
    }
    serde_json::to_string(&out).map_err(|e| e.to_string())
}

/// A running agent keeps the port it started with: ask it to serve DNS on `port` instead
/// (it answers once it does; nothing changes when it already does). Like every agent
/// failure, a refusal is a warning: the container's network works without DNS.
fn move_dns(engine: &Engine, port: u16) {
    if !berth_engine::agent::enabled() {
        return;
    }
    match berth_engine::agent::request(engine.paths(), &format!("dns-port {port}")) {
        Ok(a) if a == "ok" => {}
        Ok(a) => tracing::warn!(
            "berth agent: NETAVARK_DNS_PORT={port}: {}",
            a.strip_prefix("error ").unwrap_or(&a)
        ),
        Err(e) => tracing::warn!("berth agent not reachable for NETAVARK_DNS_PORT={port}: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn network(driver: &str, options: &[(&str, &str)]) -> Network {
        serde_json::from_value(serde_json::json!({
            "name": "n1", "id": "1".repeat(64), "driver": driver,
            "network_interface": "podman1",
            "subnets": [{"subnet": "10.89.0.0/24", "gateway": "10.89.0.1"}],
            "ipv6_enabled": false, "internal": true, "dns_enabled": true,
            "options": options.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "ipam_options": {"driver": "host-local"},
        }))
        .unwrap()
    }

    #[test]
    fn podman_networks_map_onto_berth_networks() {
        let r =
            create_request(&network("bridge", &[("mtu", "1400"), ("isolate", "true")])).unwrap();
        assert_eq!(r.subnets, ["10.89.0.0/24"]);
        assert_eq!(r.gateways, ["10.89.0.1"]);
        assert_eq!(r.options, ["bridge_name=podman1"]);
        assert_eq!(r.mtu.as_deref(), Some("1400"));
        assert!(r.internal);
        let mut n = network("bridge", &[]);
        n.subnets = serde_json::from_value(serde_json::json!([
            {"subnet": "10.89.0.0/24"},
            {"subnet": "fd00:89::/64", "gateway": "fd00:89::fe"},
        ]))
        .unwrap();
        let r = create_request(&n).unwrap();
        assert_eq!(r.gateways, ["10.89.0.1", "fd00:89::fe"]);
        let e = create_request(&network("macvlan", &[])).unwrap_err();
        assert!(e.contains("macvlan"), "{e}");
        let e = create_request(&network("bridge", &[("vlan", "5")])).unwrap_err();
        assert!(e.contains("vlan"), "{e}");
    }

    #[test]
    fn port_mappings_become_publish_values() {
        let m = |host_ip: &str, hp, cp, range, protocol: &str| PortMapping {
            host_ip: host_ip.into(),
            host_port: hp,
            container_port: cp,
            range,
            protocol: protocol.into(),
        };
        let v = publish_values(&[
            m("", 8080, 80, 1, "tcp"),
            m("127.0.0.1", 9000, 90, 3, "tcp,udp"),
            m("fd00::1", 53, 53, 0, ""),
        ])
        .unwrap();
        assert_eq!(
            v,
            [
                "8080:80/tcp",
                "127.0.0.1:9000-9002:90-92/tcp",
                "127.0.0.1:9000-9002:90-92/udp",
                "[fd00::1]:53:53/tcp"
            ]
        );
        let e = publish_values(&[m("", 65535, 80, 2, "tcp")]).unwrap_err();
        assert!(e.contains("65535"), "{e}");
    }
}
