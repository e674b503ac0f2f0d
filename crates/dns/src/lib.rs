//! `berth-dns`: the DNS server that berth's agent runs for containers.
//!
//! It owns name service for containers: it listens (UDP and TCP) on the gateway addresses
//! of DNS-enabled networks, answers A, AAAA and PTR for container names, aliases and short
//! ids to requesters that share a network with the target, and forwards everything else to
//! the requester's `--dns` servers or the host's, with a small cache. It must not touch the
//! kernel beyond its own sockets, read berth's store, or decide which networks have DNS: the
//! agent hands it a [`Snapshot`] of records and the list of listen addresses, and may replace
//! either at any time, or add one container to the records at the cost of one container.
//!
//! ```text
//! let server = Server::start(Config::default())?;          // own thread + runtime
//! server.set_records(&snapshot)?;                           // atomic swap, visible at once
//! server.add_container(&snapshot_with_c, &c)?;              // one more, same cost at any size
//! server.set_listeners(&["10.89.0.1:53".parse()?])?;        // add/remove, others untouched
//! server.metrics().register(&mut registry);
//! server.shutdown();
//! ```
//!
//! # Behaviour in short
//!
//! - Names: a container's name, 12-character short id and per-network aliases, `X.NETWORK`,
//!   each also under the domain (`berth.internal`); ASCII case-insensitive. Only requesters
//!   (by query source address) sharing a network with the target get an answer, and only
//!   with its addresses on the shared networks. The full rules are in the `records` module.
//! - PTR: `NAME.NETWORK.DOMAIN.` for addresses of visible containers; NXDOMAIN for free
//!   addresses in a shared subnet.
//! - Negative answers: NXDOMAIN under the domain (and for bare names, hidden berth names and
//!   `X.NETWORK`), NODATA for a name without the asked type; both authoritative, with an SOA
//!   where berth owns the zone.
//! - TTL of berth's answers: [`Config::ttl`] (5 s), also the SOA MINIMUM (negative TTL).
//! - Everything else is forwarded (module `upstream`) to the requester's `--dns` servers or
//!   the snapshot's default upstreams, within [`Config::upstream_timeout`] (2 s), through a
//!   bounded cache (module `cache`); SERVFAIL when no upstream answers.
//!
//! # Layout
//!
//! - `wire`: DNS message parsing and encoding (hand-written, allocation-free on the hot path);
//! - `records`: the snapshot types, the lookup tables built from them once per
//!   [`Server::set_records`], and the pure resolution of a question for a requester;
//! - `handler`: packet in, answer out, or a forwarding job; `upstream`: forwarding;
//!   `cache`: the forwarded-answer cache;
//! - `server`: threads, runtime, sockets and the listener set; `metrics`.
//!
//! Threads: one runs a current-thread tokio runtime (TCP, forwarding); each listen address
//! has its own thread blocked in `recvmmsg`, which answers berth names and cache hits in
//! batches without the runtime (see `server` for why).

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
