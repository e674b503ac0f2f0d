//! The error type of the crate.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;

/// Which reserved address of a subnet a value collides with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reserved {
    /// The first address of the subnet (host bits all zero).
    NetworkAddress,
    /// The last address of an IPv4 subnet (host bits all one).
    Broadcast,
    /// The subnet's gateway.
    Gateway,
}

impl fmt::Display for Reserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reserved::NetworkAddress => "network address",
            Reserved::Broadcast => "broadcast address",
            Reserved::Gateway => "gateway address",
        })
    }
}

/// Everything that can go wrong in address management.
///
/// Messages are lower case, without trailing period, and name the value.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The subnet text is not a CIDR of a usable form.
    #[error("invalid subnet {input:?}: {reason}")]
    InvalidSubnet { input: String, reason: String },
    /// The subnet has host bits set; `network` is what was probably meant.
    #[error("invalid subnet {input:?}: host bits are set, the network address is {network}")]
    HostBitsSet { input: String, network: IpNet },
    /// The prefix is too long to hold a gateway and one container.
    #[error(
        "invalid subnet {input:?}: prefix length /{prefix_len} is too long to hold a gateway \
         and a container (at most /{max})"
    )]
    PrefixTooLong {
        input: String,
        prefix_len: u8,
        max: u8,
    },
    /// The ip range text is not a valid CIDR.
    #[error("invalid ip range {input:?}: {reason}")]
    InvalidRange { input: String, reason: String },
    /// The address text is not an IP address.
    #[error("invalid address {input:?}: {reason}")]
    InvalidAddress { input: String, reason: String },
    /// A gateway, range or address is IPv4 where the subnet is IPv6 or the
    /// reverse. `what` is "gateway", "ip range" or "address".
    #[error("{what} {value} is not the same address family as subnet {subnet}")]
    FamilyMismatch {
        what: &'static str,
        value: String,
        subnet: IpNet,
    },
    /// The gateway lies outside the subnet.
    #[error("gateway {gateway} is not inside subnet {subnet}")]
    GatewayOutsideSubnet { gateway: IpAddr, subnet: IpNet },
    /// The gateway is the network or broadcast address of the subnet.
    #[error("gateway {gateway} is the {kind} of subnet {subnet}")]
    GatewayReserved {
        gateway: IpAddr,
        subnet: IpNet,
        kind: Reserved,
    },
    /// The ip range is not a sub-CIDR of the subnet.
    #[error("ip range {range} is not inside subnet {subnet}")]
    RangeOutsideSubnet { range: IpNet, subnet: IpNet },
    /// The ip range holds no assignable address (only reserved ones).
    #[error("ip range {range} has no assignable address in subnet {subnet}")]
    RangeEmpty { range: IpNet, subnet: IpNet },
    /// The subnet overlaps the subnet `other` of network `owner`.
    #[error("subnet {subnet} overlaps network {owner}'s subnet {other}")]
    Overlap {
        subnet: IpNet,
        owner: String,
        other: IpNet,
    },
    /// A static address lies outside the subnet.
    #[error("address {addr} is not inside subnet {subnet}")]
    AddressOutsideSubnet { addr: IpAddr, subnet: IpNet },
    /// A static address is the network, broadcast or gateway address.
    #[error("address {addr} is the {kind} of subnet {subnet}")]
    AddressReserved {
        addr: IpAddr,
        subnet: IpNet,
        kind: Reserved,
    },
    /// A static address is already used by another endpoint.
    #[error("address {addr} is already in use in subnet {subnet}")]
    InUse { addr: IpAddr, subnet: IpNet },
    /// No free address is left in the subnet (or in its ip range).
    #[error("no free address left in {}", pool_name(.subnet, .range))]
    Exhausted { subnet: IpNet, range: Option<IpNet> },
}

fn pool_name(subnet: &IpNet, range: &Option<IpNet>) -> String {
    match range {
        Some(r) => format!("ip range {r} of subnet {subnet}"),
        None => format!("subnet {subnet}"),
    }
}
