//! Deferred clean-up: what a door's teardown hands to the resident agent so that the
//! runtime's call returns before the kernel's link deletions.
//!
//! Deleting a link makes the caller wait for a kernel `rcu_barrier()` (~10-20 ms here), and a
//! door network's last container also takes its bridge. When the agent runs, a door's
//! teardown takes the veth's host end off its bridge (no traffic passes it from then on),
//! removes the rows, and sends the agent `reap teardown MICROS link=NAME... net=ID...`; the
//! agent answers at once and deletes them on its own thread (an idle network's bridge after
//! a short linger, see the agent's `reaper`). Without an agent the door does it itself
//! ([`run`]), as before.
//!
//! The teardown's nf_tables socket rides along (`SCM_RIGHTS`, `berth_kernel::fdpass`): the
//! last close of a socket whose commit deleted elements flushes the kernel's deferred
//! clean-up of that commit, an RCU grace period (~10 ms here), and the door would wait for it
//! at its exit. The agent's reaper closes its copy after the job's link deletions.

use crate::error::KernelContext;
use crate::lock::Lock;
use crate::{bridge, Engine, Result};
use berth_kernel::netlink::Netlink;
use std::collections::BTreeSet;

/// Links to delete and networks to deactivate if they are left without endpoints.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reap {
    /// Host ends of veth pairs (`bth…`).
    pub links: Vec<String>,
    /// Network ids.
    pub networks: Vec<String>,
    /// `[::1]` host ports the agent relayed for the container (`tcp/8080`): closed before
    /// the agent answers, as the kernel's map elements are gone by then.
    pub ports: Vec<(crate::ports::spec::Proto, u16)>,
}

impl Reap {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && self.networks.is_empty() && self.ports.is_empty()
    }

    /// The request's arguments: `link=NAME`, `net=ID` and `port=PROTO/PORT` words.
    pub fn to_words(&self) -> String {
        let links = self.links.iter().map(|l| format!("link={l}"));
        let nets = self.networks.iter().map(|n| format!("net={n}"));
        let ports = self
            .ports
            .iter()
            .map(|(p, n)| format!("port={}/{n}", p.as_str()));
        links.chain(nets).chain(ports).collect::<Vec<_>>().join(" ")
    }

    /// Parses [`Reap::to_words`]'s words; anything else is an error naming the word.
    pub fn parse<'a>(
        words: impl IntoIterator<Item = &'a str>,
    ) -> std::result::Result<Reap, String> {
        let mut r = Reap::default();
        for w in words {
            match w.split_once('=') {
                Some(("link", l)) if l.starts_with("bth") && l.len() <= 15 => {
                    r.links.push(l.to_string())
                }
                Some(("net", n)) if !n.is_empty() => r.networks.push(n.to_string()),
                Some(("port", p)) => match p.split_once('/').and_then(|(proto, n)| {
                    Some((
                        crate::ports::spec::Proto::parse(proto)?,
                        n.parse::<u16>().ok()?,
                    ))
                }) {
                    Some(port) => r.ports.push(port),
                    None => return Err(format!("invalid reap argument {w:?}")),
                },
                _ => return Err(format!("invalid reap argument {w:?}")),
            }
        }
        Ok(r)
    }
}

/// Deletes the links no endpoint owns any more and deactivates the door and overlay networks
/// among `r.networks` that have no endpoint left (under each network's lock, so a container
/// arriving meanwhile keeps its bridge). Returns every failure; gone is fine.
pub fn run(engine: &mut Engine, r: &Reap) -> Vec<String> {
    let mut errors = Vec::new();
    if let Err(e) = links(engine, &r.links) {
        errors.push(e.to_string());
    }
    for id in &r.networks {
        let _lock = match Lock::exclusive(&engine.paths.network_lock(id)) {
            Ok(l) => l,
            Err(e) => {
                errors.push(e.to_string());
                continue;
            }
        };
        let found = engine.store.read(|tx| -> Result<_> {
            Ok(match tx.network(id)? {
                Some(net) => Some((tx.count_endpoints_of_network(&net.id)?, net)),
                None => None,
            })
        });
        match found {
            Ok(Some((0, net))) if bridge::lives_with_endpoints(&net) => {
                errors.extend(bridge::deactivate(&net))
            }
            Ok(_) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    errors
}

fn links(engine: &mut Engine, links: &[String]) -> Result<()> {
    if links.is_empty() {
        return Ok(());
    }
    let owned: BTreeSet<String> = engine.store.read(|tx| -> Result<_> {
        Ok(tx
            .all_endpoints()?
            .into_iter()
            .map(|e| e.host_ifname)
            .collect())
    })?;
    let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
    for l in links.iter().filter(|l| !owned.contains(*l)) {
        nl.delete_link_by_name(l)
            .op(|| format!("delete veth {l}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_round_trip_and_bad_words_are_refused() {
        let r = Reap {
            links: vec!["bth0123456789a".into()],
            networks: vec!["abc".into()],
            ports: vec![(crate::ports::spec::Proto::Udp, 5353)],
        };
        let words = r.to_words();
        assert_eq!(words, "link=bth0123456789a net=abc port=udp/5353");
        assert_eq!(Reap::parse(words.split_whitespace()).unwrap(), r);
        Reap::parse(["link=eth0"]).unwrap_err();
        Reap::parse(["net="]).unwrap_err();
        Reap::parse(["port=tcp/99999"]).unwrap_err();
        Reap::parse(["port=icmp/80"]).unwrap_err();
        Reap::parse(["rm -rf"]).unwrap_err();
    }
}
