//! berth's nftables firewall: a constant ruleset whose variable parts are set and map elements.
//!
//! One table, `inet berth`, holds every rule berth needs but one: the fast path for traffic
//! between two containers of one network is a netdev table ([`fastpath`]). The rules never change with the
//! number of networks, containers or ports; what a network or a container adds is an element
//! of a set or map (`bridges`, `same_bridge`, `internal_bridges`, `bridged4`/`bridged6`,
//! `masq4`/`masq6`, the `pub4*`/`pub6*` port maps). See `docs/ARCHITECTURE.md` for the rule-by-rule reasoning.
//!
//! The ruleset is text for `nft -f -` ([`ruleset`]), installed once per host (and again
//! when it was deleted or flushed). Elements ([`elements`]) travel as nf_tables netlink
//! batches ([`Firewall::apply`]): the setup and teardown of a container spawn no process.
//! This crate must not change any table other than `inet berth` and `netdev berth`; [`list_ruleset`] reads them
//! all for `berth diagnose`.

mod apply;
pub mod elements;
mod error;
pub mod fastpath;
mod read;
pub mod ruleset;

pub use apply::{locate_nft, Firewall};
pub use elements::{NetworkElements, PortElement, Update};
pub use error::{Error, Result};
pub use fastpath::FastPort;
pub use read::list_ruleset;
