//! The network configuration on stdin: berth's keys, the `ipam` section (`super::ipam`),
//! `dns`, the capabilities the runtime fills in under `runtimeConfig`, `args.cni.ips`, and
//! `prevResult`.

use super::error::code;
use super::ipam::{self, Ipam};
use super::CniError;
use berth_engine::network::{CreateRequest, DOOR_LABEL};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// `dns` as the spec defines it (copied into the result).
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq)]
pub(crate) struct Dns {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) nameservers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) domain: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) search: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) options: Vec<String>,
}

/// One `portMappings` entry.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PortMapping {
    pub(crate) host_port: u16,
    pub(crate) container_port: u16,
    #[serde(default)]
    pub(crate) protocol: Option<String>,
    #[serde(default, rename = "hostIP")]
    pub(crate) host_ip: Option<String>,
}

/// What the runtime fills in for the capabilities berth declares.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuntimeConfig {
    #[serde(default)]
    pub(crate) port_mappings: Vec<PortMapping>,
    #[serde(default)]
    pub(crate) ips: Vec<String>,
    pub(crate) mac: Option<String>,
    /// A list, or podman's map of network name to list.
    pub(crate) aliases: Option<Value>,
}

/// One attachment named by GC.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Attachment {
    #[serde(rename = "containerID")]
    pub(crate) container_id: String,
    pub(crate) ifname: String,
}

/// The whole configuration.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Config {
    pub(crate) cni_version: String,
    pub(crate) name: String,
    #[serde(rename = "type")]
    pub(crate) kind: String,
    /// An existing berth network to join instead of one named after `name`.
    pub(crate) network: Option<String>,
    pub(crate) driver: Option<String>,
    pub(crate) bridge: Option<String>,
    pub(crate) subnet: Option<String>,
    pub(crate) gateway: Option<String>,
    pub(crate) ip_range: Option<String>,
    #[serde(default)]
    pub(crate) internal: bool,
    #[serde(default)]
    pub(crate) ipv6: bool,
    pub(crate) mtu: Option<u32>,
    pub(crate) icc: Option<bool>,
    /// Parsed on its own (`super::ipam`), so that every key is checked.
    #[serde(skip)]
    pub(crate) ipam: Ipam,
    pub(crate) dns: Option<Dns>,
    /// `args.cni.ips`: static addresses, like the `ips` capability.
    #[serde(skip)]
    pub(crate) arg_ips: Vec<String>,
    /// Decoded on its own, so that a bad capability value is named in the error.
    #[serde(skip)]
    pub(crate) runtime_config: RuntimeConfig,
    pub(crate) prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments")]
    pub(crate) valid_attachments: Option<Vec<Attachment>>,
    #[serde(rename = "cni.dev/attachments")]
    pub(crate) attachments: Option<Vec<Attachment>>,
}

/// The `cniVersion` of whatever came on stdin, for error results; `1.1.0` if none.
pub(crate) fn requested_version(stdin: &str) -> String {
    serde_json::from_str::<Value>(stdin)
        .ok()
        .and_then(|v| v["cniVersion"].as_str().map(str::to_string))
        .filter(|v| super::SUPPORTED.contains(&v.as_str()))
        .unwrap_or_else(|| "1.1.0".to_string())
}

/// Parses and checks the configuration.
pub(crate) fn parse(stdin: &str) -> Result<Config, CniError> {
    let raw: Value = serde_json::from_str(stdin)
        .map_err(|e| CniError::new(code::DECODE, "the network configuration is not JSON", e))?;
    let version = raw["cniVersion"].as_str().unwrap_or_default().to_string();
    if !super::SUPPORTED.contains(&version.as_str()) {
        return Err(CniError::msg(
            code::INCOMPATIBLE_VERSION,
            format!(
                "CNI version {version:?} is not supported: berth speaks {}",
                super::SUPPORTED.join(", ")
            ),
        ));
    }
    let mut raw = raw;
    let runtime = runtime_config(raw.get_mut("runtimeConfig").map(Value::take))?;
    let ipam = ipam::parse(raw.get("ipam"))?;
    let arg_ips = args_ips(raw.pointer("/args/cni/ips"))?;
    if let Some(m) = raw.as_object_mut() {
        m.remove("ipam");
    }
    let mut conf: Config = serde_json::from_value(raw).map_err(|e| {
        CniError::new(
            code::DECODE,
            format!("cannot decode the network configuration: {e}"),
            e,
        )
    })?;
    conf.runtime_config = runtime;
    conf.ipam = ipam;
    conf.arg_ips = arg_ips;
    if conf.kind != "berth" {
        return Err(CniError::config(format!(
            "plugin type {:?} is not berth",
            conf.kind
        )));
    }
    if let Some(d) = conf.driver.as_deref().filter(|d| *d != "bridge") {
        return Err(CniError::msg(
            code::UNSUPPORTED_FIELD,
            format!("driver {d:?} is not supported through CNI: use bridge"),
        ));
    }
    Ok(conf)
}

