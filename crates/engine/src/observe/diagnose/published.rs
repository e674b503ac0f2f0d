//! Paths through a published port: from a container or from outside to a host address and
//! port, DNAT'd into the container that publishes it.

use super::walk::{fail, Step, Stop, Walk, RELOAD};
use super::Verdict;
use crate::Error;
use berth_store::{Container, PortMapping};
use std::net::IpAddr;

impl Walk<'_> {
    pub(super) fn outside_to_host(&mut self, a: IpAddr, h: Option<IpAddr>) -> Step<Verdict> {
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

    /// The published port `h:port` leads to (row and target container), or `None` when no
    /// container publishes that port; a port published only on other host addresses is the
    /// `published-other-ip` verdict.
    pub(super) fn published(
        &mut self,
        h: IpAddr,
        port: u16,
    ) -> Step<Option<(PortMapping, Container)>> {
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
                    "publish it on {h} too: -p {}:{port}:{} (or -p {port}:{} for every address), or connect to {}:{port} where that address is the host's",
                    host_in_flag(h), rows[0].container_port, rows[0].container_port, rows[0].host_ip
                ),
            ));
        }
        Ok(hit.map(|r| (r, owner)))
    }

    /// A flow DNAT'd by published port `row` into container `t`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn through_published(
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
        let proto = self.target.proto.clone();
        let to = self.ruleset()?.dnat_target(h, &proto, row.host_port);
        let want = (taddr, row.container_port);
        let shown = to.map_or_else(|| "no element".to_string(), |(a, p)| format!("-> {a}:{p}"));
        let name = format!(
            "berth's publish map sends {h}:{}/{proto} to {taddr}:{}",
            row.host_port, row.container_port
        );
        if !self.check(name, to == Some(want), shown.clone()) {
            return Err(fail(
                "not-programmed",
                format!(
                    "berth's publish maps have {shown} for {h}:{}/{proto}, published by {}",
                    row.host_port, t.name
                ),
                RELOAD.into(),
            ));
        }
        let tbr = self.net(&tep.network_id).bridge.unwrap_or_default();
        let mut flow = self.flow(iif, &tbr, saddr, taddr, true);
        flow.dport = Some(row.container_port);
        self.firewall("forward", &flow, RELOAD)?;
        match netns {
            Some(_) => self.probe(netns, from, h, Some(row.host_port)),
            None => self.probe(None, from, taddr, Some(row.container_port)),
        }
    }
}

fn host_in_flag(h: IpAddr) -> String {
    match h {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}
