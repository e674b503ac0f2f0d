//! The fast path: unicast between two containers of one network, forwarded from one host end
//! to the other at the first's ingress, off the bridge.
//!
//! A bridged frame passes the bridge and, through the kernel's bridge netfilter, every inet
//! hook of the namespace (berth's `guard`, conntrack, nat and `forward` hooks included) even
//! when no rule applies to it. A netdev `ingress` chain on the containers' host ends looks the
//! frame's destination up in one map and, when it is another container of the same network,
//! hands it straight to that container's host end (`fwd`):
//!
//! ```text
//! table netdev berth {
//!     map to_port { type devgroup . ether_addr : iface_index; counter; }
//!     chain ingress { type filter hook ingress devices = { bth... } priority 0; policy accept;
//!         fwd to meta iifgroup . ether daddr map @to_port
//!     }
//! }
//! ```
//!
//! - The key holds the network, as the interface group every host end of the network carries
//!   ([`group`]), beside the container's MAC: a frame from one network can never reach
//!   another network's container by naming its MAC.
//! - Only the containers' own MACs are elements. Broadcast, multicast and frames to the
//!   gateway (the host, published ports, hairpin, outbound traffic) find none and go on to
//!   the bridge, whose rules are unchanged.
//! - `icc=false` networks (isolated ports) and networks with the option `fastpath=false` get
//!   no element and their host ends are not in the chain.
//! - The chain's device list is one more part of each container's batch: its host ends are
//!   added with its elements and removed with them (kernel >= 6.16 keeps the name of a
//!   deleted device in the list until then). nft 1.0.6 cannot create such a chain without a
//!   device, so the chain is created over netlink ([`crate::Firewall::reinstall`]).
//!
//! The price: frames so forwarded are not seen by `tcpdump -i BRIDGE` (`tcpdump -i` a host
//! end still sees them) or by bridge-family rules of other software, and the bridge's
//! forwarding database does not learn from them. `berth network create -o fastpath=false`
//! keeps a network on the bridge.

use berth_kernel::nftables::{encode, Element, Hook};

/// The netdev table's name.
pub const TABLE_NAME: &str = "berth";
/// Its base chain, on the containers' host ends.
pub const CHAIN: &str = "ingress";
/// The map from (network group, container MAC) to the container's host end.
pub const MAP: &str = "to_port";
/// The set whose presence says the netdev table is complete (it is created last).
pub const MARKER: &str = "fastpath_1";
/// `NF_NETDEV_INGRESS`, priority 0 (`filter`).
pub const HOOK: Hook = Hook {
    hooknum: 0,
    priority: 0,
};

/// The table's declarations, for `nft -f -`. Idempotent, so that two processes installing
/// at once both succeed; `fresh` first deletes whatever table of that name was there (for a
/// table this one cannot be declared over: damaged, or from another version).
pub fn declarations(fresh: bool) -> String {
    let reset = match fresh {
        true => format!("add table netdev {TABLE_NAME}\ndelete table netdev {TABLE_NAME}\n"),
        false => String::new(),
    };
    format!(
        "{reset}add table netdev {TABLE_NAME}\n\
         add map netdev {TABLE_NAME} {MAP} {{ type devgroup . ether_addr : iface_index; counter; }}\n"
    )
}

/// The one rule, and the marker, for `nft -f -` once the chain exists (one atomic batch:
/// the chain is flushed first, so it ends with one rule however many processes run it).
pub fn rules() -> String {
    format!(
        "flush chain netdev {TABLE_NAME} {CHAIN}\n\
         add rule netdev {TABLE_NAME} {CHAIN} fwd to meta iifgroup . ether daddr map @{MAP}\n\
         add set netdev {TABLE_NAME} {MARKER} {{ type inet_proto; }}\n"
    )
}

/// The number of rules in the netdev table (constant).
pub const RULES: usize = 1;

/// The interface group of a network's host ends: 31 bits of its id, with the top bit set so
/// that it is never 0 (the kernel's default group) nor one of the small numbers
/// administrators give groups by hand. Ids are random (or a runtime's hashes), so two
/// networks of one host share a group with odds of 1 in 2^31 per pair.
pub fn group(network_id: &str) -> u32 {
    let hex: String = network_id.chars().take(8).collect();
    let n = u32::from_str_radix(&hex, 16).unwrap_or_else(|_| fnv1a(network_id.as_bytes()));
    0x8000_0000 | (n & 0x7fff_ffff)
}

fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, b| {
        (h ^ u32::from(*b)).wrapping_mul(0x0100_0193)
    })
}

/// One container interface reachable by the fast path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FastPort {
    /// The network's [`group`].
    pub group: u32,
    /// The container interface's MAC.
    pub mac: [u8; 6],
    /// The host end's name (the chain's device) and index (the map's value).
    pub host_ifname: String,
    pub host_ifindex: u32,
}

impl FastPort {
    /// The map element: key `group . mac` (the MAC padded to 8 bytes), value the ifindex,
    /// both in host byte order as nft's `devgroup` and `iface_index` are.
    pub(crate) fn element(&self) -> Element {
        let key = encode::concat(&[&self.group.to_ne_bytes(), &self.mac]);
        Element::map(key, self.host_ifindex.to_ne_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_holds_the_network_and_the_mac() {
        let p = FastPort {
            group: 0x8000_0001,
            mac: [2, 0x42, 0xac, 0x11, 0, 2],
            host_ifname: "bth1".into(),
            host_ifindex: 7,
        };
        let e = p.element();
        let mut want = 0x8000_0001u32.to_ne_bytes().to_vec();
        want.extend([2, 0x42, 0xac, 0x11, 0, 2, 0, 0]);
        assert_eq!(e.key, want);
        assert_eq!(e.data, Some(7u32.to_ne_bytes().to_vec()));
        let other = FastPort {
            group: 0x8000_0002,
            ..p.clone()
        };
        assert_ne!(other.element().key, e.key);
    }

    #[test]
    fn groups_are_never_zero_and_follow_the_id() {
        let a = "0000000000000000000000000000000000000000000000000000000000000000";
        assert_eq!(group(a), 0x8000_0000);
        assert_eq!(group("7fffffffab"), 0xffff_ffff);
        assert_eq!(group("12345678ff"), 0x9234_5678);
        assert_ne!(group("12345678ff"), group("12345679ff"));
        // A name that is not hex still gets a group, and always the same one.
        assert_eq!(group("podman-net"), group("podman-net"));
        assert!(group("podman-net") >= 0x8000_0000);
    }

    #[test]
    fn the_script_declares_the_map_and_rule_in_order() {
        assert!(!declarations(false).contains("delete"));
        let d = declarations(true);
        assert!(d.find("delete table netdev berth").unwrap() < d.find("add map").unwrap());
        assert!(d.contains("type devgroup . ether_addr : iface_index; counter;"));
        let r = rules();
        assert_eq!(r.matches("add rule ").count(), RULES);
        assert!(r.find("flush chain").unwrap() < r.find("add rule").unwrap());
        assert!(r.find("add rule").unwrap() < r.find(MARKER).unwrap());
    }
}
