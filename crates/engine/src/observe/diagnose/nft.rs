//! A small evaluator of the live nftables ruleset (`nft -j list ruleset`) for one new flow:
//! which base chains on a hook drop it, by which rule or policy.
//!
//! It understands the matches berth's own rules and common filter rules use (interface
//! names, addresses and prefixes, ports, `ct state`, `ct status dnat`, named sets and
//! concatenations, jumps into regular chains). A rule with a match it does not understand
//! is skipped and the result marked uncertain, so a verdict never rests on a guess.

use serde_json::Value;
use std::collections::BTreeMap;
use std::net::IpAddr;

/// One new connection as the firewall sees it.
#[derive(Clone, Debug)]
pub(crate) struct Flow {
    pub(crate) iif: String,
    pub(crate) oif: String,
    pub(crate) saddr: IpAddr,
    pub(crate) daddr: IpAddr,
    /// `tcp`, `udp`, `sctp`, or `` for none.
    pub(crate) proto: String,
    pub(crate) dport: Option<u16>,
    /// DNAT'd by a published port.
    pub(crate) dnat: bool,
}

/// Where a flow was dropped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Drop {
    /// `inet berth`, `ip filter`, ...
    pub(crate) table: String,
    pub(crate) chain: String,
    /// The rule (text with its handle), or `policy drop`.
    pub(crate) rule: String,
}

/// The ruleset, parsed.
pub(crate) struct Ruleset {
    items: Vec<Value>,
    /// (family, table, chain, handle) -> rule text, from `nft -a list ruleset`.
    text: BTreeMap<(String, String, String, i64), String>,
}

enum Outcome {
    Accept,
    Drop(Drop),
    /// Fell off the end (or returned): the base chain's policy decides.
    Continue,
}

impl Ruleset {
    /// Parses `nft -j list ruleset` and `nft -a list ruleset` output.
    pub(crate) fn parse(json: &str, text: &str) -> Option<Ruleset> {
        let v: Value = serde_json::from_str(json).ok()?;
        Some(Ruleset {
            items: v.get("nftables")?.as_array()?.clone(),
            text: rule_texts(text),
        })
    }

