//! `berth-ipam`: IP address management for berth networks.
//!
//! This crate owns the pure address logic of the network stack:
//!
//! - parsing and validating user input: subnets (`--subnet`), gateways
//!   (`--gateway`), ip ranges (`--ip-range`) and static addresses (`--ip`);
//! - the default subnet pools (Docker-like for IPv4, a fixed ULA /48 for
//!   IPv6) and the choice of a free subnet from them;
//! - overlap checks between subnets;
//! - allocation of endpoint addresses inside a subnet or its ip range.
//!
//! It must not do any I/O: it never reads the host's routes or addresses,
//! never touches the kernel and never persists anything. Callers (the
//! engine) gather the taken subnets and the used addresses, pass them in, and
//! record the results themselves. Every function is deterministic.
//!
//! IPv4 is fully supported; IPv6 goes through the same API ([`IpNet`],
//! [`IpAddr`]). Internally addresses of both families are handled as `u128`.

mod addr;
mod alloc;
mod error;
mod parse;
mod pool;

use std::net::IpAddr;

pub use alloc::{after, allocate, allocate_next, check_static, subnet_for};
pub use error::{Error, Reserved};
pub use ipnet::{IpNet, Ipv4Net, Ipv6Net};
pub use parse::{parse_ip, parse_range, parse_subnet, subnet_spec};
pub use pool::{
    check_overlap, choose_subnet, default_bridge_subnet, default_pools_v4, default_pools_v6, Pool,
    DEFAULT_V6_ULA,
};

/// One subnet of a network as configured.
///
/// Build it with [`subnet_spec`], which validates that the gateway and the
/// range fit the subnet; the allocation functions assume a valid spec (an
/// invalid range only shrinks the set of candidates).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubnetSpec {
    /// The network's subnet, e.g. `172.18.0.0/16` (no host bits set).
    pub subnet: IpNet,
    /// The gateway address, the host side of the bridge; never allocated.
    pub gateway: IpAddr,
    /// Optional sub-CIDR of `subnet` that dynamic allocation draws from.
    pub range: Option<IpNet>,
}
