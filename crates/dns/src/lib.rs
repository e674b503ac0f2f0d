//! `berth-dns`: the DNS server that berth's agent runs for containers.
//!
//! It owns name service for containers: it listens (UDP and TCP) on the gateway addresses
//! of DNS-enabled networks, answers A, AAAA and PTR for container names, aliases and short
//! ids to requesters that share a network with the target, and forwards everything else to
//! the requester's `--dns` servers or the host's, with a small cache. It must not touch the
//! kernel beyond its own sockets, read berth's store, or decide which networks have DNS: the
//! agent hands it a [`Snapshot`] of records and the list of listen addresses, and may replace
//! either at any time.
//!
//! ```text
//! let server = Server::start(Config::default())?;          // own thread + runtime
//! server.set_records(&snapshot)?;                           // atomic swap, visible at once
//! server.set_listeners(&["10.89.0.1:53".parse()?])?;        // add/remove, others untouched
//! server.metrics().register(&mut registry);
//! server.shutdown();
//! ```
//!
//! Naming and policy rules are documented on [`records`](crate::Snapshot) (module
//! `records`); forwarding and caching in `upstream` and `cache`.
//!
//! # Layout
//!
//! - `wire`: DNS message parsing and encoding (hand-written, allocation-free on the hot path);
//! - `records`: the snapshot types, the lookup tables built from them and the pure
//!   resolution of a question for a requester;
//! - `handler`: packet in, answer out, or a forwarding job; `upstream`: forwarding;
//!   `cache`: the forwarded-answer cache;
//! - `server`: the thread, runtime, sockets and listener set; `metrics`.
//!
//! TTL of berth's answers: [`Config::ttl`] (5 s), also the negative TTL of its NXDOMAIN and
//! NODATA answers, which carry an SOA of the domain (or of the reverse zone of the subnet).

mod cache;
mod config;
mod error;
mod handler;
mod log_limit;
mod metrics;
mod records;
mod resolv_conf;
mod server;
mod upstream;
mod wire;

pub use config::{Config, DEFAULT_PORT};
pub use error::{Error, SnapshotError};
pub use metrics::Metrics;
pub use prometheus_client::registry::Registry;
pub use records::{Container, Endpoint, NetworkRecord, Snapshot, DEFAULT_DOMAIN, SHORT_ID_LEN};
pub use resolv_conf::parse_resolv_conf;
pub use server::Server;