    fn objects<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.items.iter().filter_map(move |i| i.get(kind))
    }

    /// Whether the table exists.
    pub(crate) fn has_table(&self, family: &str, name: &str) -> bool {
        self.objects("table")
            .any(|t| t["family"] == family && t["name"] == name)
    }

    /// The elements of a named set (of a map: `[key, value]` pairs), without the
    /// `{"elem": {"val": KEY, "counter": ...}}` wrapping of elements that carry a counter.
    pub(crate) fn set_elems(&self, family: &str, table: &str, name: &str) -> Vec<Value> {
        fn bare(v: &Value) -> Value {
            v.get("elem")
                .and_then(|e| e.get("val"))
                .unwrap_or(v)
                .clone()
        }
        self.objects("set")
            .chain(self.objects("map"))
            .find(|s| s["family"] == family && s["table"] == table && s["name"] == name)
            .and_then(|s| s.get("elem"))
            .and_then(Value::as_array)
            .map(|elems| {
                elems
                    .iter()
                    .map(|e| match e.as_array() {
                        Some(pair) => Value::Array(pair.iter().map(bare).collect()),
                        None => bare(e),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Where berth's publish maps DNAT `h:port/proto` to, as its `publish` chain looks them
    /// up: the per-address map first, then the any-address one.
    pub(crate) fn dnat_target(&self, h: IpAddr, proto: &str, port: u16) -> Option<(IpAddr, u16)> {
        let (by_addr, any) = match h {
            IpAddr::V4(_) => ("pub4_addr", "pub4"),
            IpAddr::V6(_) => ("pub6_addr", "pub6"),
        };
        let key_addr = serde_json::json!({"concat": [h.to_string(), proto, port]});
        let key_any = serde_json::json!({"concat": [proto, port]});
        [(by_addr, key_addr), (any, key_any)]
            .into_iter()
            .find_map(|(map, key)| {
                self.set_elems("inet", "berth", map).iter().find_map(|e| {
                    let pair = e.as_array()?;
                    if pair.first()? != &key {
                        return None;
                    }
                    let to = pair.get(1)?["concat"].as_array()?;
                    Some((
                        to.first()?.as_str()?.parse().ok()?,
                        to.get(1)?.as_u64()? as u16,
                    ))
                })
            })
    }

    /// Every base chain on `hook` that sees `flow`'s family, in priority order:
    /// (family, table, chain, policy).
    fn base_chains(&self, hook: &str, v6: bool) -> Vec<(String, String, String, String, i64)> {
        let mut out: Vec<_> = self
            .objects("chain")
            .filter(|c| c["hook"] == hook && c["type"] == "filter")
            .filter(|c| match c["family"].as_str() {
                Some("inet") => true,
                Some("ip") => !v6,
                Some("ip6") => v6,
                _ => false,
            })
            .map(|c| {
                (
                    c["family"].as_str().unwrap_or_default().to_string(),
                    c["table"].as_str().unwrap_or_default().to_string(),
                    c["name"].as_str().unwrap_or_default().to_string(),
                    c["policy"].as_str().unwrap_or("accept").to_string(),
                    c["prio"].as_i64().unwrap_or(0),
                )
            })
            .collect();
        out.sort_by_key(|c| c.4);
        out
    }

    /// The first drop of `flow` on `hook` by a table `wanted` selects (`family`, `name`);
    /// and whether some rule could not be evaluated.
    pub(crate) fn dropped_by(
        &self,
        hook: &str,
        flow: &Flow,
        wanted: impl Fn(&str, &str) -> bool,
    ) -> (Option<Drop>, bool) {
        let mut uncertain = false;
        for (family, table, chain, policy, _) in self.base_chains(hook, flow.daddr.is_ipv6()) {
            if !wanted(&family, &table) {
                continue;
            }
            match self.eval(&family, &table, &chain, flow, 0, &mut uncertain) {
                Outcome::Accept => {}
                Outcome::Drop(d) => return (Some(d), uncertain),
                Outcome::Continue if policy == "drop" => {
                    return (
                        Some(Drop {
                            table: format!("{family} {table}"),
                            chain,
                            rule: "policy drop".into(),
                        }),
                        uncertain,
                    )
                }
                Outcome::Continue => {}
            }
        }
        (None, uncertain)
    }

    fn eval(
        &self,
        family: &str,
        table: &str,
        chain: &str,
        flow: &Flow,
        depth: usize,
        uncertain: &mut bool,
    ) -> Outcome {
        if depth > 16 {
            *uncertain = true;
            return Outcome::Continue;
        }
        let rules = self
            .objects("rule")
            .filter(|r| r["family"] == family && r["table"] == table && r["chain"] == chain);
        for rule in rules {
            let Some(exprs) = rule["expr"].as_array() else {
                continue;
            };
            let mut all = Some(true);
            let mut verdict = None;
            for e in exprs {
                if let Some(m) = e.get("match") {
                    match self.matches(m, flow, family, table) {
                        Some(true) => {}
                        Some(false) => {
                            all = Some(false);
                            break;
                        }
                        None => all = None,
                    }
                } else if let Some(v) = verdict_of(e) {
                    verdict = Some(v);
                }
            }
            match all {
                Some(false) => continue,
                None => {
                    if verdict.is_some() {
                        *uncertain = true;
                    }
                    continue;
                }
                Some(true) => {}
            }
            let handle = rule["handle"].as_i64().unwrap_or(-1);
            match verdict {
                Some(("accept", _)) => return Outcome::Accept,
                Some(("drop" | "reject", _)) => {
                    let key = (family.into(), table.into(), chain.into(), handle);
                    let text = self
                        .text
                        .get(&key)
                        .cloned()
                        .unwrap_or_else(|| format!("rule with handle {handle}"));
                    return Outcome::Drop(Drop {
                        table: format!("{family} {table}"),
                        chain: chain.into(),
                        rule: text,
                    });
                }
                Some(("jump", target)) => {
                    match self.eval(family, table, &target, flow, depth + 1, uncertain) {
                        Outcome::Continue => {}
                        o => return o,
                    }
                }
                Some(("goto", target)) => {
                    return self.eval(family, table, &target, flow, depth + 1, uncertain)
                }
                Some(("return", _)) => return Outcome::Continue,
                _ => {}
            }
        }
        Outcome::Continue
    }

    /// Whether a `match` expression holds for the flow; `None` when it cannot be told.
    fn matches(&self, m: &Value, flow: &Flow, family: &str, table: &str) -> Option<bool> {
        let left = left_value(&m["left"], flow)?;
        let hit = self.compare(&left, &m["right"], family, table)?;
        Some(match m["op"].as_str() {
            Some("!=") => !hit,
            Some("==" | "in") | None => hit,
            _ => return None,
        })
    }

    fn compare(&self, left: &Val, right: &Value, family: &str, table: &str) -> Option<bool> {
        match right {
            Value::String(s) if s.starts_with('@') => {
                let elems = self.set_elems(family, table, &s[1..]);
                let mut unknown = false;
                for e in &elems {
                    match self.compare(left, e, family, table) {
                        Some(true) => return Some(true),
                        None => unknown = true,
                        Some(false) => {}
                    }
                }
                (!unknown).then_some(false)
            }
            Value::Array(items) => self.any(left, items, family, table),
            Value::Object(o) if o.contains_key("set") => {
                self.any(left, o["set"].as_array()?, family, table)
            }
            Value::Object(o) if o.contains_key("concat") => match left {
                Val::Concat(parts) => {
                    let rs = o["concat"].as_array()?;
                    if rs.len() != parts.len() {
                        return Some(false);
                    }
                    let mut all = true;
                    for (l, r) in parts.iter().zip(rs) {
                        all &= self.compare(l, r, family, table)?;
                    }
                    Some(all)
                }
                _ => None,
            },
            Value::Object(o) if o.contains_key("prefix") => {
                let Val::Addr(a) = left else { return None };
                let net: ipnet::IpNet = format!(
                    "{}/{}",
                    o["prefix"]["addr"].as_str()?,
                    o["prefix"]["len"].as_u64()?
                )
                .parse()
                .ok()?;
                Some(net.contains(a))
            }
            Value::Object(o) if o.contains_key("range") => {
                let r = o["range"].as_array()?;
                match left {
                    Val::Num(n) => Some(*n >= r.first()?.as_u64()? && *n <= r.get(1)?.as_u64()?),
                    Val::Addr(a) => {
                        let lo: IpAddr = r.first()?.as_str()?.parse().ok()?;
                        let hi: IpAddr = r.get(1)?.as_str()?.parse().ok()?;
                        Some(*a >= lo && *a <= hi)
                    }
                    _ => None,
                }
            }
            Value::String(s) => match left {
                Val::Str(l) => Some(match s.strip_suffix('*') {
                    Some(prefix) => l.starts_with(prefix),
                    None => l == s,
                }),
                Val::Flags(fs) => Some(fs.iter().any(|f| f == s)),
                Val::Addr(a) => Some(s.parse::<IpAddr>().ok()? == *a),
                Val::Num(_) | Val::Concat(_) => None,
            },
            Value::Number(n) => match left {
                Val::Num(l) => Some(n.as_u64()? == *l),
                _ => None,
            },
            _ => None,
        }
    }

    fn any(&self, left: &Val, items: &[Value], family: &str, table: &str) -> Option<bool> {
        let mut unknown = false;
        for i in items {
            match self.compare(left, i, family, table) {
                Some(true) => return Some(true),
                None => unknown = true,
                Some(false) => {}
            }
        }
        (!unknown).then_some(false)
    }
}

/// The value a match's left side takes for the flow.
#[derive(Debug)]
enum Val {
    Str(String),
    Addr(IpAddr),
    Num(u64),
    /// `ct state` / `ct status`: the flags that are set.
    Flags(Vec<String>),
    Concat(Vec<Val>),
}

fn left_value(left: &Value, flow: &Flow) -> Option<Val> {
    if let Some(key) = left.get("meta").and_then(|m| m["key"].as_str()) {
        return match key {
            "iifname" => Some(Val::Str(flow.iif.clone())),
            "oifname" => Some(Val::Str(flow.oif.clone())),
            "l4proto" => Some(Val::Str(flow.proto.clone())),
            "nfproto" => Some(Val::Str(
                if flow.daddr.is_ipv6() { "ipv6" } else { "ipv4" }.into(),
            )),
            _ => None,
        };
    }
    if let Some(key) = left.get("ct").and_then(|c| c["key"].as_str()) {
        return match key {
            "state" => Some(Val::Flags(vec!["new".into()])),
            "status" => Some(Val::Flags(match flow.dnat {
                true => vec!["dnat".into()],
                false => vec![],
            })),
            _ => None,
        };
    }
    if let Some(p) = left.get("payload") {
        let proto = p["protocol"].as_str()?;
        return match (proto, p["field"].as_str()?) {
            ("ip" | "ip6", "saddr") => Some(Val::Addr(flow.saddr)),
            ("ip" | "ip6", "daddr") => Some(Val::Addr(flow.daddr)),
            ("ip", "protocol") | ("ip6", "nexthdr") => Some(Val::Str(flow.proto.clone())),
            (l4, "dport") if l4 == flow.proto || l4 == "th" => {
                flow.dport.map(|p| Val::Num(p.into()))
            }
            // A tcp match on a udp flow does not hold.
            (_, "dport") => Some(Val::Flags(vec![])),
            _ => None,
        };
    }
    if let Some(parts) = left.get("concat").and_then(Value::as_array) {
        return parts
            .iter()
            .map(|p| left_value(p, flow))
            .collect::<Option<Vec<_>>>()
            .map(Val::Concat);
    }
    None
}

fn verdict_of(e: &Value) -> Option<(&'static str, String)> {
    for v in ["accept", "drop", "reject", "return"] {
        if e.get(v).is_some() {
            return Some((v, String::new()));
        }
    }
    for v in ["jump", "goto"] {
        if let Some(t) = e.get(v).and_then(|j| j["target"].as_str()) {
            return Some((v, t.to_string()));
        }
    }
    None
}

/// Maps each rule of `nft -a list ruleset` to its text, keyed by family, table, chain and
/// handle.
fn rule_texts(text: &str) -> BTreeMap<(String, String, String, i64), String> {
    let mut out = BTreeMap::new();
    let (mut family, mut table, mut chain) = (String::new(), String::new(), String::new());
    for line in text.lines() {
        let l = line.trim();
        let words: Vec<&str> = l.split_whitespace().collect();
        if let ["table", f, t, ..] = words[..] {
            (family, table) = (f.to_string(), t.to_string());
        } else if let ["chain", c, ..] = words[..] {
            chain = c.to_string();
        } else if let Some((rule, handle)) = l.rsplit_once(" # handle ") {
            if let Ok(h) = handle.trim().parse() {
                out.insert(
                    (family.clone(), table.clone(), chain.clone(), h),
                    rule.trim().to_string(),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERTH_FORWARD: &str = r#"{"nftables": [
      {"table": {"family": "inet", "name": "berth", "handle": 2}},
      {"set": {"family": "inet", "name": "bridges", "table": "berth", "type": "ifname", "handle": 2, "elem": ["br-a", "br-b"]}},
      {"set": {"family": "inet", "name": "same_bridge", "table": "berth", "type": ["ifname", "ifname"], "handle": 4, "elem": [{"concat": ["br-a", "br-a"]}]}},
      {"chain": {"family": "inet", "table": "berth", "name": "forward", "handle": 30, "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "berth", "chain": "forward", "handle": 31, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}},
      {"rule": {"family": "inet", "table": "berth", "chain": "forward", "handle": 33, "expr": [{"match": {"op": "==", "left": {"concat": [{"meta": {"key": "iifname"}}, {"meta": {"key": "oifname"}}]}, "right": "@same_bridge"}}, {"accept": null}]}},
      {"rule": {"family": "inet", "table": "berth", "chain": "forward", "handle": 36, "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}}, {"accept": null}]}},
      {"rule": {"family": "inet", "table": "berth", "chain": "forward", "handle": 37, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "@bridges"}}, {"drop": null}]}},
      {"table": {"family": "ip", "name": "filter", "handle": 3}},
      {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1, "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
      {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 2, "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "out0"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}}
    ]}"#;

    const TEXT: &str = "table inet berth { # handle 2\n\tchain forward { # handle 30\n\t\toifname @bridges drop # handle 37\n\t}\n}\n";

    fn flow(iif: &str, oif: &str, dport: u16, dnat: bool) -> Flow {
        Flow {
            iif: iif.into(),
            oif: oif.into(),
            saddr: "10.99.0.2".parse().unwrap(),
            daddr: "172.18.0.2".parse().unwrap(),
            proto: "tcp".into(),
            dport: Some(dport),
            dnat,
        }
    }

    fn berth_only(f: &str, t: &str) -> bool {
        f == "inet" && t == "berth"
    }

    #[test]
    fn berth_forward_chain_names_the_dropping_rule() {
        let rs = Ruleset::parse(BERTH_FORWARD, TEXT).unwrap();
        let (d, uncertain) = rs.dropped_by("forward", &flow("out0", "br-a", 80, false), berth_only);
        assert!(!uncertain);
        let d = d.unwrap();
        assert_eq!(
            (d.table.as_str(), d.chain.as_str()),
            ("inet berth", "forward")
        );
        assert_eq!(d.rule, "oifname @bridges drop");
        assert_eq!(
            rs.dropped_by("forward", &flow("out0", "br-a", 80, true), berth_only)
                .0,
            None
        );
        assert_eq!(
            rs.dropped_by("forward", &flow("br-a", "br-a", 80, false), berth_only)
                .0,
            None
        );
        let other = rs
            .dropped_by("forward", &flow("br-b", "br-a", 80, false), berth_only)
            .0;
        assert_eq!(other.unwrap().rule, "oifname @bridges drop");
    }

    #[test]
    fn publish_maps_are_looked_up_by_address_first() {
        let json = r#"{"nftables": [
          {"map": {"family": "inet", "name": "pub4", "table": "berth", "elem": [[{"concat": ["tcp", 8080]}, {"concat": ["172.17.0.2", 80]}], [{"elem": {"val": {"concat": ["tcp", 8082]}, "counter": {"packets": 0, "bytes": 0}}}, {"concat": ["172.17.0.2", 82]}]]}},
          {"map": {"family": "inet", "name": "pub4_addr", "table": "berth", "elem": [[{"concat": ["127.0.0.1", "udp", 9090]}, {"concat": ["172.17.0.3", 90]}]]}}
        ]}"#;
        let rs = Ruleset::parse(json, "").unwrap();
        let h: IpAddr = "10.99.0.1".parse().unwrap();
        assert_eq!(
            rs.dnat_target(h, "tcp", 8080),
            Some(("172.17.0.2".parse().unwrap(), 80))
        );
        assert_eq!(rs.dnat_target(h, "udp", 9090), None);
        // An element with a counter (schema_4) is wrapped as {"elem": {"val": KEY, ...}}.
        assert_eq!(
            rs.dnat_target(h, "tcp", 8082),
            Some(("172.17.0.2".parse().unwrap(), 82))
        );
        let lo: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(
            rs.dnat_target(lo, "udp", 9090),
            Some(("172.17.0.3".parse().unwrap(), 90))
        );
        assert_eq!(rs.dnat_target(lo, "tcp", 8081), None);
    }

    #[test]
    fn another_tables_policy_drop_is_found_and_its_accepts_honoured() {
        let rs = Ruleset::parse(BERTH_FORWARD, TEXT).unwrap();
        let others = |f: &str, t: &str| !berth_only(f, t);
        let d = rs
            .dropped_by("forward", &flow("br-a", "br-a", 80, false), others)
            .0
            .unwrap();
        assert_eq!(
            (d.table.as_str(), d.chain.as_str(), d.rule.as_str()),
            ("ip filter", "FORWARD", "policy drop")
        );
        assert_eq!(
            rs.dropped_by("forward", &flow("out0", "br-a", 22, false), others)
                .0,
            None
        );
        assert_eq!(
            rs.dropped_by("input", &flow("out0", "br-a", 22, false), others)
                .0,
            None
        );
    }
}
