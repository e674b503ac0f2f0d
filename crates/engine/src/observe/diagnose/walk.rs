//! The walk itself: one function per kind of path, each a sequence of checks that stops at
//! the first failure with its verdict.

use super::nft::{Flow, Ruleset};
use super::probe::{self, Probe};
use super::{Check, Side, Target, Verdict};
use crate::observe::NsView;
use crate::{Engine, Error, Result};
use berth_store::{Container, Endpoint, Network, PortMapping};
use std::net::{IpAddr, SocketAddr};

/// Why a walk stopped: a verdict, or an error that prevented the diagnosis.
pub(crate) enum Stop {
    Verdict(Verdict),
    Error(Error),
}

impl<E: Into<Error>> From<E> for Stop {
    fn from(e: E) -> Stop {
        Stop::Error(e.into())
    }
}

type Step<T = ()> = std::result::Result<T, Stop>;

fn verdict(code: &'static str, cause: String, fix: String) -> Verdict {
    Verdict { code, cause, fix }
}

fn fail(code: &'static str, cause: String, fix: String) -> Stop {
    Stop::Verdict(verdict(code, cause, fix))
}

/// `berth_fix` for each place berth's own ruleset can drop a flow.
const RELOAD: &str = "berth firewall reload (rebuilds berth's table and elements from its state)";

pub(crate) struct Walk<'e> {
    engine: &'e mut Engine,
    host: NsView,
    target: Target,
    nets: Vec<Network>,
    ports: Vec<PortMapping>,
    ruleset: Option<Ruleset>,
    /// Bridges already checked on this walk.
    bridges: Vec<String>,
    pub(crate) checks: Vec<Check>,
}

