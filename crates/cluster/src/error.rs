//! Errors of the cluster store.

/// What went wrong talking to etcd.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store cannot be reached (down, wrong address, timeout).
    #[error("cluster store {store} is unreachable ({detail}): commands on overlay networks need it; check that etcd runs there")]
    Unreachable { store: String, detail: String },
    /// The request reached etcd and failed there.
    #[error("cluster store {store}: {op}: {detail}")]
    Request {
        store: String,
        op: String,
        detail: String,
    },
    /// A bad configuration value.
    #[error("{0}")]
    Invalid(String),
    /// A claim lost against another host's or is refused.
    #[error("{0}")]
    Conflict(String),
    /// A record that does not decode.
    #[error("cluster store {store}: record {key} is corrupt: {detail}")]
    Corrupt {
        store: String,
        key: String,
        detail: String,
    },
}

pub type Result<T> = std::result::Result<T, Error>;

/// Maps an etcd client error to [`Error`]: transport failures and deadlines are
/// "unreachable", anything else is a failed request.
pub(crate) fn from_etcd(store: &str, op: &str, e: etcd_client::Error) -> Error {
    let unreachable = match &e {
        etcd_client::Error::TransportError(_) | etcd_client::Error::IoError(_) => true,
        // gRPC codes CANCELLED (1), DEADLINE_EXCEEDED (4), UNAVAILABLE (14).
        etcd_client::Error::GRpcStatus(s) => matches!(s.code() as i32, 1 | 4 | 14),
        _ => false,
    };
    if unreachable {
        Error::Unreachable {
            store: store.to_string(),
            detail: format!("{op}: {e}"),
        }
    } else {
        Error::Request {
            store: store.to_string(),
            op: op.to_string(),
            detail: e.to_string(),
        }
    }
}
