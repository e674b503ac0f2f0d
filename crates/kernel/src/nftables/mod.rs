//! nf_tables over netlink (NETLINK_NETFILTER): set and map elements, and
//! change notifications.
//!
//! - [`Batch`] + [`Nftables::send`]: add and destroy elements of existing
//!   sets and maps, and add or remove the devices of a netdev base chain, in
//!   one atomic nfnetlink batch (all or nothing).
//! - [`Nftables`]: also asks whether a table or set exists and dumps a set's
//!   elements.
//! - [`Monitor`]: reports deletions in one table (`nft flush ruleset`, a
//!   flushed chain, deleted elements) so an agent can repair it.
//!
//! Tables, rules and sets themselves are declared by the firewall crate with
//! `nft -f`; this module programs elements and netdev chain hooks (which nft
//! 1.0.6 cannot create without a device, nor shrink). Keys and data
//! are raw bytes in nft's layout, built with [`encode`]. Sockets act in the
//! network namespace of the thread that opened them.

mod batch;
mod client;
pub mod encode;
mod monitor;
pub(crate) mod nfnl;
pub(crate) mod socket;

pub use batch::{Batch, Hook};
pub use client::Nftables;
pub use monitor::{Change, Monitor};

/// `NFNL_SUBSYS_NFTABLES`: the high byte of every nf_tables message type.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// `NFNL_MSG_BATCH_BEGIN` / `NFNL_MSG_BATCH_END`.
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;

// enum nf_tables_msg_types (linux/netfilter/nf_tables.h).
const NFT_MSG_GETTABLE: u16 = 1;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_DELRULE: u16 = 8;
const NFT_MSG_GETSET: u16 = 10;
const NFT_MSG_DELSET: u16 = 11;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_GETSETELEM: u16 = 13;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFT_MSG_DESTROYTABLE: u16 = 26;
const NFT_MSG_DESTROYCHAIN: u16 = 27;
const NFT_MSG_DESTROYRULE: u16 = 28;
const NFT_MSG_DESTROYSET: u16 = 29;
/// Kernel >= 6.3: like DELSETELEM, but a missing element is not an error.
const NFT_MSG_DESTROYSETELEM: u16 = 30;

// Attributes. The table name is attribute 1 of tables, chains, rules, sets
// and element lists alike.
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;
const NFTA_HOOK_DEVS: u16 = 4;
const NFTA_DEVICE_NAME: u16 = 1;
/// `IFNAMSIZ`: an interface name with its NUL.
const IFNAMSIZ: usize = 16;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_SET_TABLE: u16 = 1;
const NFTA_SET_NAME: u16 = 2;
const NFTA_SET_FLAGS: u16 = 3;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFTA_SET_ELEM_KEY_END: u16 = 10;
const NFTA_DATA_VALUE: u16 = 1;
const NFTA_SET_ELEM_EXPR: u16 = 7;
const NFTA_SET_ELEM_EXPRESSIONS: u16 = 11;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_COUNTER_PACKETS: u16 = 2;
/// `NFT_SET_ELEM_INTERVAL_END`.
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
/// `NFT_SET_ANONYMOUS`: a set nft made for one rule (`{ a, b }`).
const NFT_SET_ANONYMOUS: u32 = 1;
/// `NFT_DATA_VALUE_MAXLEN`: the longest key or data value.
const DATA_VALUE_MAXLEN: usize = 64;
/// `NFT_NAME_MAXLEN - 1`: the longest table or set name.
const NAME_MAXLEN: usize = 255;

/// The family of an nf_tables table (`NFPROTO_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// `inet`: IPv4 and IPv6.
    Inet,
    /// `ip`: IPv4.
    Ip,
    /// `ip6`: IPv6.
    Ip6,
    /// `bridge`.
    Bridge,
    /// `netdev`: a device's ingress and egress.
    Netdev,
}

impl Family {
    /// The `NFPROTO_*` value (`nfgen_family`).
    pub fn nfproto(self) -> u8 {
        match self {
            Family::Inet => 1,
            Family::Ip => 2,
            Family::Netdev => 5,
            Family::Bridge => 7,
            Family::Ip6 => 10,
        }
    }

    /// The name nft uses ("inet", "ip", "ip6", "bridge").
    pub fn name(self) -> &'static str {
        match self {
            Family::Inet => "inet",
            Family::Ip => "ip",
            Family::Ip6 => "ip6",
            Family::Bridge => "bridge",
            Family::Netdev => "netdev",
        }
    }
}

/// One element of a set or map, with key and data already encoded in nft's
/// byte layout (see [`encode`]).
///
/// - plain set: `key`;
/// - map: `key` and `data`;
/// - interval set of one field (rbtree, e.g. `ipv4_addr; flags interval`):
///   two elements per interval, the start and, with `interval_end`, the
///   first value after it ([`encode::prefix`] builds them);
/// - interval set of a concatenation (pipapo): one element with `key` (first
///   value) and `key_end` (last value, inclusive; equal to `key` for a single
///   value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Element {
    /// `NFTA_SET_ELEM_KEY`.
    pub key: Vec<u8>,
    /// `NFTA_SET_ELEM_KEY_END`: the inclusive end of a concatenated range.
    pub key_end: Option<Vec<u8>>,
    /// `NFTA_SET_ELEM_DATA`: a map element's value. Not sent on destroy.
    pub data: Option<Vec<u8>>,
    /// `NFT_SET_ELEM_INTERVAL_END`: this element ends an interval.
    pub interval_end: bool,
}

impl Element {
    /// A set element.
    pub fn key(key: Vec<u8>) -> Element {
        Element {
            key,
            key_end: None,
            data: None,
            interval_end: false,
        }
    }

    /// A map element.
    pub fn map(key: Vec<u8>, data: Vec<u8>) -> Element {
        Element {
            data: Some(data),
            ..Element::key(key)
        }
    }

    /// A range `first..=last` of a concatenated interval set or map.
    pub fn range(first: Vec<u8>, last: Vec<u8>) -> Element {
        Element {
            key_end: Some(last),
            ..Element::key(first)
        }
    }

    /// The same element with map data `data`.
    pub fn with_data(self, data: Vec<u8>) -> Element {
        Element {
            data: Some(data),
            ..self
        }
    }
}

/// Checks a table or set name before it goes into a message.
fn check_name(what: &str, name: &str) -> crate::Result<()> {
    if name.is_empty() || name.len() > NAME_MAXLEN || name.contains('\0') {
        return Err(crate::Error::Invalid(format!(
            "nftables {what} name {name:?}: must be 1 to {NAME_MAXLEN} bytes without NUL"
        )));
    }
    Ok(())
}

/// "set inet berth masq4", for error messages.
fn set_label(family: Family, table: &str, set: &str) -> String {
    format!("set {} {table} {set}", family.name())
}
