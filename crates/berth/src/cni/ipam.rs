//! The configuration's `ipam` section. berth allocates addresses itself; the section may
//! give subnets (`subnet`/`gateway`, or `ranges`: one range set per subnet), restrict
//! dynamic addresses to `rangeStart`..`rangeEnd` of a subnet, and add `routes` inside the
//! container. Every other key is refused (code 2), never ignored.

use super::error::code;
use super::CniError;
use berth_engine::container::external::{AddressPool, ExtraRoute};
use berth_ipam::IpNet;
use serde_json::{Map, Value};
use std::net::IpAddr;

/// One subnet of the network, as the section gives it.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Subnet {
    pub(crate) subnet: String,
    pub(crate) gateway: Option<String>,
}

/// The parsed section.
#[derive(Clone, Debug, Default)]
pub(crate) struct Ipam {
    pub(crate) subnets: Vec<Subnet>,
    pub(crate) pools: Vec<AddressPool>,
    pub(crate) routes: Vec<ExtraRoute>,
}

const TOP_KEYS: &[&str] = &[
    "type",
    "subnet",
    "gateway",
    "rangeStart",
    "rangeEnd",
    "ranges",
    "routes",
];
const RANGE_KEYS: &[&str] = &["subnet", "gateway", "rangeStart", "rangeEnd"];
const ROUTE_KEYS: &[&str] = &["dst", "gw"];

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, CniError> {
    v.as_object()
        .ok_or_else(|| CniError::config(format!("{path} must be an object")))
}

/// Refuses keys berth does not implement, naming the ones it does.
fn known(m: &Map<String, Value>, path: &str, keys: &[&str]) -> Result<(), CniError> {
    match m.keys().find(|k| !keys.contains(&k.as_str())) {
        None => Ok(()),
        Some(k) => Err(CniError::msg(
            code::UNSUPPORTED_FIELD,
            format!(
                "{path}.{k} is not supported by berth ({path} takes {})",
                keys.join(", ")
            ),
        )),
    }
}

fn string(m: &Map<String, Value>, key: &str, path: &str) -> Result<Option<String>, CniError> {
    match m.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(CniError::config(format!("{path}.{key} must be a string"))),
    }
}

fn address(s: &str, path: &str) -> Result<IpAddr, CniError> {
    s.parse()
        .map_err(|_| CniError::config(format!("{path} {s:?} is not an IP address")))
}

/// A range entry (`ranges[i][j]`, or the section itself for the older flat form).
fn range(m: &Map<String, Value>, path: &str, out: &mut Ipam) -> Result<Option<Subnet>, CniError> {
    let Some(subnet) = string(m, "subnet", path)? else {
        return match ["rangeStart", "rangeEnd", "gateway"]
            .iter()
            .find(|k| m.contains_key(**k))
        {
            Some(k) => Err(CniError::config(format!("{path}.{k} needs {path}.subnet"))),
            None => Ok(None),
        };
    };
    let gateway = string(m, "gateway", path)?;
    let start = string(m, "rangeStart", path)?;
    let end = string(m, "rangeEnd", path)?;
    if start.is_some() || end.is_some() {
        let net: IpNet = subnet.parse().map_err(|_| {
            CniError::config(format!(
                "{path}.subnet {subnet:?} is not a subnet (like 10.30.0.0/24)"
            ))
        })?;
        let bound = |v: Option<String>, key: &str, default: IpAddr| -> Result<IpAddr, CniError> {
            let Some(s) = v else { return Ok(default) };
            let a = address(&s, &format!("{path}.{key}"))?;
            match net.contains(&a) {
                true => Ok(a),
                false => Err(CniError::config(format!(
                    "{path}.{key} {a} is not inside {path}.subnet {net}"
                ))),
            }
        };
        let start = bound(start, "rangeStart", net.network())?;
        let end = bound(end, "rangeEnd", net.broadcast())?;
        if start > end {
            return Err(CniError::config(format!(
                "{path}.rangeStart {start} is after {path}.rangeEnd {end}"
            )));
        }
        out.pools.push(AddressPool { start, end });
    }
    Ok(Some(Subnet { subnet, gateway }))
}

fn routes(v: &Value, out: &mut Ipam) -> Result<(), CniError> {
    let list = v
        .as_array()
        .ok_or_else(|| CniError::config("ipam.routes must be a list"))?;
    for (i, r) in list.iter().enumerate() {
        let path = format!("ipam.routes[{i}]");
        let m = object(r, &path)?;
        known(m, &path, ROUTE_KEYS)?;
        let dst = string(m, "dst", &path)?
            .ok_or_else(|| CniError::config(format!("{path} needs dst")))?;
        let net: IpNet = dst
            .parse()
            .ok()
            .filter(|n: &IpNet| n.trunc() == *n)
            .ok_or_else(|| {
                CniError::config(format!(
                    "{path}.dst {dst:?} is not a network address with a prefix (like 10.50.0.0/16)"
                ))
            })?;
        let gateway = string(m, "gw", &path)?
            .map(|g| address(&g, &format!("{path}.gw")))
            .transpose()?;
        out.routes.push(ExtraRoute { dst: net, gateway });
    }
    Ok(())
}

