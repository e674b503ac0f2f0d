//! rtnetlink (NETLINK_ROUTE) requests: links (with their counters), addresses, routes,
//! neighbours, VXLAN devices with their FDB and neighbour entries.
//!
//! Each builder sends exactly one request and waits for the kernel's
//! acknowledgement, so errors come back typed ([`crate::Error::Netlink`])
//! and attributed to the request that caused them.

mod addr;
mod link;
mod neighbour;
mod route;
mod socket;
mod vxlan;

pub use addr::Address;
pub use link::{Link, LinkStats};
pub use neighbour::Neighbour;
pub use route::{Route, TABLE_LOCAL, TABLE_MAIN};
pub use socket::Netlink;
pub use vxlan::{fmt_mac, FdbEntry, StaticNeighbour, FLOOD_MAC, VXLAN_PORT};

use crate::{Error, Result};

/// Checks an interface name the way the kernel does (`dev_valid_name`), so
/// a bad name fails with a clear message instead of `EINVAL`.
pub(crate) fn check_ifname(name: &str) -> Result<()> {
    let problem = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > 15 {
        Some("it is longer than 15 bytes")
    } else if name == "." || name == ".." {
        Some("it is reserved")
    } else if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        Some("it contains '/', ':', NUL or whitespace")
    } else {
        None
    };
    match problem {
        Some(why) => Err(Error::Invalid(format!("interface name {name:?}: {why}"))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names() {
        check_ifname("eth0").unwrap();
        check_ifname("bth0123456789ab").unwrap();
        assert!(check_ifname("bth0123456789abc").is_err());
        assert!(check_ifname("").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("..").is_err());
        assert_eq!(
            check_ifname("").unwrap_err().to_string(),
            "invalid argument: interface name \"\": it is empty"
        );
    }
}