impl<'e> Walk<'e> {
    pub(crate) fn new(engine: &'e mut Engine, host: NsView, target: &Target) -> Result<Walk<'e>> {
        let nets = crate::network::list(engine)?;
        let ports = crate::container::all_published_ports(engine)?;
        Ok(Walk {
            engine,
            host,
            target: target.clone(),
            nets,
            ports,
            ruleset: None,
            bridges: Vec::new(),
            checks: Vec::new(),
        })
    }

    /// Walks from `s` to `d`; the verdict is `reachable` when every check passed.
    pub(crate) fn run(&mut self, s: &Side, d: &Side) -> Result<Verdict> {
        let step = match (s, d) {
            (Side::Container { .. }, Side::Container { .. }) => self.container_to_container(s, d),
            (Side::Container { c, eps, .. }, Side::Host(h)) => self.container_to_host(c, eps, *h),
            (Side::Container { c, eps, .. }, Side::External(a)) => {
                self.container_to_outside(c, eps, *a)
            }
            (Side::Host(_), Side::Container { c, eps, addr }) => {
                self.to_container(None, c, eps, *addr)
            }
            (Side::External(a), Side::Container { c, eps, addr }) => {
                self.to_container(Some(*a), c, eps, *addr)
            }
            (Side::External(a), Side::Host(h)) => self.outside_to_host(*a, *h),
            _ => {
                return Err(Error::Invalid(format!(
                    "nothing of berth's lies between {} and {}: give a container on one side",
                    s.label(),
                    d.label()
                )))
            }
        };
        match step {
            Ok(v) | Err(Stop::Verdict(v)) => Ok(v),
            Err(Stop::Error(e)) => Err(e),
        }
    }

    fn check(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) -> bool {
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
        ok
    }

    fn net(&self, id: &str) -> Network {
        self.nets
            .iter()
            .find(|n| n.id == id)
            .cloned()
            .expect("an endpoint's network exists (foreign key)")
    }

    fn names_of(&self, eps: &[Endpoint]) -> String {
        match eps.is_empty() {
            true => "no network".into(),
            false => eps
                .iter()
                .map(|e| self.net(&e.network_id).name)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn namespace(&mut self, c: &Container) -> Step<NsView> {
        let view = NsView::container(c)?;
        if !self.check(format!("{}: network namespace", c.name), view.is_some(), "") {
            return Err(fail(
                "no-namespace",
                format!("container {} has no network namespace of its own", c.name),
                format!("remove and recreate {} (berth rm -f {0}; berth gc)", c.name),
            ));
        }
        Ok(view.expect("checked"))
    }

    /// The endpoint's links, addresses and bridge port, on both sides of the veth.
    fn endpoint(&mut self, c: &Container, ep: &Endpoint, view: &NsView) -> Step {
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
        if !(seen && bridge.up) && !self.check(format!("bridge {br_name} is up"), bridge.up, "") {
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
    fn route(&mut self, who: &str, view: &NsView, addr: IpAddr, ifname: &str, fix: String) -> Step {
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
    fn neighbour(
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

    fn ruleset(&mut self) -> Step<&Ruleset> {
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
    fn firewall(&mut self, hook: &str, flow: &Flow, berth_fix: &str) -> Step {
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
    fn probe(
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

    fn container_to_container(&mut self, s: &Side, d: &Side) -> Step<Verdict> {
        let (
            Side::Container {
                c: sc, eps: seps, ..
            },
            Side::Container {
                c: dc,
                eps: deps,
                addr,
            },
        ) = (s, d)
        else {
            unreachable!("called with two containers")
        };
        let shared = deps.iter().find(|de| {
            addr.is_none_or(|a| de.addresses.iter().any(|x| x.addr == a))
                && seps.iter().any(|se| se.network_id == de.network_id)
        });
        let detail = format!(
            "{} is on {}; {} is on {}",
            sc.name,
            self.names_of(seps),
            dc.name,
            self.names_of(deps)
        );
        if !self.check("shared network", shared.is_some(), detail.clone()) {
            let fix = match (seps.first(), deps.first()) {
                (_, Some(de)) => format!(
                    "berth network connect {} {}",
                    self.net(&de.network_id).name,
                    sc.name
                ),
                (Some(se), None) => format!(
                    "berth network connect {} {}",
                    self.net(&se.network_id).name,
                    dc.name
                ),
                _ => "connect both containers to one bridge network".into(),
            };
            return Err(fail(
                "no-shared-network",
                format!("{detail}: they share no network"),
                fix,
            ));
        }
        let dep = shared.expect("checked").clone();
        let sep = seps
            .iter()
            .find(|e| e.network_id == dep.network_id)
            .expect("shared")
            .clone();
        let net = self.net(&dep.network_id);
        let sview = self.namespace(sc)?;
        let dview = self.namespace(dc)?;
        let daddr = addr
            .or_else(|| first_addr(&dep))
            .ok_or_else(|| Error::Invalid(format!("{} has no address on {}", dc.name, net.name)))?;
        let isolated = |w: &Self, ep: &Endpoint| {
            w.host.link(&ep.host_ifname).and_then(|l| l.port_isolated) == Some(true)
        };
        let icc_off = !net.icc || (isolated(self, &sep) && isolated(self, &dep));
        if !self.check(
            format!("containers on {} may talk to each other", net.name),
            !icc_off,
            format!("icc={}", net.icc),
        ) {
            return Err(fail(
                "icc-off",
                format!("network {} has icc=false: its bridge ports are isolated, so its containers reach only the gateway", net.name),
                format!("use a network without -o icc=false (berth network create NAME; berth network connect NAME {} and {})", sc.name, dc.name),
            ));
        }
        self.endpoint(sc, &sep, &sview)?;
        self.endpoint(dc, &dep, &dview)?;
        let subnet = net
            .subnets
            .iter()
            .find(|s| s.subnet.contains(&daddr))
            .map(|s| s.subnet.to_string())
            .unwrap_or_default();
        self.route(
            &sc.name,
            &sview,
            daddr,
            &sep.ifname,
            format!(
                "berth exec {} ip route add {subnet} dev {}",
                sc.name, sep.ifname
            ),
        )?;
        let dmac = dview.link(&dep.ifname).and_then(|l| l.mac);
        self.neighbour(&sc.name, &sview, daddr, &sep.ifname, dmac)?;
        let br = net.bridge.clone().unwrap_or_default();
        let flow = self.flow(&br, &br, first_addr(&sep), daddr, false);
        self.firewall("forward", &flow, RELOAD)?;
        let from = sc.name.clone();
        self.probe(sc.netns.as_deref(), &from, daddr, self.target.port)
    }

    fn container_to_outside(
        &mut self,
        c: &Container,
        eps: &[Endpoint],
        a: IpAddr,
    ) -> Step<Verdict> {
        let open: Vec<&Endpoint> = eps
            .iter()
            .filter(|e| !self.net(&e.network_id).internal)
            .collect();
        let detail = format!("{} is on {}", c.name, self.names_of(eps));
        if !self.check("a network that lets traffic out", !open.is_empty(), detail) {
            return Err(internal(&c.name, &self.names_of(eps)));
        }
        let view = self.namespace(c)?;
        let route = view.route_to(a).copied();
        let ep = route
            .and_then(|r| r.oif)
            .and_then(|i| view.link_by_index(i))
            .and_then(|l| eps.iter().find(|e| e.ifname == l.name))
            .cloned();
        let gw = open.first().and_then(|e| {
            e.addresses
                .iter()
                .find_map(|x| x.gateway.filter(|g| g.is_ipv4() == a.is_ipv4()))
        });
        let Some(ep) = ep else {
            self.check(
                format!("{}: route to {a}", c.name),
                false,
                "no route through a berth interface",
            );
            return Err(fail(
                "missing-route",
                format!("{} has no route to {a} (no default route)", c.name),
                format!(
                    "berth exec {} ip route add default via {}",
                    c.name,
                    gw.map(|g| g.to_string())
                        .unwrap_or_else(|| "GATEWAY".into())
                ),
            ));
        };
        self.check(
            format!("{}: route to {a}", c.name),
            true,
            format!("via {}", ep.ifname),
        );
        let net = self.net(&ep.network_id);
        if net.internal {
            return Err(internal(&c.name, &net.name));
        }
        self.endpoint(c, &ep, &view)?;
        let out = self
            .host
            .route_to(a)
            .and_then(|r| r.oif)
            .and_then(|i| self.host.link_by_index(i))
            .map(|l| l.name.clone());
        if !self.check(
            format!("host: route to {a}"),
            out.is_some(),
            out.clone().unwrap_or_default(),
        ) {
            return Err(fail(
                "missing-route",
                format!("the host has no route to {a}"),
                format!("add a route to {a} (or a default route) on the host"),
            ));
        }
        let br = net.bridge.clone().unwrap_or_default();
        let flow = self.flow(&br, &out.expect("checked"), first_addr(&ep), a, false);
        self.firewall("forward", &flow, RELOAD)?;
        let from = c.name.clone();
        self.probe(c.netns.as_deref(), &from, a, self.target.port)
    }

    fn container_to_host(
        &mut self,
        c: &Container,
        eps: &[Endpoint],
        h: Option<IpAddr>,
    ) -> Step<Verdict> {
        let view = self.namespace(c)?;
        let Some(ep) = eps.first().cloned() else {
            self.check(
                format!("{}: network", c.name),
                false,
                format!("{} networking", c.mode.as_str()),
            );
            return Err(fail(
                "missing-address",
                format!(
                    "container {} uses {} networking: it has no interface towards the host",
                    c.name,
                    c.mode.as_str()
                ),
                format!("run it on a bridge network (berth run --network NAME ...)"),
            ));
        };
        let ep = h
            .and_then(|h| view.route_to(h).and_then(|r| r.oif))
            .and_then(|i| view.link_by_index(i))
            .and_then(|l| eps.iter().find(|e| e.ifname == l.name).cloned())
            .unwrap_or(ep);
        let h = h
            .or_else(|| ep.addresses.iter().find_map(|a| a.gateway))
            .ok_or_else(|| {
                Error::Invalid(format!("{} has no gateway to reach the host by", c.name))
            })?;
        self.endpoint(c, &ep, &view)?;
        let net = self.net(&ep.network_id);
        self.route(
            &c.name,
            &view,
            h,
            &ep.ifname,
            format!("berth exec {} ip route add default via {h}", c.name),
        )?;
        let br = net.bridge.clone().unwrap_or_default();
        let from = c.name.clone();
        let Some(port) = self.target.port else {
            return self.probe(None, &from, h, None);
        };
        if let Some((row, t)) = self.published(h, port)? {
            return self.through_published(
                c.netns.as_deref(),
                &from,
                &br,
                first_addr(&ep),
                h,
                &row,
                &t,
            );
        }
        let flow = self.flow(&br, "", first_addr(&ep), h, false);
        self.firewall("input", &flow, RELOAD)?;
        self.probe(c.netns.as_deref(), &from, h, Some(port))
    }

    fn outside_to_host(&mut self, a: IpAddr, h: Option<IpAddr>) -> Step<Verdict> {
        let Some(port) = self.target.port else {
            return Err(Stop::Error(Error::Invalid(
                "give the host's port: DST:PORT".into(),
            )));
        };
        let h = h.ok_or_else(|| {
            Error::Invalid("give the host address the outside connects to, not `host`".into())
        })?;
        let iif = self.iif_for(a)?;
        match self.published(h, port)? {
            Some((row, t)) => self.through_published(
                None,
                "the host (standing in for the outside)",
                &iif,
                Some(a),
                h,
                &row,
                &t,
            ),
            None => {
                let flow = self.flow(&iif, "", Some(a), h, false);
                self.firewall("input", &flow, RELOAD)?;
                self.probe(None, "the host", h, Some(port))
            }
        }
    }

    /// From the host (`a` = None) or from outside address `a` to a container's address.
    fn to_container(
        &mut self,
        a: Option<IpAddr>,
        c: &Container,
        eps: &[Endpoint],
        addr: Option<IpAddr>,
    ) -> Step<Verdict> {
        let view = self.namespace(c)?;
        let Some(ep) = eps
            .iter()
            .find(|e| addr.is_none_or(|x| e.addresses.iter().any(|y| y.addr == x)))
            .cloned()
        else {
            self.check(
                format!("{}: network", c.name),
                false,
                format!("{} networking", c.mode.as_str()),
            );
            return Err(fail(
                "missing-address",
                format!(
                    "container {} uses {} networking: it has no address to reach",
                    c.name,
                    c.mode.as_str()
                ),
                "run it on a bridge network (berth run --network NAME ...)".into(),
            ));
        };
        let daddr = addr
            .or_else(|| first_addr(&ep))
            .expect("bridge endpoints have addresses");
        let net = self.net(&ep.network_id);
        self.endpoint(c, &ep, &view)?;
        let br = net.bridge.clone().unwrap_or_default();
        let fix = format!("the host needs the route of {}'s subnet on {br}: berth network disconnect/connect, or berth gc", net.name);
        let mut host = std::mem::take(&mut self.host);
        let routed = self.route("host", &host, daddr, &br, fix);
        let dmac = view.link(&ep.ifname).and_then(|l| l.mac);
        let neigh = routed.and_then(|()| self.neighbour("host", &host, daddr, &br, dmac));
        std::mem::swap(&mut self.host, &mut host);
        neigh?;
        let Some(a) = a else {
            return self.probe(None, "the host", daddr, self.target.port);
        };
        if net.internal {
            self.check(
                format!("{} accepts traffic from outside", net.name),
                false,
                "internal",
            );
            return Err(fail(
                "internal-network",
                format!(
                    "network {} is internal: nothing from outside reaches {}",
                    net.name, c.name
                ),
                format!(
                    "connect {} to a non-internal network and publish the port (-p)",
                    c.name
                ),
            ));
        }
        let iif = self.iif_for(a)?;
        let flow = self.flow(&iif, &br, Some(a), daddr, false);
        let port = self
            .target
            .port
            .map_or_else(|| "PORT".into(), |p| p.to_string());
        let fix = format!(
            "containers are reachable from outside only through published ports: run {} with -p {port}:{port} and connect to a host address",
            c.name
        );
        self.firewall("forward", &flow, &fix)?;
        self.probe(
            None,
            "the host (standing in for the outside)",
            daddr,
            self.target.port,
        )
    }

    /// The published port `h:port` leads to (row and target container), or `None` when no
    /// container publishes that port; a port published only on other host addresses is the
    /// `published-other-ip` verdict.
    fn published(&mut self, h: IpAddr, port: u16) -> Step<Option<(PortMapping, Container)>> {
        let rows: Vec<PortMapping> = self
            .ports
            .iter()
            .filter(|p| p.host_port == port && p.protocol == self.target.proto)
            .cloned()
            .collect();
        if rows.is_empty() {
            self.check(
                format!("published port {port}/{}", self.target.proto),
                true,
                "not published: a host service must listen",
            );
            return Ok(None);
        }
        let covers = |p: &PortMapping| match p.host_ip.as_str() {
            "" => true,
            "0.0.0.0" => h.is_ipv4(),
            "::" => h.is_ipv6(),
            ip => ip.parse::<IpAddr>().ok() == Some(h),
        };
        let owner = crate::container::find(self.engine, &rows[0].container_id)?;
        let hit = rows.iter().find(|p| covers(p)).cloned();
        let bound: Vec<String> = rows
            .iter()
            .map(|p| {
                if p.host_ip.is_empty() {
                    "every address".into()
                } else {
                    p.host_ip.clone()
                }
            })
            .collect();
        let ok = self.check(
            format!("{port}/{} is published on {h}", self.target.proto),
            hit.is_some(),
            format!("published by {} on {}", owner.name, bound.join(", ")),
        );
        if !ok {
            return Err(fail(
                "published-other-ip",
                format!(
                    "port {port}/{} is published by {} on {} only, not on {h}",
                    self.target.proto,
                    owner.name,
                    bound.join(", ")
                ),
                format!(
                    "connect to {}:{port}, or publish it on {h} too: -p {}:{port}:{} (or -p {port}:{} for every address)",
                    rows[0].host_ip, host_in_flag(h), rows[0].container_port, rows[0].container_port
                ),
            ));
        }
        Ok(hit.map(|r| (r, owner)))
    }

    /// A flow DNAT'd by published port `row` into container `t`.
    #[allow(clippy::too_many_arguments)]
    fn through_published(
        &mut self,
        netns: Option<&str>,
        from: &str,
        iif: &str,
        saddr: Option<IpAddr>,
        h: IpAddr,
        row: &PortMapping,
        t: &Container,
    ) -> Step<Verdict> {
        let teps = crate::container::endpoints(self.engine, &t.id)?;
        let tep = teps
            .iter()
            .find(|e| !self.net(&e.network_id).internal)
            .cloned()
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "{} publishes ports but has no non-internal network",
                    t.name
                ))
            })?;
        let tview = self.namespace(t)?;
        self.endpoint(t, &tep, &tview)?;
        let taddr = tep
            .addresses
            .iter()
            .map(|a| a.addr)
            .find(|a| a.is_ipv4() == h.is_ipv4())
            .ok_or_else(|| Error::Invalid(format!("{} has no address of {h}'s family", t.name)))?;
        let tbr = self.net(&tep.network_id).bridge.unwrap_or_default();
        let mut flow = self.flow(iif, &tbr, saddr, taddr, true);
        flow.dport = Some(row.container_port);
        self.firewall("forward", &flow, RELOAD)?;
        match netns {
            Some(_) => self.probe(netns, from, h, Some(row.host_port)),
            None => self.probe(None, from, taddr, Some(row.container_port)),
        }
    }

    fn iif_for(&mut self, a: IpAddr) -> Step<String> {
        let iif = self
            .host
            .route_to(a)
            .and_then(|r| r.oif)
            .and_then(|i| self.host.link_by_index(i))
            .map(|l| l.name.clone());
        if !self.check(
            format!("host: route back to {a}"),
            iif.is_some(),
            iif.clone().unwrap_or_default(),
        ) {
            return Err(fail(
                "missing-route",
                format!("the host has no route back to {a}"),
                format!("add a route to {a} on the host"),
            ));
        }
        Ok(iif.expect("checked"))
    }

    fn flow(&self, iif: &str, oif: &str, saddr: Option<IpAddr>, daddr: IpAddr, dnat: bool) -> Flow {
        let unspecified: IpAddr = match daddr {
            IpAddr::V4(_) => std::net::Ipv4Addr::UNSPECIFIED.into(),
            IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
        };
        Flow {
            iif: iif.into(),
            oif: oif.into(),
            saddr: saddr.unwrap_or(unspecified),
            daddr,
            proto: self.target.proto.clone(),
            dport: self.target.port,
            dnat,
        }
    }
}

fn internal(who: &str, nets: &str) -> Stop {
    fail(
        "internal-network",
        format!("{who} is only on internal network(s) {nets}: no traffic leaves them"),
        format!(
            "connect {who} to a network that is not --internal: berth network connect NAME {who}"
        ),
    )
}

fn first_addr(ep: &Endpoint) -> Option<IpAddr> {
    let v4 = ep.addresses.iter().find(|a| a.addr.is_ipv4());
    v4.or(ep.addresses.first()).map(|a| a.addr)
}

fn host_in_flag(h: IpAddr) -> String {
    match h {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

/// Whether bridged IPv4 traffic passes the inet/ip hooks (`net.bridge.bridge-nf-call-iptables`).
fn br_netfilter() -> bool {
    std::fs::read_to_string("/proc/sys/net/bridge/bridge-nf-call-iptables")
        .is_ok_and(|v| v.trim() == "1")
}

impl Flow {
    fn iif_label(&self) -> String {
        if self.iif.is_empty() {
            "the host".into()
        } else {
            self.iif.clone()
        }
    }

    fn oif_label(&self) -> String {
        if self.oif.is_empty() {
            "the host".into()
        } else {
            self.oif.clone()
        }
    }

    fn describe(&self) -> String {
        match self.dport {
            Some(p) => format!("({} -> {}:{p}/{})", self.saddr, self.daddr, self.proto),
            None => format!("({} -> {})", self.saddr, self.daddr),
        }
    }

    fn accept_match(&self) -> String {
        match (self.iif.is_empty(), self.oif.is_empty()) {
            (false, false) => format!("iifname \"{}\" oifname \"{}\"", self.iif, self.oif),
            (false, true) => format!("iifname \"{}\"", self.iif),
            _ => format!("oifname \"{}\"", self.oif),
        }
    }

    fn iptables_match(&self) -> String {
        match (self.iif.is_empty(), self.oif.is_empty()) {
            (false, false) => format!("-i {} -o {}", self.iif, self.oif),
            (false, true) => format!("-i {}", self.iif),
            _ => format!("-o {}", self.oif),
        }
    }
}
