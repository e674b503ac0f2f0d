//! Read-only observation of what berth built: per-interface counters ([`stats`]), the
//! reachability walk of `berth diagnose` ([`diagnose`]), the picture of networks and
//! containers ([`topology`]), and the event log ([`events`]); `overlay` reads what an
//! overlay's VXLAN device holds for the first two.
//!
//! Nothing here changes the kernel or the store, except [`events`], which appends to the
//! log on behalf of the verbs.

pub mod diagnose;
pub mod events;
mod overlay;
pub mod stats;
pub mod topology;

use crate::error::KernelContext;
use crate::Result;
use berth_kernel::netlink::{Address, Link, Neighbour, Netlink, Route};
use berth_kernel::netns;
use berth_store::Container;
use std::path::Path;

/// What one network namespace holds, read in one go over one netlink socket.
#[derive(Clone, Debug, Default)]
pub(crate) struct NsView {
    pub(crate) links: Vec<Link>,
    pub(crate) addresses: Vec<Address>,
    pub(crate) routes: Vec<Route>,
    pub(crate) neighbours: Vec<Neighbour>,
}

impl NsView {
    /// Reads links, addresses, routes and neighbours over `nl`.
    pub(crate) fn read(nl: &mut Netlink, what: &str) -> Result<NsView> {
        Ok(NsView {
            links: nl.links().op(|| format!("list links of {what}"))?,
            addresses: nl.addresses().op(|| format!("list addresses of {what}"))?,
            routes: nl.routes().op(|| format!("list routes of {what}"))?,
            neighbours: nl
                .neighbours()
                .op(|| format!("list neighbours of {what}"))?,
        })
    }

    /// The namespace of the caller (the host).
    pub(crate) fn host() -> Result<NsView> {
        let mut nl = Netlink::open().op(|| "open netlink socket".into())?;
        NsView::read(&mut nl, "the host")
    }

    /// A container's namespace; `None` for host-mode containers and when its namespace file
    /// is gone.
    pub(crate) fn container(c: &Container) -> Result<Option<NsView>> {
        let Some(path) = &c.netns else {
            return Ok(None);
        };
        let ns = match netns::open(Path::new(path)) {
            Ok(ns) => ns,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => {
                return Err(e).op(|| format!("open network namespace of container {}", c.name))
            }
        };
        let mut nl =
            Netlink::open_in(&ns).op(|| format!("open netlink socket in container {}", c.name))?;
        NsView::read(&mut nl, &format!("container {}", c.name)).map(Some)
    }

    pub(crate) fn link(&self, name: &str) -> Option<&Link> {
        self.links.iter().find(|l| l.name == name)
    }

    pub(crate) fn link_by_index(&self, index: u32) -> Option<&Link> {
        self.links.iter().find(|l| l.index == index)
    }

    /// The main-table route `addr` takes (longest prefix), as `ip route get` would pick it
    /// without policy rules.
    pub(crate) fn route_to(&self, addr: std::net::IpAddr) -> Option<&Route> {
        self.routes
            .iter()
            .filter(|r| r.table == berth_kernel::netlink::TABLE_MAIN && r.dst.contains(&addr))
            .max_by_key(|r| r.dst.prefix_len())
    }

    /// The addresses on the link called `name`.
    pub(crate) fn addresses_of(&self, name: &str) -> Vec<&Address> {
        match self.link(name) {
            Some(l) => self
                .addresses
                .iter()
                .filter(|a| a.index == l.index)
                .collect(),
            None => Vec::new(),
        }
    }
}
