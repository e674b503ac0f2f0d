//! The walk itself: one function per kind of path, each a sequence of checks that stops at
//! the first failure with its verdict.

use super::nft::{Flow, Ruleset};
use super::{Check, Side, Target, Verdict};
use crate::observe::NsView;
use crate::{Engine, Error, Result};
use berth_store::{Container, Endpoint, Network, NetworkMode, PortMapping};
use std::net::IpAddr;

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

pub(super) type Step<T = ()> = std::result::Result<T, Stop>;

pub(super) fn verdict(code: &'static str, cause: String, fix: String) -> Verdict {
    Verdict { code, cause, fix }
}

pub(super) fn fail(code: &'static str, cause: String, fix: String) -> Stop {
    Stop::Verdict(verdict(code, cause, fix))
}

/// `berth_fix` for each place berth's own ruleset can drop a flow.
pub(super) const RELOAD: &str =
    "berth firewall reload (rebuilds berth's table and elements from its state)";

pub(crate) struct Walk<'e> {
    pub(super) engine: &'e mut Engine,
    pub(super) host: NsView,
    pub(super) target: Target,
    pub(super) nets: Vec<Network>,
    pub(super) ports: Vec<PortMapping>,
    pub(super) ruleset: Option<Ruleset>,
    /// Bridges already checked on this walk.
    pub(super) bridges: Vec<String>,
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
                self.towards_container(None, c, eps, *addr)
            }
            (Side::External(a), Side::Container { c, eps, addr }) => {
                self.towards_container(Some(*a), c, eps, *addr)
            }
            (Side::External(a), Side::Host(h)) => self.outside_to_host(*a, *h),
            (Side::Container { c, eps, .. }, Side::Remote(r)) => {
                self.container_to_remote(c, eps, r)
            }
            (Side::Remote(r), _) => {
                return Err(Error::Invalid(format!(
                    "{} runs on host {}: run berth diagnose there",
                    r.container_name, r.host
                )))
            }
            (_, Side::Remote(r)) => {
                return Err(Error::Invalid(format!(
                    "{} runs on host {} and only a local container reaches it over the overlay: give one as SRC",
                    r.container_name, r.host
                )))
            }
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

    pub(super) fn check(
        &mut self,
        name: impl Into<String>,
        ok: bool,
        detail: impl Into<String>,
    ) -> bool {
        self.checks.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
        ok
    }

    pub(super) fn net(&self, id: &str) -> Network {
        self.nets
            .iter()
            .find(|n| n.id == id)
            .cloned()
            .expect("an endpoint's network exists (foreign key)")
    }

    pub(super) fn names_of(&self, eps: &[Endpoint]) -> String {
        match eps.is_empty() {
            true => "no network".into(),
            false => eps
                .iter()
                .map(|e| self.net(&e.network_id).name)
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    pub(super) fn namespace(&mut self, c: &Container) -> Step<NsView> {
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

    pub(super) fn container_to_container(&mut self, s: &Side, d: &Side) -> Step<Verdict> {
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
            let none = [sc, dc].into_iter().find(|c| c.mode == NetworkMode::None);
            let fix = match (seps.first(), deps.first()) {
                _ if none.is_some() => format!(
                    "{} uses none networking and cannot join a network: recreate it with --network NAME",
                    none.expect("checked").name
                ),
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
                format!(
                    "put both on a network without -o icc=false: berth network create NAME && berth network connect NAME {} && berth network connect NAME {}",
                    sc.name, dc.name
                ),
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
        // On the fast path the frames go host end to host end: no bridge, no hook of any
        // table but berth's netdev one.
        if crate::bridge::fast(&net) && self.ruleset()?.has_table("netdev", "berth") {
            self.check(
                "their frames take berth's fast path (table netdev berth), off the bridge and its hooks",
                true,
                "",
            );
        } else {
            self.firewall("forward", &flow, RELOAD)?;
        }
        let from = sc.name.clone();
        self.probe(sc.netns.as_deref(), &from, daddr, self.target.port)
    }

    pub(super) fn container_to_outside(
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

    pub(super) fn container_to_host(
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
                "run it on a bridge network (berth run --network NAME ...)".into(),
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

    /// From the host (`a` = None) or from outside address `a` to a container's address.
    pub(super) fn towards_container(
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
        let host = self.host.clone();
        self.route("host", &host, daddr, &br, fix)?;
        let dmac = view.link(&ep.ifname).and_then(|l| l.mac);
        self.neighbour("host", &host, daddr, &br, dmac)?;
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

    pub(super) fn iif_for(&mut self, a: IpAddr) -> Step<String> {
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

    pub(super) fn flow(
        &self,
        iif: &str,
        oif: &str,
        saddr: Option<IpAddr>,
        daddr: IpAddr,
        dnat: bool,
    ) -> Flow {
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
pub(super) fn internal(who: &str, nets: &str) -> Stop {
    fail(
        "internal-network",
        format!("{who} is only on internal network(s) {nets}: no traffic leaves them"),
        format!(
            "connect {who} to a network that is not --internal: berth network connect NAME {who}"
        ),
    )
}

pub(super) fn first_addr(ep: &Endpoint) -> Option<IpAddr> {
    let v4 = ep.addresses.iter().find(|a| a.addr.is_ipv4());
    v4.or(ep.addresses.first()).map(|a| a.addr)
}
