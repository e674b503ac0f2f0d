//! The JSON records stored in etcd.

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::net::IpAddr;

/// A registered host: its name and VTEP address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRecord {
    pub name: String,
    pub vtep: IpAddr,
}

/// An overlay network, the same on every host.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRecord {
    pub id: String,
    pub name: String,
    pub vni: u32,
    pub subnet: IpNet,
    pub gateway: IpAddr,
    pub ip_range: Option<IpNet>,
    pub internal: bool,
    /// Requested MTU; each host uses at most its underlay MTU - 50.
    pub mtu: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub created: String,
}

/// Who holds an address: the value of an `ipam/` key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    pub host: String,
    pub container: String,
}

/// One container's endpoint on an overlay network, as other hosts need to know it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointRecord {
    pub id: String,
    pub network_id: String,
    pub host: String,
    pub vtep: IpAddr,
    pub container_id: String,
    pub container_name: String,
    pub aliases: Vec<String>,
    pub ip: IpAddr,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
}
