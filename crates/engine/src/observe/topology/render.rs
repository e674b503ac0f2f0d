//! The text and Graphviz DOT forms of a [`Topology`].

use super::{ContainerNode, EndpointNode, NetworkNode, Topology};
use berth_store::PortMapping;
use std::fmt::Write;

fn ports_text(c: &ContainerNode) -> String {
    let rows: Vec<PortMapping> = c
        .ports
        .iter()
        .map(|p| PortMapping {
            container_id: c.id.clone(),
            protocol: p.protocol.clone(),
            host_ip: p.host_ip.clone(),
            host_port: p.host_port,
            container_port: p.container_port,
        })
        .collect();
    crate::view::ports_summary(&rows)
}

fn network_line(n: &NetworkNode) -> String {
    let mut s = format!("network {} ({}", n.name, n.driver);
    if !n.subnets.is_empty() {
        let _ = write!(s, ", {}", n.subnets.join(" "));
    }
    if n.internal {
        s.push_str(", internal");
    }
    if !n.icc {
        s.push_str(", icc off");
    }
    if let Some(b) = &n.bridge {
        let state = match (b.present, b.up) {
            (false, _) => "not active",
            (true, true) => "up",
            (true, false) => "DOWN",
        };
        let _ = write!(s, ", bridge {} {state}", b.name);
    }
    if let Some(vni) = n.vni {
        let _ = write!(s, ", vni {vni}");
    }
    if let Some(v) = &n.vxlan {
        let state = match (v.present, v.up) {
            (false, _) => "not active".to_string(),
            (true, true) => format!("up mtu {}", v.mtu.unwrap_or_default()),
            (true, false) => "DOWN".to_string(),
        };
        let _ = write!(s, ", vxlan {} {state}", v.name);
    }
    s.push(')');
    s
}

/// One line per remote peer of an overlay: its host, VTEP and endpoints.
fn peer_lines(n: &NetworkNode) -> Vec<String> {
    n.peers
        .iter()
        .map(|p| {
            let mut line = format!("peer {} vtep {}", p.host.as_deref().unwrap_or("?"), p.vtep);
            if !p.flood {
                line.push_str(" (NO FLOOD ENTRY)");
            }
            for e in &p.endpoints {
                let _ = write!(
                    line,
                    ", {} {} {}",
                    e.container.as_deref().unwrap_or("?"),
                    e.ip.as_deref().unwrap_or("?"),
                    e.mac
                );
                if !e.programmed {
                    line.push_str(" (NOT PROGRAMMED)");
                }
            }
            line
        })
        .collect()
}

/// The networks worth drawing: all but the built-in `host` and `none` when no container
/// uses them.
fn shown(t: &Topology) -> Vec<&NetworkNode> {
    t.networks
        .iter()
        .filter(|n| n.bridge.is_some() || t.containers.iter().any(|c| c.mode == n.driver))
        .collect()
}

/// The text form: each host, its networks, and each network's containers.
pub fn text(t: &Topology) -> String {
    let mut out = String::new();
    for h in t.hosts.iter().filter(|h| h.local) {
        match &h.vtep {
            Some(v) => writeln!(out, "host {} (vtep {v})", h.name),
            None => writeln!(out, "host {}", h.name),
        }
        .expect("writing to a String");
    }
    let nets = shown(t);
    for (i, n) in nets.iter().enumerate() {
        let last_net = i + 1 == nets.len();
        let (branch, stem) = if last_net {
            ("└─", "   ")
        } else {
            ("├─", "│  ")
        };
        let _ = writeln!(out, "{branch} {}", network_line(n));
        let members: Vec<(&ContainerNode, &EndpointNode)> = t
            .containers
            .iter()
            .flat_map(|c| {
                c.endpoints
                    .iter()
                    .filter(|e| e.network == n.name)
                    .map(move |e| (c, e))
            })
            .chain(
                t.containers
                    .iter()
                    .filter(|c| c.endpoints.is_empty() && c.mode == n.driver && n.bridge.is_none())
                    .map(|c| (c, &NO_ENDPOINT)),
            )
            .collect();
        let peers = peer_lines(n);
        let count = peers.len() + members.len();
        for (j, line) in peers.iter().enumerate() {
            let b = if j + 1 == count { "└─" } else { "├─" };
            let _ = writeln!(out, "{stem}{b} {line}");
        }
        for (j, (c, e)) in members.iter().enumerate() {
            let b = if peers.len() + j + 1 == count {
                "└─"
            } else {
                "├─"
            };
            let mut line = format!("{stem}{b} {} [{}]", c.name, c.state);
            if !e.ifname.is_empty() {
                let _ = write!(
                    line,
                    " {} {} via {}",
                    e.ifname,
                    e.addresses.join(" "),
                    e.host_ifname
                );
                if !e.attached || !e.host_link_up {
                    line.push_str(" (DETACHED OR DOWN)");
                }
            }
            let p = ports_text(c);
            if !p.is_empty() {
                let _ = write!(line, " ports {p}");
            }
            let _ = writeln!(out, "{line}");
        }
    }
    for h in t.hosts.iter().filter(|h| !h.local) {
        let vtep = h.vtep.as_deref().unwrap_or("?");
        let _ = writeln!(out, "remote host {} (vtep {vtep})", h.name);
    }
    out
}

