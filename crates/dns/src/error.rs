use std::io;
use std::net::SocketAddr;

/// A snapshot that cannot be served; the previous one stays in force.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("invalid dns domain {0:?}: it needs non-empty labels of at most 63 bytes")]
    InvalidDomain(String),
    #[error("network {0} is listed twice")]
    DuplicateNetwork(String),
    #[error("container {container} has an endpoint on network {network}, which is not listed")]
    UnknownNetwork { container: String, network: String },
}

/// Errors of the server.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("start dns server thread: {0}")]
    Start(#[source] io::Error),
    /// Some listen addresses could not be bound; all others are serving.
    #[error("listen for dns on {}", list(.0))]
    Listen(Vec<(SocketAddr, io::Error)>),
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
}

fn list(failures: &[(SocketAddr, io::Error)]) -> String {
    failures
        .iter()
        .map(|(a, e)| format!("{a}: {e}"))
        .collect::<Vec<_>>()
        .join(", ")
}