/// Parses the section (`None` when there is none).
pub(crate) fn parse(v: Option<&Value>) -> Result<Ipam, CniError> {
    let mut out = Ipam::default();
    let Some(v) = v.filter(|v| !v.is_null()) else {
        return Ok(out);
    };
    let m = object(v, "ipam")?;
    known(m, "ipam", TOP_KEYS)?;
    if let Some(kind) = string(m, "type", "ipam")?.filter(|k| k != "berth") {
        return Err(CniError::msg(
            code::UNSUPPORTED_FIELD,
            format!("ipam type {kind:?} is not supported: berth allocates addresses itself (leave ipam.type out or set it to \"berth\")"),
        ));
    }
    if let Some(s) = range(m, "ipam", &mut out)? {
        out.subnets.push(s);
    }
    if let Some(sets) = m.get("ranges").filter(|v| !v.is_null()) {
        let sets = sets
            .as_array()
            .ok_or_else(|| CniError::config("ipam.ranges must be a list of range sets"))?;
        for (i, set) in sets.iter().enumerate() {
            let entries = set.as_array().filter(|a| !a.is_empty()).ok_or_else(|| {
                CniError::config(format!("ipam.ranges[{i}] must be a non-empty list"))
            })?;
            let mut first: Option<Subnet> = None;
            for (j, e) in entries.iter().enumerate() {
                let path = format!("ipam.ranges[{i}][{j}]");
                let m = object(e, &path)?;
                known(m, &path, RANGE_KEYS)?;
                let s = range(m, &path, &mut out)?
                    .ok_or_else(|| CniError::config(format!("{path} needs subnet")))?;
                match &first {
                    None => first = Some(s),
                    Some(f) if f.subnet != s.subnet => {
                        return Err(CniError::msg(
                            code::UNSUPPORTED_FIELD,
                            format!("ipam.ranges[{i}] spans subnets {} and {}: berth gives an interface one address per subnet, so a range set holds ranges of one subnet (give each subnet its own set)", f.subnet, s.subnet),
                        ))
                    }
                    Some(f) if s.gateway.is_some() && s.gateway != f.gateway => {
                        return Err(CniError::config(format!(
                            "{path}.gateway differs from ipam.ranges[{i}][0]: one subnet has one gateway"
                        )))
                    }
                    Some(_) => {}
                }
            }
            out.subnets.extend(first);
        }
    }
    if let Some(r) = m.get("routes").filter(|v| !v.is_null()) {
        routes(r, &mut out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> CniError {
        parse(Some(&v)).unwrap_err()
    }

    #[test]
    fn ranges_pools_and_routes() {
        let v = json!({
            "ranges": [
                [{"subnet": "10.30.0.0/24", "rangeStart": "10.30.0.100", "rangeEnd": "10.30.0.110"},
                 {"subnet": "10.30.0.0/24", "rangeStart": "10.30.0.200"}],
                [{"subnet": "fd00:30::/64", "gateway": "fd00:30::fe"}],
            ],
            "routes": [{"dst": "10.50.0.0/16"}, {"dst": "fd50::/48", "gw": "fd00:30::9"}],
        });
        let i = parse(Some(&v)).unwrap();
        let subnets: Vec<(&str, Option<&str>)> = i
            .subnets
            .iter()
            .map(|s| (s.subnet.as_str(), s.gateway.as_deref()))
            .collect();
        assert_eq!(
            subnets,
            [
                ("10.30.0.0/24", None),
                ("fd00:30::/64", Some("fd00:30::fe"))
            ]
        );
        let pools: Vec<String> = i
            .pools
            .iter()
            .map(|p| format!("{}-{}", p.start, p.end))
            .collect();
        assert_eq!(
            pools,
            ["10.30.0.100-10.30.0.110", "10.30.0.200-10.30.0.255"]
        );
        assert_eq!(i.routes.len(), 2);
        assert_eq!(i.routes[1].gateway, Some("fd00:30::9".parse().unwrap()));
    }

    #[test]
    fn what_berth_cannot_do_is_refused_with_a_reason() {
        let e = err(json!({"dataDir": "/var/lib/cni"}));
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        assert!(e.msg.contains("ipam.dataDir"), "{}", e.msg);
        let e = err(json!({"routes": [{"dst": "10.50.0.0/16", "mtu": 1400}]}));
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        assert!(e.msg.contains("ipam.routes[0].mtu"), "{}", e.msg);
        let e = err(json!({"ranges": [[{"subnet": "10.1.0.0/24"}, {"subnet": "10.2.0.0/24"}]]}));
        assert_eq!(e.code, code::UNSUPPORTED_FIELD);
        let bad = [
            json!({"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.2.0.5"}]]}),
            json!({"ranges": [[{"subnet": "10.1.0.0/24", "rangeStart": "10.1.0.9", "rangeEnd": "10.1.0.5"}]]}),
            json!({"ranges": [[{"subnet": "10.1.0.0/24", "rangeEnd": "nope"}]]}),
            json!({"ranges": [[]]}),
            json!({"rangeStart": "10.1.0.5"}),
            json!({"routes": [{"dst": "10.50.0.1/16"}]}),
            json!({"routes": [{"gw": "10.1.0.1"}]}),
            json!({"routes": [{"dst": "10.50.0.0/16", "gw": "x"}]}),
            json!({"routes": {"dst": "10.50.0.0/16"}}),
        ];
        for v in bad {
            assert_eq!(
                parse(Some(&v)).unwrap_err().code,
                code::INVALID_CONFIG,
                "{v}"
            );
        }
    }
}
