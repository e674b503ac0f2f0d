//! The constant ruleset, as one nft script (pure functions). Installed once per host with
//! `nft -f -`; everything that changes afterwards is an element (see `elements`).

use std::fmt::Write;

/// The table every berth rule lives in.
pub const TABLE: &str = "inet berth";

/// The table's name within the `inet` family.
pub const TABLE_NAME: &str = "berth";

/// Declares the sets, maps and chains, then (re)writes every rule. Declaring is idempotent
/// (`add` of an existing set or chain is a no-op) and each chain is flushed before its rules
/// are added, so applying this batch repairs a damaged table without losing any element.
pub fn skeleton() -> String {
    let mut s = String::from("add table inet berth\n");
    for decl in DECLARATIONS {
        let _ = writeln!(s, "add {decl}");
    }
    for (chain, hook, rules) in CHAINS {
        match hook {
            Some(h) => {
                let _ = writeln!(s, "add chain inet berth {chain} {{ {h}; policy accept; }}");
            }
            None => {
                let _ = writeln!(s, "add chain inet berth {chain}");
            }
        }
        let _ = writeln!(s, "flush chain inet berth {chain}");
        for rule in *rules {
            let _ = writeln!(s, "add rule inet berth {chain} {rule}");
        }
    }
    s
}

/// The set whose presence says the table holds this version of the ruleset. A table
/// without it (missing, flushed, or from an older berth) is rebuilt from the store.
pub const MARKER: &str = "schema_5";

/// Set and map names, shared with the element encoders.
pub mod sets {
    pub const BRIDGES: &str = "bridges";
    pub const INTERNAL_BRIDGES: &str = "internal_bridges";
    pub const SAME_BRIDGE: &str = "same_bridge";
    pub const BRIDGED4: &str = "bridged4";
    pub const BRIDGED6: &str = "bridged6";
    pub const MASQ4: &str = "masq4";
    pub const MASQ6: &str = "masq6";
    pub const PUB4: &str = "pub4";
    pub const PUB4_ADDR: &str = "pub4_addr";
    pub const PUB6: &str = "pub6";
    pub const PUB6_ADDR: &str = "pub6_addr";
}

/// Sets and maps, with the table name: `add` of each is idempotent. Published ports are
/// plain (hash) map elements, one per host port, so a lookup costs the same for one port
/// or a thousand and a range is as many elements as it has ports. Each port element carries
/// a counter, which the DNAT lookup increments (only a connection's first packet passes the
/// nat chains): at removal, a count of 0 says no connection was ever translated by it, so
/// there is no conntrack entry to flush. (`schema_4`: the counters; `schema_5`: `bridged4`
/// and `bridged6`.)
const DECLARATIONS: &[&str] = &[
    "set inet berth schema_5 { type inet_proto; }",
    "set inet berth bridges { type ifname; }",
    "set inet berth internal_bridges { type ifname; }",
    "set inet berth same_bridge { type ifname . ifname; }",
    "set inet berth bridged4 { type ipv4_addr; flags interval; }",
    "set inet berth bridged6 { type ipv6_addr; flags interval; }",
    "set inet berth masq4 { type ipv4_addr; flags interval; }",
    "set inet berth masq6 { type ipv6_addr; flags interval; }",
    "map inet berth pub4 { type inet_proto . inet_service : ipv4_addr . inet_service; counter; }",
    "map inet berth pub4_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; counter; }",
    "map inet berth pub6 { type inet_proto . inet_service : ipv6_addr . inet_service; counter; }",
    "map inet berth pub6_addr { type ipv6_addr . inet_proto . inet_service : ipv6_addr . inet_service; counter; }",
];

