//! The path from a local container to a container on another host over an overlay
//! network: SRC's endpoint, route and neighbour as for a bridge network, then what this
//! host's VXLAN device must hold for DST (the agent programs it from the cluster store):
//! the device itself, up and a port of the overlay's bridge; the permanent neighbour entry
//! DST IP -> MAC (ARP is answered from it: without it ARP goes unanswered); the FDB entry
//! DST MAC -> DST's VTEP (without it, and without a flood entry to that VTEP, frames are
//! dropped); the flood entry; and a route to the VTEP on the underlay.

use super::walk::{fail, first_addr, Step, Walk, RELOAD};
use super::Verdict;
use crate::error::KernelContext;
use crate::ids::{format_mac, parse_mac};
use crate::observe::overlay::Programmed;
use berth_cluster::EndpointRecord;
use berth_kernel::netlink::Netlink;
use berth_store::{Container, Endpoint, Network};

impl Walk<'_> {
    pub(super) fn container_to_remote(
        &mut self,
        sc: &Container,
        seps: &[Endpoint],
        rec: &EndpointRecord,
    ) -> Step<Verdict> {
        let net = self.net(&rec.network_id);
        let sep = seps
            .iter()
            .find(|e| e.network_id == rec.network_id)
            .cloned();
        let detail = format!(
            "{} is on {}; {} (on host {}) is on {}",
            sc.name,
            self.names_of(seps),
            rec.container_name,
            rec.host,
            net.name
        );
        let Some(sep) = sep else {
            self.check("shared network", false, detail.clone());
            return Err(fail(
                "no-shared-network",
                format!("{detail}: they share no network"),
                format!("berth network connect {} {}", net.name, sc.name),
            ));
        };
        self.check("shared network", true, detail);
        let sview = self.namespace(sc)?;
        self.endpoint(sc, &sep, &sview)?;
        let subnet = net
            .subnets
            .iter()
            .find(|s| s.subnet.contains(&rec.ip))
            .map(|s| s.subnet.to_string())
            .unwrap_or_default();
        self.route(
            &sc.name,
            &sview,
            rec.ip,
            &sep.ifname,
            format!(
                "berth exec {} ip route add {subnet} dev {}",
                sc.name, sep.ifname
            ),
        )?;
        let mac = parse_mac(&rec.mac);
        self.neighbour(&sc.name, &sview, rec.ip, &sep.ifname, mac)?;
        self.vxlan(&net, rec)?;
        let br = net.bridge.clone().unwrap_or_default();
        let flow = self.flow(&br, &br, first_addr(&sep), rec.ip, false);
        self.firewall("forward", &flow, RELOAD)?;
        let from = sc.name.clone();
        self.probe(sc.netns.as_deref(), &from, rec.ip, self.target.port)
    }

    /// This host's VXLAN device of `net` holds what reaching `rec` needs.
    fn vxlan(&mut self, net: &Network, rec: &EndpointRecord) -> Step {
        let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
        let p = Programmed::read(&mut nl, net)?;
        let vx = p.name.clone();
        let dst = format!("{} (on host {})", rec.container_name, rec.host);
        let agent = agent_fix(rec);
        let Some(link) = p.link.clone() else {
            self.check(format!("VXLAN device {vx} exists"), false, "");
            return Err(fail(
                "not-programmed",
                format!("the VXLAN device {vx} of overlay {} is missing", net.name),
                "berth network disconnect/connect a local container (its endpoint creates the device), or restart the agent".into(),
            ));
        };
        let vni = p.vni.map(|v| format!("vni {v}")).unwrap_or_default();
        self.check(format!("VXLAN device {vx} exists"), true, vni);
        if !self.check(format!("VXLAN device {vx} is up"), link.up, "") {
            return Err(fail(
                "interface-down",
                format!("the VXLAN device {vx} of overlay {} is down", net.name),
                format!("ip link set {vx} up"),
            ));
        }
        let br = net.bridge.clone().unwrap_or_default();
        let bridge = self.host.link(&br).map(|l| l.index);
        let attached = bridge.is_some() && link.master == bridge;
        if !self.check(format!("{vx} is a port of {br}"), attached, "") {
            return Err(fail(
                "not-programmed",
                format!("the VXLAN device {vx} is not a port of bridge {br}: frames never leave this host"),
                format!("ip link set {vx} master {br}"),
            ));
        }
        let mac = parse_mac(&rec.mac).unwrap_or_default();
        let have = p.mac_of(rec.ip);
        let detail = have.map(format_mac).unwrap_or_else(|| "none".into());
        let name = format!("{vx}: neighbour entry {} -> {}", rec.ip, rec.mac);
        if !self.check(name, have == Some(mac), detail) {
            let cause = match have {
                None => format!(
                    "overlay peer not programmed: {vx} has no permanent neighbour entry {} -> {} for {dst}, so ARP for it goes unanswered",
                    rec.ip, rec.mac
                ),
                Some(m) => format!(
                    "overlay peer not programmed: {vx}'s neighbour entry for {} says {}, but {dst} has {}",
                    rec.ip,
                    format_mac(m),
                    rec.mac
                ),
            };
            return Err(fail("not-programmed", cause, agent));
        }
        let flood = p.flood.contains(&rec.vtep);
        let fdb = p.vtep_of(mac);
        let name = format!("{vx}: FDB entry {} -> {}", rec.mac, rec.vtep);
        let detail = match fdb {
            Some(v) => format!("dst {v}"),
            None if flood => "missing: frames reach it only by flooding to every peer".into(),
            None => "missing".into(),
        };
        if !self.check(
            name,
            fdb == Some(rec.vtep) || (fdb.is_none() && flood),
            detail,
        ) {
            let cause = match fdb {
                None => format!(
                    "overlay peer not programmed: {vx} has no FDB entry {} -> {} (nor a flood entry to that VTEP) for {dst}: its frames are dropped",
                    rec.mac, rec.vtep
                ),
                Some(v) => format!(
                    "overlay peer not programmed: {vx}'s FDB entry for {} sends it to {v}, but {dst} is behind VTEP {}",
                    rec.mac, rec.vtep
                ),
            };
            return Err(fail("not-programmed", cause, agent));
        }
        let detail = match flood {
            true => String::new(),
            false => format!(
                "missing: broadcast and multicast do not reach {} ({agent})",
                rec.host
            ),
        };
        self.check(format!("{vx}: flood entry -> {}", rec.vtep), true, detail);
        let route = self.host.route_to(rec.vtep).is_some();
        if !self.check(format!("host: route to VTEP {}", rec.vtep), route, "") {
            return Err(fail(
                "missing-route",
                format!("this host has no route to {}'s VTEP {}", rec.host, rec.vtep),
                format!("add a route to {} on the underlay", rec.vtep),
            ));
        }
        Ok(())
    }
}

fn agent_fix(rec: &EndpointRecord) -> String {
    format!(
        "the agent programs overlay peers from the cluster store: check that it runs here (berth agent) and restart it if it does; check that the store lists the endpoint (etcdctl get --prefix {})",
        berth_cluster::keys::endpoints(&rec.network_id)
    )
}
