//! The checks a walk is made of: an endpoint's links, addresses and bridge port, a route,
//! a neighbour entry, the firewall (berth's table and every other one) and the final probe.

use super::nft::{Flow, Ruleset};
use super::probe::{self, Probe};
use super::walk::{fail, verdict, Step, Walk, RELOAD};
use super::Verdict;
use crate::observe::NsView;
use crate::Error;
use berth_store::{Container, Endpoint};
use std::net::{IpAddr, SocketAddr};

impl Walk<'_> {
    /// The endpoint's links, addresses and bridge port, on both sides of the veth.
    pub(super) fn endpoint(&mut self, c: &Container, ep: &Endpoint, view: &NsView) -> Step {
        let net = self.net(&ep.network_id);
        let br_name = net.bridge.clone().unwrap_or_default();
        let who = format!("{} on {}", c.name, net.name);
        let reconnect = format!(
            "berth network disconnect {n} {c} && berth network connect {n} {c}",
            n = net.name,
            c = c.name
        );
        let bridge = self.host.link(&br_name).cloned();
        let seen = self.bridges.contains(&br_name);
        self.bridges.push(br_name.clone());
        let ok = (seen && bridge.is_some())
            || self.check(
                format!("bridge {br_name} exists"),
                bridge.is_some(),
                format!("network {} has endpoints here", net.name),
            );
        if !ok {
            return Err(fail(
                "not-programmed",
                format!("bridge {br_name} of network {} is missing", net.name),
                reconnect,
            ));
        }
        let bridge = bridge.expect("checked");
        let up =
            (seen && bridge.up) || self.check(format!("bridge {br_name} is up"), bridge.up, "");
        if !up {
            return Err(fail(
                "interface-down",
                format!("bridge {br_name} of network {} is down", net.name),
                format!("ip link set {br_name} up"),
            ));
        }
        let hl = self.host.link(&ep.host_ifname).cloned();
        if !self.check(
            format!("{who}: host veth {} exists", ep.host_ifname),
            hl.is_some(),
            "",
        ) {
            return Err(fail(
                "not-programmed",
                format!("the host end {} of {who} is missing", ep.host_ifname),
                reconnect,
            ));
        }
        let hl = hl.expect("checked");
        if !self.check(
            format!("{who}: host veth {} is up", ep.host_ifname),
            hl.up,
            "",
        ) {
            return Err(fail(
                "interface-down",
                format!("the host end {} of {who} is down", ep.host_ifname),
                format!("ip link set {} up", ep.host_ifname),
            ));
        }
        let attached = hl.master == Some(bridge.index);
        let ok = self.check(
            format!("{who}: {} is a port of {br_name}", ep.host_ifname),
            attached,
            "",
        );
        if !ok {
            return Err(fail(
                "not-programmed",
                format!(
                    "{} (the host end of {who}) is not a port of bridge {br_name}: frames never reach the bridge",
                    ep.host_ifname
                ),
                format!("ip link set {} master {br_name}", ep.host_ifname),
            ));
        }
        let cl = view.link(&ep.ifname).cloned();
        if !self.check(
            format!("{who}: {} exists in the container", ep.ifname),
            cl.is_some(),
            "",
        ) {
            return Err(fail(
                "not-programmed",
                format!("{} has no interface {}", c.name, ep.ifname),
                reconnect,
            ));
        }
        if !self.check(
            format!("{who}: {} is up", ep.ifname),
            cl.is_some_and(|l| l.up),
            "",
        ) {
            return Err(fail(
                "interface-down",
                format!("interface {} of container {} is down", ep.ifname, c.name),
                format!("berth exec {} ip link set {} up", c.name, ep.ifname),
            ));
        }
        let have: Vec<(IpAddr, u8)> = view
            .addresses_of(&ep.ifname)
            .iter()
            .map(|a| (a.addr, a.prefix_len))
            .collect();
        for a in &ep.addresses {
            let ok = have.contains(&(a.addr, a.prefix_len));
            let name = format!("{who}: {} has {}/{}", ep.ifname, a.addr, a.prefix_len);
            if !self.check(name, ok, "") {
                return Err(fail(
                    "missing-address",
                    format!(
                        "interface {} of {} lacks its address {}/{}",
                        ep.ifname, c.name, a.addr, a.prefix_len
                    ),
                    format!(
                        "berth exec {} ip addr add {}/{} dev {}",
                        c.name, a.addr, a.prefix_len, ep.ifname
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `view` routes `addr` out of `ifname`.
    pub(super) fn route(
        &mut self,
        who: &str,
        view: &NsView,
        addr: IpAddr,
        ifname: &str,
        fix: String,
    ) -> Step {
        let want = view.link(ifname).map(|l| l.index);
        let route = view.route_to(addr);
        let ok = route.is_some_and(|r| r.oif == want && want.is_some());
        let detail = match route {
            Some(r) => format!("via {}", r.dst),
            None => "no route".into(),
        };
        if !self.check(format!("{who}: route to {addr} via {ifname}"), ok, detail) {
            return Err(fail(
                "missing-route",
                format!("{who} has no route to {addr} through {ifname}"),
                fix,
            ));
        }
        Ok(())
    }

    /// A neighbour entry in `view` for `addr` on `ifname` that names a MAC other than `mac`.
    pub(super) fn neighbour(
        &mut self,
        who: &str,
        view: &NsView,
        addr: IpAddr,
        ifname: &str,
        mac: Option<[u8; 6]>,
    ) -> Step {
        let index = view.link(ifname).map(|l| l.index);
        let entry = view
            .neighbours
            .iter()
            .find(|n| n.addr == addr && Some(n.index) == index);
        let wrong = match (entry, mac) {
            (Some(n), Some(m)) => n.mac.is_some_and(|have| have != m),
            _ => false,
        };
        let detail = match entry {
            Some(n) => format!(
                "{} {}",
                n.mac.map(crate::ids::format_mac).unwrap_or_default(),
                n.state
            ),
            None => "not resolved yet (resolved on first packet)".into(),
        };
        if !self.check(format!("{who}: neighbour entry for {addr}"), !wrong, detail) {
            let have = entry
                .and_then(|n| n.mac)
                .map(crate::ids::format_mac)
                .unwrap_or_default();
            return Err(fail(
                "not-programmed",
                format!(
                    "{who}'s neighbour entry for {addr} says {have}, but that address belongs to {}",
                    mac.map(crate::ids::format_mac).unwrap_or_default()
                ),
                format!("delete the stale entry: ip neigh del {addr} dev {ifname} (inside {who})"),
            ));
        }
        Ok(())
    }

    pub(super) fn ruleset(&mut self) -> Step<&Ruleset> {
        if self.ruleset.is_none() {
            let (json, text) = berth_firewall::list_ruleset()?;
            let rs = Ruleset::parse(&json, &text).ok_or_else(|| {
                Error::Invalid("nft -j list ruleset printed something that is not its JSON".into())
            })?;
            self.ruleset = Some(rs);
        }
        Ok(self.ruleset.as_ref().expect("set above"))
    }

    /// berth's table, then every other table, on `hook` for `flow`.
    pub(super) fn firewall(&mut self, hook: &str, flow: &Flow, berth_fix: &str) -> Step {
        if flow.iif == flow.oif && !br_netfilter() {
            self.check(
                "nftables",
                true,
                "bridged traffic does not pass nftables here (br_netfilter off)",
            );
            return Ok(());
        }
        let berth = |f: &str, t: &str| f == "inet" && t == "berth";
        let rs = self.ruleset()?;
        let has_berth = rs.has_table("inet", "berth");
        let (ours, unsure_ours) = rs.dropped_by(hook, flow, berth);
        let (theirs, unsure_theirs) = rs.dropped_by(hook, flow, |f, t| !berth(f, t));
        let what = format!("{} -> {}", flow.iif_label(), flow.oif_label());
        if !self.check("berth's nftables table inet berth exists", has_berth, "") {
            return Err(fail(
                "not-programmed",
                "berth's nftables table inet berth is missing (no NAT, no published ports, no isolation)".into(),
                RELOAD.into(),
            ));
        }
        let detail = ours.as_ref().map_or_else(String::new, |d| d.rule.clone());
        if !self.check(
            format!("berth's {hook} rules let {what} through"),
            ours.is_none(),
            detail,
        ) {
            let d = ours.expect("checked");
            return Err(fail(
                "berth-rule",
                format!(
                    "berth's rule `{}` (table {}, chain {}) drops {what} {}",
                    d.rule,
                    d.table,
                    d.chain,
                    flow.describe()
                ),
                berth_fix.into(),
            ));
        }
        let mut detail = theirs.as_ref().map_or_else(String::new, |d| {
            format!("table {} chain {}: {}", d.table, d.chain, d.rule)
        });
        if unsure_ours || unsure_theirs {
            detail.push_str(" (some rules could not be evaluated)");
        }
        if !self.check(
            format!("other tables' {hook} chains let {what} through"),
            theirs.is_none(),
            detail.trim(),
        ) {
            let d = theirs.expect("checked");
            let family_table = d.table.clone();
            return Err(fail(
                "other-table",
                format!(
                    "table {} (not berth's), chain {}, drops {what} {} with `{}`",
                    d.table,
                    d.chain,
                    flow.describe(),
                    d.rule
                ),
                {
                    let mut fix = format!(
                        "accept berth's traffic before that drop, e.g. nft insert rule {family_table} {} {} accept",
                        d.chain,
                        flow.accept_match()
                    );
                    if family_table == "ip filter" {
                        fix.push_str(&format!(
                            " (iptables: iptables -I {} {} -j ACCEPT)",
                            d.chain,
                            flow.iptables_match()
                        ));
                    }
                    fix
                },
            ));
        }
        Ok(())
    }

    /// The last step: a TCP probe to `addr` from `netns` (the host's namespace when `None`).
    pub(super) fn probe(
        &mut self,
        netns: Option<&str>,
        from: &str,
        addr: IpAddr,
        port: Option<u16>,
    ) -> Step<Verdict> {
        let Some(port) = port else {
            return Ok(verdict(
                "reachable",
                format!("every check on the path to {addr} passed"),
                "give DST:PORT to probe a service too".into(),
            ));
        };
        if self.target.proto != "tcp" {
            self.check(
                format!("{} probe", self.target.proto),
                true,
                "only TCP is probed",
            );
            return Ok(verdict(
                "reachable",
                format!(
                    "every check on the path to {addr} passed ({} is not probed)",
                    self.target.proto
                ),
                String::new(),
            ));
        }
        let sa = SocketAddr::new(addr, port);
        let p = probe::tcp(netns, sa);
        let ok = p == Probe::Open;
        let detail = format!("{p:?}").to_lowercase();
        self.check(format!("TCP connect to {sa} from {from}"), ok, detail);
        match p {
            Probe::Open => Ok(verdict(
                "reachable",
                format!("{from} reaches {sa}/tcp"),
                String::new(),
            )),
            Probe::Refused => Err(fail(
                "nothing-listening",
                format!("nothing listens on {sa}/tcp: the connection from {from} was refused"),
                format!("start the service on port {port} (listening on 0.0.0.0 or {addr}), or use the port it listens on"),
            )),
            Probe::Silent => Err(fail(
                "no-answer",
                format!("no answer from {sa}/tcp within {} s although every check passed", probe::TIMEOUT.as_secs()),
                "look for a firewall inside the destination, or rules berth cannot evaluate (nft list ruleset)".into(),
            )),
            Probe::Failed(e) => Err(fail("no-answer", format!("connect to {sa}/tcp from {from}: {e}"), String::new())),
        }
    }
}

/// Whether bridged IPv4 traffic passes the inet/ip hooks (`net.bridge.bridge-nf-call-iptables`).
fn br_netfilter() -> bool {
    std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1")
}

impl Flow {
    pub(super) fn iif_label(&self) -> String {
        if self.iif.is_empty() {
            "the host".into()
        } else {
            self.iif.clone()
        }
    }

    pub(super) fn oif_label(&self) -> String {
        if self.oif.is_empty() {
            "the host".into()
        } else {
            self.oif.clone()
        }
    }

    pub(super) fn describe(&self) -> String {
        match self.dport {
            Some(p) => format!("({} -> {}:{p}/{})", self.saddr, self.daddr, self.proto),
            None => format!("({} -> {})", self.saddr, self.daddr),
        }
    }

    pub(super) fn accept_match(&self) -> String {
        match (self.iif.is_empty(), self.oif.is_empty()) {
            (false, false) => format!("iifname \"{}\" oifname \"{}\"", self.iif, self.oif),
            (false, true) => format!("iifname \"{}\"", self.iif),
            _ => format!("oifname \"{}\"", self.oif),
        }
    }

    pub(super) fn iptables_match(&self) -> String {
        match (self.iif.is_empty(), self.oif.is_empty()) {
            (false, false) => format!("-i {} -o {}", self.iif, self.oif),
            (false, true) => format!("-i {}", self.iif),
            _ => format!("-o {}", self.oif),
        }
    }
}
