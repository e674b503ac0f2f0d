//! The constant ruleset and the element batches, as nft script text (pure functions).

use ipnet::IpNet;
use std::fmt::Write;

/// The table every berth rule lives in.
pub const TABLE: &str = "inet berth";

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

/// Sets and maps, with the table name: `add` of each is idempotent.
const DECLARATIONS: &[&str] = &[
    "set inet berth bridges { type ifname; }",
    "set inet berth internal_bridges { type ifname; }",
    "set inet berth same_bridge { type ifname . ifname; }",
    "set inet berth masq4 { type ipv4_addr; flags interval; }",
    // Published ports (filled by port publishing): any host address, one host address, and
    // same-numbered port ranges as interval elements.
    "map inet berth pub4_any { type inet_proto . inet_service : ipv4_addr . inet_service; }",
    "map inet berth pub4_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }",
    "map inet berth pub4_range { type inet_proto . inet_service : ipv4_addr; flags interval; }",
];

/// Chains: name, base-chain hook (None for a regular chain), rules in order.
const CHAINS: &[(&str, Option<&str>, &[&str])] = &[
    // The route_localnet hole (CVE-2020-8558 class): nothing from outside reaches 127/8.
    (
        "guard",
        Some("type filter hook prerouting priority raw"),
        &["iifname != \"lo\" ip daddr 127.0.0.0/8 drop"],
    ),
    (
        "publish",
        None,
        &[
            "dnat ip to ip daddr . meta l4proto . th dport map @pub4_addr",
            "dnat ip to meta l4proto . th dport map @pub4_any",
            "dnat ip to meta l4proto . th dport map @pub4_range",
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
            "oifname != @bridges ip saddr @masq4 masquerade",
        ],
    ),
    (
        "forward",
        Some("type filter hook forward priority filter"),
        &[
            "ct state established,related accept",
            "ct state invalid drop",
            "iifname . oifname @same_bridge accept",
            "iifname @internal_bridges drop",
            "oifname @internal_bridges drop",
            "ct status dnat oifname @bridges accept",
            "oifname @bridges drop",
            "iifname @bridges accept",
        ],
    ),
];

/// What one active bridge network contributes to the ruleset.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkElements {
    /// The bridge device.
    pub bridge: String,
    /// Internal networks: no traffic leaves or enters the bridge except to the host.
    pub internal: bool,
    /// Subnets whose outbound traffic is masqueraded (empty for internal networks).
    pub subnets: Vec<IpNet>,
}

impl NetworkElements {
    fn lines(&self, verb: &str) -> Vec<String> {
        let b = &self.bridge;
        let mut v = vec![
            format!("{verb} element inet berth bridges {{ \"{b}\" }}"),
            format!("{verb} element inet berth same_bridge {{ \"{b}\" . \"{b}\" }}"),
        ];
        if self.internal {
            v.push(format!(
                "{verb} element inet berth internal_bridges {{ \"{b}\" }}"
            ));
        } else {
            for net in self.subnets.iter().filter(|n| matches!(n, IpNet::V4(_))) {
                v.push(format!("{verb} element inet berth masq4 {{ {net} }}"));
            }
        }
        v
    }

    /// The batch lines that add this network's elements.
    pub fn add_lines(&self) -> Vec<String> {
        self.lines("add")
    }

    /// The batch lines that delete this network's elements, one element a line.
    pub fn delete_lines(&self) -> Vec<String> {
        self.lines("delete")
    }
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
        assert!(s.contains("add map inet berth pub4_any"));
    }

    #[test]
    fn rule_count_is_constant() {
        let n: usize = CHAINS.iter().map(|(_, _, r)| r.len()).sum();
        assert_eq!(n, 17);
    }

    #[test]
    fn internal_networks_get_no_masquerade() {
        let e = NetworkElements {
            bridge: "br1".into(),
            internal: true,
            subnets: vec!["10.1.0.0/24".parse().unwrap()],
        };
        let lines = e.add_lines().join("\n");
        assert!(lines.contains("internal_bridges { \"br1\" }"));
        assert!(!lines.contains("masq4"));
        let e = NetworkElements {
            internal: false,
            ..e
        };
        let lines = e.add_lines().join("\n");
        assert!(lines.contains("add element inet berth masq4 { 10.1.0.0/24 }"));
        assert!(!lines.contains("internal_bridges"));
        assert!(e.delete_lines()[0].starts_with("delete element inet berth bridges"));
    }
}
