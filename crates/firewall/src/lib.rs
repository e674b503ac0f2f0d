//! berth's nftables firewall: a constant ruleset whose variable parts are set and map elements.
//!
//! One table, `inet berth`, holds every rule berth needs. The rules never change with the
//! number of networks, containers or ports; what a network or a container adds is an element
//! of a set or map (`bridges`, `same_bridge`, `internal_bridges`, `masq4`, the `pub4_*` port
//! maps). See `docs/ARCHITECTURE.md` for the rule-by-rule reasoning.
//!
//! This crate builds nft scripts as plain text ([`ruleset`]) and applies them atomically with
//! one `nft -f -` batch ([`Firewall`]). It must not touch any table other than `inet berth`.
//! Per-container map elements (published ports) move to netlink batches with port publishing.

mod apply;
mod error;
pub mod ruleset;

pub use apply::Firewall;
pub use error::{Error, Result};
pub use ruleset::NetworkElements;