/// Chains: name, base-chain hook (None for a regular chain), rules in order.
const CHAINS: &[(&str, Option<&str>, &[&str])] = &[
    (
        "guard",
        Some("type filter hook prerouting priority raw"),
        &[
            // A packet to a container's address (not a gateway's) is one container talking
            // to another on its bridge: no NAT applies to it either way, so conntrack is
            // skipped. The kernel's bridge netfilter (built in here, on by default) runs
            // every bridged frame through these hooks, and conntrack was the largest part of
            // what berth's ruleset cost bridged traffic. A packet that would need a
            // translation is addressed to a host address or a gateway, never to a container:
            // a published port's DNAT (the reply to a masqueraded hairpin goes to the
            // gateway), an outbound masquerade's reply (translated back only at dstnat,
            // after this), the host's own connections (output, not this hook). An untracked
            // packet crossing bridges, or coming from outside, meets `oifname @bridges drop`
            // in `forward` (it has no `ct status dnat`).
            "ip daddr @bridged4 notrack accept",
            "ip6 daddr @bridged6 notrack accept",
            // The route_localnet hole (CVE-2020-8558 class): nothing from outside reaches
            // 127/8.
            "iifname != \"lo\" ip daddr 127.0.0.0/8 drop",
            "iifname != \"lo\" ip6 daddr ::1 drop",
        ],
    ),
    (
        "publish",
        None,
        &[
            // [::1] is never DNAT'd (IPv6 has no route_localnet: the replies would be
            // dropped); the agent relays [::1] host ports in userspace instead.
            "ip6 daddr ::1 return",
            "dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr",
            "meta nfproto ipv4 dnat ip to meta l4proto . th dport map @pub4",
            "dnat ip6 to ip6 daddr . meta l4proto . th dport map @pub6_addr",
            "meta nfproto ipv6 dnat ip6 to meta l4proto . th dport map @pub6",
        ],
    ),
    (
        "prerouting",
        Some("type nat hook prerouting priority dstnat"),
        &["fib daddr type local jump publish"],
    ),
    (
        "output",
        Some("type nat hook output priority -100"),
        &["fib daddr type local jump publish"],
    ),
    (
        "postrouting",
        Some("type nat hook postrouting priority srcnat"),
        &[
            "ct status dnat ip saddr 127.0.0.0/8 masquerade",
            "oifname @bridges ct status dnat ip saddr @masq4 masquerade",
            "oifname @bridges ct status dnat ip6 saddr @masq6 masquerade",
            "oifname != @bridges ip saddr @masq4 masquerade",
            "oifname != @bridges ip6 saddr @masq6 masquerade",
        ],
    ),
    (
        "forward",
        Some("type filter hook forward priority filter"),
        &[
            // First: on its own bridge a container's traffic passes as on a switch (most of
            // it is untracked, see `guard`).
            "iifname . oifname @same_bridge accept",
            "ct state established,related accept",
            "ct state invalid drop",
            "iifname @internal_bridges drop",
            "oifname @internal_bridges drop",
            "ct status dnat oifname @bridges accept",
            "oifname @bridges drop",
            "iifname @bridges accept",
        ],
    ),
];

/// The number of rules in the ruleset (constant: it never grows with networks or ports).
pub fn rule_count() -> usize {
    CHAINS.iter().map(|(_, _, r)| r.len()).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skeleton_flushes_each_chain_before_its_rules() {
        let s = skeleton();
        for (chain, _, rules) in CHAINS {
            let flush = s
                .find(&format!("flush chain inet berth {chain}\n"))
                .unwrap();
            let first = s
                .find(&format!("add rule inet berth {chain} {}", rules[0]))
                .unwrap();
            assert!(flush < first, "chain {chain}");
        }
        assert!(s.contains("add set inet berth masq4 { type ipv4_addr; flags interval; }"));
        assert!(s.contains("add map inet berth pub4 "));
    }

    #[test]
    fn rule_count_is_constant() {
        assert_eq!(rule_count(), 24);
        assert_eq!(skeleton().matches("add rule ").count(), rule_count());
    }

    #[test]
    fn every_set_is_declared_with_the_marker() {
        let s = skeleton();
        for set in [
            MARKER,
            sets::BRIDGES,
            sets::INTERNAL_BRIDGES,
            sets::SAME_BRIDGE,
            sets::BRIDGED4,
            sets::BRIDGED6,
            sets::MASQ4,
            sets::MASQ6,
            sets::PUB4,
            sets::PUB4_ADDR,
            sets::PUB6,
            sets::PUB6_ADDR,
        ] {
            assert!(
                s.contains(&format!("set inet berth {set} {{"))
                    || s.contains(&format!("map inet berth {set} {{")),
                "{set}"
            );
        }
    }
}
