//! netavark's JSON, as podman 4.x sends and reads it (`NetworkOptions` in, a map of network
//! name to `StatusBlock` out). Fields berth does not use are still accepted.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One subnet of a podman network.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Subnet {
    pub(crate) subnet: String,
    pub(crate) gateway: Option<IpAddr>,
}

/// A podman network definition (`network_info` values).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct Network {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) id: String,
    pub(crate) driver: String,
    pub(crate) network_interface: Option<String>,
    #[serde(default)]
    pub(crate) subnets: Option<Vec<Subnet>>,
    #[serde(default)]
    pub(crate) ipv6_enabled: bool,
    #[serde(default)]
    pub(crate) internal: bool,
    #[serde(default)]
    pub(crate) dns_enabled: bool,
    #[serde(default)]
    pub(crate) options: Option<BTreeMap<String, String>>,
    #[serde(default)]
    pub(crate) ipam_options: Option<BTreeMap<String, String>>,
    /// Upstream DNS servers for the network's containers (podman 4.5 and later).
    #[serde(default)]
    pub(crate) network_dns_servers: Option<Vec<IpAddr>>,
}

/// Per-network options of the container (`networks` values).
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PerNetworkOptions {
    #[serde(default)]
    pub(crate) aliases: Option<Vec<String>>,
    pub(crate) interface_name: String,
    #[serde(default)]
    pub(crate) static_ips: Option<Vec<IpAddr>>,
    #[serde(default)]
    pub(crate) static_mac: Option<String>,
}

/// One published port range.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct PortMapping {
    #[serde(default)]
    pub(crate) host_ip: String,
    pub(crate) container_port: u16,
    pub(crate) host_port: u16,
    #[serde(default)]
    pub(crate) range: u16,
    #[serde(default)]
    pub(crate) protocol: String,
}

/// What podman sends on stdin for setup and teardown.
#[derive(Clone, Debug, Deserialize)]
pub(crate) struct NetworkOptions {
    pub(crate) container_id: String,
    pub(crate) container_name: String,
    pub(crate) networks: BTreeMap<String, PerNetworkOptions>,
    pub(crate) network_info: BTreeMap<String, Network>,
    #[serde(default)]
    pub(crate) port_mappings: Option<Vec<PortMapping>>,
    #[serde(default)]
    pub(crate) dns_servers: Option<Vec<IpAddr>>,
}

/// An address of an interface with its gateway.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NetAddress {
    pub(crate) ipnet: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) gateway: Option<IpAddr>,
}

/// One interface in the container.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct NetInterface {
    pub(crate) mac_address: String,
    pub(crate) subnets: Vec<NetAddress>,
}

/// What setup reports per network.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct StatusBlock {
    pub(crate) interfaces: BTreeMap<String, NetInterface>,
    pub(crate) dns_server_ips: Vec<IpAddr>,
    pub(crate) dns_search_domains: Vec<String>,
}