/// `args.cni.ips` (a list of addresses, as the `ips` capability).
fn args_ips(v: Option<&Value>) -> Result<Vec<String>, CniError> {
    match v.filter(|v| !v.is_null()) {
        None => Ok(Vec::new()),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            CniError::new(
                code::DECODE,
                format!("cannot decode args.cni.ips: {e}: use a list of addresses"),
                &e,
            )
        }),
    }
}

/// `runtimeConfig`, one capability at a time: an error names the capability.
fn runtime_config(v: Option<Value>) -> Result<RuntimeConfig, CniError> {
    let Some(Value::Object(mut m)) = v.filter(|v| !v.is_null()) else {
        return Ok(RuntimeConfig::default());
    };
    fn take<T: serde::de::DeserializeOwned + Default>(
        m: &mut serde_json::Map<String, Value>,
        key: &str,
    ) -> Result<T, CniError> {
        match m.remove(key).filter(|v| !v.is_null()) {
            None => Ok(T::default()),
            Some(v) => serde_json::from_value(v).map_err(|e| {
                CniError::new(
                    code::DECODE,
                    format!("cannot decode runtimeConfig.{key}: {e}"),
                    &e,
                )
            }),
        }
    }
    Ok(RuntimeConfig {
        port_mappings: take(&mut m, "portMappings")?,
        ips: take(&mut m, "ips")?,
        mac: take(&mut m, "mac")?,
        aliases: m.remove("aliases").filter(|v| !v.is_null()),
    })
}

impl Config {
    /// The berth network this configuration stands for.
    pub(crate) fn create_request(&self) -> CreateRequest {
        let mut subnets = Vec::new();
        let mut gateways = Vec::new();
        let mut push = |s: &str, g: Option<&str>| {
            subnets.push(s.to_string());
            gateways.push(g.map(str::to_string));
        };
        if let Some(s) = &self.subnet {
            push(s, self.gateway.as_deref());
        }
        for s in &self.ipam.subnets {
            push(&s.subnet, s.gateway.as_deref());
        }
        let ipv6 = self.ipv6 || subnets.iter().any(|s| s.contains(':'));
        // Gateways line up with subnets: one left out before a given one is the subnet's
        // default (its first address), as berth would choose it.
        let given = gateways
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        let gateways = gateways[..given]
            .iter()
            .zip(&subnets)
            .map(|(g, s)| g.clone().unwrap_or_else(|| default_gateway(s)))
            .collect();
        let mut options = Vec::new();
        if let Some(b) = &self.bridge {
            options.push(format!("bridge_name={b}"));
        }
        if let Some(icc) = self.icc {
            options.push(format!("icc={icc}"));
        }
        CreateRequest {
            name: self.name.clone(),
            driver: None,
            subnets,
            gateways,
            ip_range: self.ip_range.clone(),
            internal: self.internal,
            ipv6,
            mtu: self.mtu.map(|m| m.to_string()),
            options,
            labels: vec![format!("{DOOR_LABEL}=cni")],
        }
    }

    /// The aliases the runtime gave for this network.
    pub(crate) fn aliases(&self) -> Result<Vec<String>, CniError> {
        let bad = || {
            CniError::config(
                "runtimeConfig.aliases must be a list of names or a map of network name to names",
            )
        };
        let list = match &self.runtime_config.aliases {
            None => return Ok(Vec::new()),
            Some(Value::Array(a)) => a.clone(),
            Some(Value::Object(m)) => match m.get(&self.name) {
                Some(Value::Array(a)) => a.clone(),
                Some(_) => return Err(bad()),
                None => Vec::new(),
            },
            Some(_) => return Err(bad()),
        };
        list.into_iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect()
    }

