//! The JSON shapes of `inspect`, `network inspect`, `ps` and `network ls`, Docker-like.

use crate::container::live_state;
use berth_store::{Container, Endpoint, Network, PortMapping};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// `berth network inspect` of one network; `members` are its containers with their endpoint.
pub fn network(net: &Network, members: &[(Container, Endpoint)]) -> Value {
    let mut containers = Map::new();
    for (c, ep) in members {
        let v4 = ep.addresses.iter().find(|a| a.addr.is_ipv4());
        let v6 = ep.addresses.iter().find(|a| a.addr.is_ipv6());
        containers.insert(
            c.id.clone(),
            json!({
                "Name": c.name,
                "EndpointID": ep.id,
                "MacAddress": ep.mac,
                "IPv4Address": v4.map(|a| format!("{}/{}", a.addr, a.prefix_len)).unwrap_or_default(),
                "IPv6Address": v6.map(|a| format!("{}/{}", a.addr, a.prefix_len)).unwrap_or_default(),
            }),
        );
    }
    let mut options: Map<String, Value> = net
        .options
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    if let Some(b) = &net.bridge {
        options.insert("bridge_name".into(), Value::String(b.clone()));
    }
    if net.driver == "bridge" {
        options.insert("icc".into(), Value::String(net.icc.to_string()));
    }
    if let Some(m) = net.mtu {
        options.insert("mtu".into(), Value::String(m.to_string()));
    }
    let mut v = json!({
       "Id": net.id,
       "Name": net.name,
       "Driver": net.driver,
       "Scope": if net.driver == "overlay" { "global" } else { "local" },
       "Created": net.created,
       "Internal": net.internal,
       "EnableIPv6": net.ipv6,
       "BuiltIn": net.builtin,
       "Subnets": net.subnets.iter().map(|s| {
           let mut o = json!({"Subnet": s.subnet.to_string(), "Gateway": s.gateway.to_string()});
           if let Some(r) = s.range {
               o["IPRange"] = Value::String(r.to_string());
           }
           o
       }).collect::<Vec<_>>(),
       "Options": options,
       "Labels": net.labels,
       "Containers": containers,
    });
    if let Some(vni) = net.options.get("vni").and_then(|v| v.parse::<u32>().ok()) {
        v["VNI"] = json!(vni);
    }
    v
}

/// Published ports as Docker shows them: `{"80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"}]}`.
fn ports_json(ports: &[PortMapping]) -> Value {
    let mut m = Map::new();
    for p in ports {
        let key = format!("{}/{}", p.container_port, p.protocol);
        let hosts: Vec<Value> = match p.host_ip.as_str() {
            "" => vec!["0.0.0.0", "::"]
                .into_iter()
                .map(|ip| json!({"HostIp": ip, "HostPort": p.host_port.to_string()}))
                .collect(),
            ip => vec![json!({"HostIp": ip, "HostPort": p.host_port.to_string()})],
        };
        let entry = m.entry(key).or_insert_with(|| json!([]));
        if let Value::Array(a) = entry {
            a.extend(hosts);
        }
    }
    Value::Object(m)
}

/// `berth inspect` of one container; `networks` pairs each endpoint with its network.
pub fn container(c: &Container, networks: &[(Network, Endpoint)], ports: &[PortMapping]) -> Value {
    let mut nets = Map::new();
    for (net, ep) in networks {
        let v4 = ep.addresses.iter().find(|a| a.addr.is_ipv4());
        let v6 = ep.addresses.iter().find(|a| a.addr.is_ipv6());
        nets.insert(
            net.name.clone(),
            json!({
                "NetworkID": net.id,
                "EndpointID": ep.id,
                "Interface": ep.ifname,
                "HostInterface": ep.host_ifname,
                "IPAddress": v4.map(|a| a.addr.to_string()).unwrap_or_default(),
                "IPPrefixLen": v4.map(|a| a.prefix_len).unwrap_or(0),
                "Gateway": v4.and_then(|a| a.gateway).map(|g| g.to_string()).unwrap_or_default(),
                "IPv6Address": v6.map(|a| a.addr.to_string()).unwrap_or_default(),
                "IPv6PrefixLen": v6.map(|a| a.prefix_len).unwrap_or(0),
                "IPv6Gateway": v6.and_then(|a| a.gateway).map(|g| g.to_string()).unwrap_or_default(),
                "MacAddress": ep.mac,
                "Aliases": ep.aliases,
            }),
        );
    }
    if networks.is_empty() {
        // host and none modes show as a network of that name with no endpoint, as Docker.
        nets.insert(c.mode.as_str().to_string(), json!({}));
    }
    let state = live_state(c);
    json!({
        "Id": c.id,
        "Name": c.name,
        "Created": c.created,
        "Path": c.command.first(),
        "Args": c.command.get(1..).unwrap_or_default(),
        "State": state.as_str(),
        "Pid": if state.as_str() == "running" { c.pid.unwrap_or(0) } else { 0 },
        "ExitCode": c.exit_code,
        "StartedAt": c.started,
        "FinishedAt": c.finished,
        "NetNS": c.netns.clone().unwrap_or_else(|| "host".into()),
        "NetworkMode": c.mode.as_str(),
        "Hostname": c.hostname,
        "AutoRemove": c.auto_remove,
        "Dns": c.dns,
        // The door whose runtime owns the container (`netavark`, `cni`); null for berth's.
        "Owner": c.owner,
        "Networks": nets,
        "Ports": ports_json(ports),
    })
}

/// Published ports for tables: `0.0.0.0:8080->80/tcp`, consecutive ports as ranges.
pub fn ports_summary(ports: &[PortMapping]) -> String {
    let mut runs: Vec<(&PortMapping, u16)> = Vec::new();
    for p in ports {
        match runs.last_mut() {
            Some((first, n))
                if first.protocol == p.protocol
                    && first.host_ip == p.host_ip
                    && first.host_port + *n == p.host_port
                    && first.container_port + *n == p.container_port =>
            {
                *n += 1
            }
            _ => runs.push((p, 1)),
        }
    }
    runs.iter()
        .map(|(p, n)| {
            let ip = match p.host_ip.as_str() {
                "" => "0.0.0.0".to_string(),
                ip if ip.contains(':') => format!("[{ip}]"),
                ip => ip.to_string(),
            };
            match n {
                1 => format!("{ip}:{}->{}/{}", p.host_port, p.container_port, p.protocol),
                n => format!(
                    "{ip}:{}-{}->{}-{}/{}",
                    p.host_port,
                    p.host_port + n - 1,
                    p.container_port,
                    p.container_port + n - 1,
                    p.protocol
                ),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first IPv4 address of each endpoint, for tables.
pub fn addresses(eps: &[Endpoint]) -> Vec<IpAddr> {
    eps.iter()
        .filter_map(|e| e.addresses.first().map(|a| a.addr))
        .collect()
}