static NO_ENDPOINT: EndpointNode = EndpointNode {
    network: String::new(),
    ifname: String::new(),
    host_ifname: String::new(),
    mac: String::new(),
    addresses: Vec::new(),
    kernel_addresses: Vec::new(),
    host_link_up: false,
    attached: false,
};

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// Graphviz DOT: the host on the left, networks in the middle, containers on the right;
/// one edge per endpoint labelled with its interface and addresses, published ports on the
/// container labels. Networks without containers are drawn too (except unused `host` and
/// `none`).
pub fn dot(t: &Topology) -> String {
    let mut s = String::from(
        "digraph berth {\n  rankdir=LR;\n  nodesep=0.15;\n  ranksep=1.2;\n  \
         node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9, arrowhead=none];\n",
    );
    for h in t.hosts.iter().filter(|h| h.local) {
        let label = match &h.vtep {
            Some(v) => format!("host {}\\nvtep {v}", h.name),
            None => format!("host {}", h.name),
        };
        let _ = writeln!(
            s,
            "  {} [shape=box3d, style=filled, fillcolor=\"#e8e8e8\", label=\"{}\"];",
            quote(&format!("host:{}", h.name)),
            label.replace('"', "\\\"")
        );
    }
    remote_hosts(t, &mut s);
    let host = t
        .hosts
        .first()
        .map_or("host".to_string(), |h| h.name.clone());
    for n in shown(t) {
        let mut label = format!("{}\\n{}", n.name, n.driver);
        for sn in &n.subnets {
            let _ = write!(label, "\\n{sn}");
        }
        if let Some(b) = &n.bridge {
            let state = match (b.present, b.up) {
                (false, _) => "inactive",
                (true, true) => "up",
                (true, false) => "DOWN",
            };
            let _ = write!(label, "\\nbridge {} ({state})", b.name);
        }
        if let Some(vni) = n.vni {
            let _ = write!(label, "\\nvni {vni}");
        }
        if let Some(v) = &n.vxlan {
            let state = match (v.present, v.up) {
                (false, _) => "inactive",
                (true, true) => "up",
                (true, false) => "DOWN",
            };
            let _ = write!(label, "\\nvxlan {} ({state})", v.name);
        }
        if n.internal {
            label.push_str("\\ninternal");
        }
        if !n.icc {
            label.push_str("\\nicc off");
        }
        let color = if n.internal { "#fde2c8" } else { "#cfe3fa" };
        let _ = writeln!(
            s,
            "  {} [shape=ellipse, style=filled, fillcolor=\"{color}\", label=\"{}\"];",
            quote(&format!("net:{}", n.name)),
            label.replace('"', "\\\"")
        );
        let _ = writeln!(
            s,
            "  {} -> {} [color=\"#999999\"];",
            quote(&format!("host:{host}")),
            quote(&format!("net:{}", n.name))
        );
    }
    for c in &t.containers {
        let mut label = format!("{}\\n{}", c.name, c.state);
        let p = ports_text(c);
        if !p.is_empty() {
            let _ = write!(label, "\\n{}", p.replace(", ", "\\n"));
        }
        let fill = if c.state == "running" {
            "#d5f5d5"
        } else {
            "#eeeeee"
        };
        let _ = writeln!(
            s,
            "  {} [shape=box, style=\"rounded,filled\", fillcolor=\"{fill}\", label=\"{}\"];",
            quote(&format!("ctr:{}", c.name)),
            label.replace('"', "\\\"")
        );
        if c.endpoints.is_empty() {
            let _ = writeln!(
                s,
                "  {} -> {} [style=dashed, label={}];",
                quote(&format!("net:{}", c.mode)),
                quote(&format!("ctr:{}", c.name)),
                quote(&c.mode)
            );
        }
    }
    for c in &t.containers {
        for e in &c.endpoints {
            let style = if e.attached && e.host_link_up {
                ""
            } else {
                ", color=red, style=dashed"
            };
            let _ = writeln!(
                s,
                "  {} -> {} [label={}{style}];",
                quote(&format!("net:{}", e.network)),
                quote(&format!("ctr:{}", c.name)),
                quote(&format!("{} {}", e.ifname, e.addresses.join(" ")))
            );
        }
    }
    s.push_str("}\n");
    s
}

/// The other hosts of overlay networks, each a cluster of its endpoints as this host's
/// VXLAN devices know them, with a dashed edge from the overlay to each.
fn remote_hosts(t: &Topology, s: &mut String) {
    for (i, h) in t.hosts.iter().filter(|h| !h.local).enumerate() {
        let vtep = h.vtep.clone().unwrap_or_default();
        let _ = writeln!(
            s,
            "  subgraph cluster_remote{i} {{\n    label={};\n    style=dashed;\n    color=\"#888888\";\n    fontname=\"Helvetica\";",
            quote(&format!("host {} (vtep {vtep})", h.name))
        );
        let mut edges = Vec::new();
        for n in &t.networks {
            for p in n.peers.iter().filter(|p| p.vtep == vtep) {
                for e in &p.endpoints {
                    let id = format!("remote:{vtep}:{}", e.mac);
                    let mut label = e.container.clone().unwrap_or_else(|| "?".into());
                    let _ = write!(label, "\\n{}", e.ip.as_deref().unwrap_or("?"));
                    if !e.programmed {
                        label.push_str("\\nNOT PROGRAMMED");
                    }
                    let _ = writeln!(
                        s,
                        "    {} [shape=box, style=\"rounded,dashed\", label=\"{}\"];",
                        quote(&id),
                        label.replace('"', "\\\"")
                    );
                    let color = if e.programmed { "#3366cc" } else { "red" };
                    edges.push(format!(
                        "  {} -> {} [style=dashed, color=\"{color}\", label={}];",
                        quote(&format!("net:{}", n.name)),
                        quote(&id),
                        quote(&format!("vni {}", n.vni.unwrap_or_default()))
                    ));
                }
            }
        }
        s.push_str("  }\n");
        for e in edges {
            let _ = writeln!(s, "{e}");
        }
    }
}
