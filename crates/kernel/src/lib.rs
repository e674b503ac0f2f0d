//! berth-kernel: the kernel boundary of berth.
//!
//! This crate owns every `unsafe` block and every system call of the
//! project: rtnetlink requests ([`netlink`]), network namespaces
//! ([`netns`]), `/proc/sys` parameters ([`sysctl`]), the isolation a
//! container process gets between fork and exec ([`process`]), nf_tables
//! set elements and change notifications ([`nftables`]) and conntrack entry
//! deletion ([`conntrack`]), batched UDP receive and send for the DNS
//! server ([`udp`]), and descriptors passed over unix sockets ([`fdpass`]). It is synchronous and keeps kernel errors typed
//! ([`Error`]).
//!
//! It must not: spawn `ip`, `bridge`, `sysctl`, `nft`, `conntrack` or any
//! other helper process; leave a caller's thread in another namespace (work
//! inside a namespace runs on a dedicated thread, see [`netns::run_in`]; a
//! socket is made there by a brief enter and return, [`netns::open_in`]);
//! write firewall rules (the ruleset belongs to the firewall crate, this one
//! only carries element updates); or hold policy (names, addresses, what to
//! create when): that belongs to the engine, which calls these primitives.

pub mod conntrack;
mod error;
pub mod fdpass;
pub mod netlink;
pub mod netns;
pub mod nftables;
pub mod process;
pub mod signals;
pub mod sysctl;
pub mod udp;

pub use error::{Error, Result};

#[cfg(test)]
mod privileged_nft_tests;
#[cfg(test)]
mod privileged_tests;
#[cfg(test)]
mod privileged_vxlan_tests;
