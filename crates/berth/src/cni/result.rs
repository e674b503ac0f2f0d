//! ADD results: berth's endpoint as the spec's `interfaces`, `ips`, `routes` and `dns`,
//! appended to a `prevResult` when one came, in the configuration's version.

use super::config::Dns;
use berth_engine::container::external::ExtraRoute;
use berth_store::Endpoint;
use serde_json::{json, Value};
use std::net::IpAddr;

/// The result of attaching `ep` (inside namespace `netns`), chained onto `prev`.
pub(crate) fn build(
    version: &str,
    prev: Option<&Value>,
    ep: &Endpoint,
    netns: &str,
    default_route: bool,
    extra: &[ExtraRoute],
    dns: Option<&Dns>,
) -> Value {
    let mut interfaces: Vec<Value> = prev
        .and_then(|p| p["interfaces"].as_array().cloned())
        .unwrap_or_default();
    let mut ips: Vec<Value> = prev
        .and_then(|p| p["ips"].as_array().cloned())
        .unwrap_or_default();
    let mut routes: Vec<Value> = prev
        .and_then(|p| p["routes"].as_array().cloned())
        .unwrap_or_default();
    interfaces.push(json!({ "name": ep.host_ifname }));
    interfaces.push(json!({ "name": ep.ifname, "mac": ep.mac, "sandbox": netns }));
    let index = interfaces.len() - 1;
    let v04 = !super::at_least(version, "1.0.0");
    for a in &ep.addresses {
        let mut ip = json!({
            "address": format!("{}/{}", a.addr, a.prefix_len),
            "interface": index,
        });
        if let Some(g) = a.gateway {
            ip["gateway"] = g.to_string().into();
        }
        if v04 {
            ip["version"] = if a.addr.is_ipv4() { "4" } else { "6" }.into();
        }
        ips.push(ip);
        if default_route {
            if let Some(g) = a.gateway {
                let dst = match g {
                    IpAddr::V4(_) => "0.0.0.0/0",
                    IpAddr::V6(_) => "::/0",
                };
                routes.push(json!({ "dst": dst, "gw": g.to_string() }));
            }
        }
    }
    // The extra routes berth added (a default one is the default route above).
    for r in extra.iter().filter(|r| r.dst.prefix_len() > 0) {
        let gw = r.gateway.or_else(|| {
            ep.addresses
                .iter()
                .find_map(|a| a.gateway.filter(|g| g.is_ipv4() == r.dst.addr().is_ipv4()))
        });
        let mut route = json!({ "dst": r.dst.to_string() });
        if let Some(g) = gw {
            route["gw"] = g.to_string().into();
        }
        routes.push(route);
    }
    let mut out = json!({
        "cniVersion": version,
        "interfaces": interfaces,
        "ips": ips,
    });
    if !routes.is_empty() {
        out["routes"] = routes.into();
    }
    let dns = dns
        .map(|d| serde_json::to_value(d).expect("plain strings"))
        .or_else(|| prev.map(|p| p["dns"].clone()).filter(|d| !d.is_null()));
    if let Some(d) = dns {
        out["dns"] = d;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_store::EndpointAddress;

    fn ep() -> Endpoint {
        Endpoint {
            id: "e".into(),
            container_id: "c".into(),
            network_id: "n".into(),
            ifname: "eth0".into(),
            host_ifname: "bth0123".into(),
            mac: "02:42:0a:1e:00:02".into(),
            aliases: vec![],
            addresses: vec![EndpointAddress {
                addr: "10.30.0.2".parse().unwrap(),
                prefix_len: 24,
                gateway: Some("10.30.0.1".parse().unwrap()),
            }],
        }
    }

    #[test]
    fn chains_onto_prev_result_and_numbers_interfaces() {
        let prev = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "other"}],
            "ips": [{"address": "192.0.2.5/24", "interface": 0}],
            "dns": {"nameservers": ["192.0.2.53"]},
        });
        let r = build("1.0.0", Some(&prev), &ep(), "/run/netns/x", true, &[], None);
        assert_eq!(r["interfaces"].as_array().unwrap().len(), 3);
        assert_eq!(r["ips"][1]["interface"], 2);
        assert_eq!(r["ips"][1]["address"], "10.30.0.2/24");
        assert_eq!(r["ips"][1].get("version"), None);
        assert_eq!(r["routes"][0]["gw"], "10.30.0.1");
        assert_eq!(r["dns"]["nameservers"][0], "192.0.2.53");
    }

    #[test]
    fn version_0_4_0_results_carry_ip_versions() {
        let r = build("0.4.0", None, &ep(), "/x", false, &[], None);
        assert_eq!(r["ips"][0]["version"], "4");
        assert_eq!(r.get("routes"), None);
        assert_eq!(r["interfaces"][1]["sandbox"], "/x");
    }
}