    /// GC's list of attachments to keep (`cni.dev/attachments` is the older name).
    pub(crate) fn keep(&self) -> Option<&[Attachment]> {
        self.valid_attachments
            .as_deref()
            .or(self.attachments.as_deref())
    }
}

/// The gateway berth picks for `subnet`; empty when the subnet does not parse (the engine
/// then names the subnet in its error).
fn default_gateway(subnet: &str) -> String {
    berth_ipam::parse_subnet(subnet)
        .and_then(|s| berth_ipam::subnet_spec(s, None, None))
        .map(|spec| spec.gateway.to_string())
        .unwrap_or_default()
}

/// The `portMappings` capability as `-p` values for the engine (`[HOSTIP:]HOSTPORT:CTRPORT/PROTO`),
/// duplicates dropped.
pub(crate) fn publish_values(maps: &[PortMapping]) -> Result<Vec<String>, CniError> {
    let mut out = Vec::new();
    let mut seen = BTreeMap::new();
    for m in maps {
        if m.host_port == 0 || m.container_port == 0 {
            return Err(CniError::config(format!(
                "portMappings entry {}:{} has a zero port",
                m.host_port, m.container_port
            )));
        }
        let proto = m.protocol.as_deref().unwrap_or("tcp").to_ascii_lowercase();
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(CniError::config(format!(
                "portMappings protocol {proto:?} is not tcp, udp or sctp"
            )));
        }
        let host = match m.host_ip.as_deref().unwrap_or("") {
            "" => String::new(),
            ip if ip.contains(':') => format!("[{ip}]:"),
            ip => format!("{ip}:"),
        };
        let v = format!("{host}{}:{}/{proto}", m.host_port, m.container_port);
        if seen.insert(v.clone(), ()).is_none() {
            out.push(v);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn berth_keys_and_ipam_overrides_make_the_network() {
        let c = parse(
            r#"{"cniVersion": "1.0.0", "name": "n", "type": "berth", "bridge": "br-n",
                "subnet": "10.1.0.0/24", "gateway": "10.1.0.254", "icc": false, "mtu": 1400,
                "ipam": {"ranges": [[{"subnet": "fd00:1::/64"}]]}}"#,
        )
        .unwrap();
        let r = c.create_request();
        assert_eq!(r.subnets, ["10.1.0.0/24", "fd00:1::/64"]);
        assert_eq!(r.gateways, ["10.1.0.254"]);
        assert!(r.ipv6);
        assert_eq!(r.options, ["bridge_name=br-n", "icc=false"]);
        assert_eq!(r.labels, ["berth.door=cni"]);
        // A gateway only for the second subnet: the first gets its default.
        let c = parse(
            r#"{"cniVersion": "1.0.0", "name": "n", "type": "berth", "subnet": "10.1.0.0/24",
                "ipam": {"ranges": [[{"subnet": "fd00:1::/64", "gateway": "fd00:1::fe"}]]}}"#,
        )
        .unwrap();
        assert_eq!(c.create_request().gateways, ["10.1.0.1", "fd00:1::fe"]);
    }

    #[test]
    fn capabilities_are_decoded_one_by_one() {
        let c = parse(
            r#"{"cniVersion": "1.1.0", "name": "n", "type": "berth",
                "runtimeConfig": {"aliases": {"n": ["web"], "other": ["x"]},
                                  "portMappings": [{"hostPort": 80, "containerPort": 8080, "hostIP": "::1"}]}}"#,
        )
        .unwrap();
        assert_eq!(c.aliases().unwrap(), ["web"]);
        let p = publish_values(&c.runtime_config.port_mappings).unwrap();
        assert_eq!(p, ["[::1]:80:8080/tcp"]);
        let e = parse(
            r#"{"cniVersion": "1.1.0", "name": "n", "type": "berth", "runtimeConfig": {"ips": "x"}}"#,
        )
        .unwrap_err();
        assert_eq!(e.code, code::DECODE);
        assert!(e.msg.contains("runtimeConfig.ips"), "{}", e.msg);
        let e = parse(r#"{"cniVersion": "1.1.0", "name": "n", "type": "bridge"}"#).unwrap_err();
        assert_eq!(e.code, code::INVALID_CONFIG);
    }
}
