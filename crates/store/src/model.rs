//! The records the store keeps. Plain data: no behaviour beyond naming.

use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One subnet of a network, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetRow {
    pub subnet: IpNet,
    pub gateway: IpAddr,
    pub range: Option<IpNet>,
}

/// A network: its driver, options and subnets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Network {
    /// 64 hex characters.
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `none`.
    pub driver: String,
    /// The Linux bridge device, for bridge networks.
    pub bridge: Option<String>,
    pub internal: bool,
    /// Inter-container communication on this network.
    pub icc: bool,
    pub mtu: Option<u32>,
    pub ipv6: bool,
    /// Built-in networks (`bridge`, `host`, `none`) cannot be removed.
    pub builtin: bool,
    /// The `-o KEY=VALUE` options as given.
    pub options: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    pub subnets: Vec<SubnetRow>,
    /// RFC 3339 creation time.
    pub created: String,
}

/// Where a container's network namespace comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// Its own namespace with endpoints on bridge networks.
    Bridge,
    /// The host's namespace.
    Host,
    /// Its own namespace with only `lo`.
    None,
}

impl NetworkMode {
    pub fn as_str(self) -> &'static str {
        match self {
            NetworkMode::Bridge => "bridge",
            NetworkMode::Host => "host",
            NetworkMode::None => "none",
        }
    }

    pub fn parse(s: &str) -> Option<NetworkMode> {
        match s {
            "bridge" => Some(NetworkMode::Bridge),
            "host" => Some(NetworkMode::Host),
            "none" => Some(NetworkMode::None),
            _ => None,
        }
    }
}

/// The lifecycle state of a container's process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContainerState {
    /// Network set up, process not started yet.
    Created,
    Running,
    Exited,
}

impl ContainerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerState::Created => "created",
            ContainerState::Running => "running",
            ContainerState::Exited => "exited",
        }
    }

    pub fn parse(s: &str) -> Option<ContainerState> {
        match s {
            "created" => Some(ContainerState::Created),
            "running" => Some(ContainerState::Running),
            "exited" => Some(ContainerState::Exited),
            _ => None,
        }
    }
}

/// A container: a process with its own network, UTS and mount namespaces.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Container {
    pub id: String,
    pub name: String,
    pub hostname: String,
    pub command: Vec<String>,
    pub mode: NetworkMode,
    /// The persistent network namespace file (none for host mode).
    pub netns: Option<String>,
    pub pid: Option<i32>,
    /// Start time of `pid` (clock ticks since boot), to tell a reused pid apart.
    pub pid_start: Option<u64>,
    pub state: ContainerState,
    pub exit_code: Option<i32>,
    pub auto_remove: bool,
    /// `--dns` servers.
    pub dns: Vec<String>,
    pub created: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// `None` for berth's own containers; else the door whose runtime owns the container
    /// and its network namespace (`netavark`, `cni`): berth only adds and removes endpoints.
    pub owner: Option<String>,
}

/// One address of an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointAddress {
    pub addr: IpAddr,
    pub prefix_len: u8,
    pub gateway: Option<IpAddr>,
}

/// A container's attachment to a network: a veth pair with addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    pub id: String,
    pub container_id: String,
    pub network_id: String,
    /// Interface name inside the container (`eth0`, ...).
    pub ifname: String,
    /// Host end of the veth pair.
    pub host_ifname: String,
    /// `aa:bb:cc:dd:ee:ff`.
    pub mac: String,
    pub aliases: Vec<String>,
    pub addresses: Vec<EndpointAddress>,
}

/// One published host port of a container (a published range is one row per port).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortMapping {
    pub container_id: String,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// `""` for every host address of both families, `0.0.0.0` or `::` for every address of
    /// one family, else one host address.
    pub host_ip: String,
    pub host_port: u16,
    pub container_port: u16,
}

/// One entry of the event log (`berth events`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Order of the event (assigned by the store).
    pub id: i64,
    /// Microseconds since the Unix epoch.
    pub time_us: i64,
    /// `network`, `container` or `firewall`.
    pub kind: String,
    /// `create`, `start`, `connect`, `disconnect`, `stop`, `destroy`, `repair`, ...
    pub action: String,
    pub actor_id: String,
    pub actor_name: String,
    /// Details such as the network of a `connect`.
    pub attributes: BTreeMap<String, String>,
}
