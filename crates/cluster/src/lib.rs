//! berth-cluster: the global scope of berth's state, in etcd v3.
//!
//! Overlay networks, their VNIs and address claims, their endpoints and the host registry
//! live under `/berth/v1/` in etcd (layout in [`keys`]). A host registers under a lease
//! (about 10 s) that its agent keeps alive; the host's address claims and endpoint records
//! are attached to that lease, so when a host dies its records vanish with it and every
//! other agent sees the deletions. Names and VNIs are claimed by transactions that compare
//! the whole `networks/` prefix against the revision it was read at; addresses by a
//! transaction per address that succeeds only when the key does not exist yet.
//!
//! The API is blocking: [`Cluster`] owns a small single-threaded tokio runtime for the gRPC
//! client. This crate knows nothing about the kernel, SQLite or address arithmetic: callers
//! (the engine, the agent) decide what to claim; this crate makes the claim atomic.

mod client;
mod config;
mod error;
pub mod keys;
mod records;
mod session;

pub use client::Cluster;
pub use config::{parse_url, Config, FileConfig};
pub use error::{Error, Result};
pub use records::{Claim, EndpointRecord, HostRecord, NetworkRecord};
pub use session::{Event, Session};

/// The lease TTL under which a host's records live, in seconds.
pub const LEASE_TTL: i64 = 10;
