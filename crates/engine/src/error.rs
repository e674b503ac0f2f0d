//! The engine's error type: what a user is told, classified so each door can map it.

/// What went wrong, in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A named object does not exist.
    #[error("{kind} {name} not found")]
    NotFound { kind: &'static str, name: String },
    /// The request conflicts with existing state (duplicate name, in use, taken address).
    #[error("{0}")]
    Conflict(String),
    /// The request itself is malformed.
    #[error("{0}")]
    Invalid(String),
    /// berth lacks the privileges it needs.
    #[error("berth must run as root (it needs CAP_NET_ADMIN and CAP_SYS_ADMIN): run it with sudo")]
    NotRoot,
    #[error(transparent)]
    Ipam(#[from] berth_ipam::Error),
    #[error(transparent)]
    Store(#[from] berth_store::Error),
    #[error(transparent)]
    Firewall(#[from] berth_firewall::Error),
    #[error(transparent)]
    Cluster(#[from] berth_cluster::Error),
    /// The kernel lacks something berth needs (a module, a link type).
    #[error("{op}: {source}: the kernel lacks a feature berth needs: load the bridge and veth modules (modprobe bridge veth) or use a kernel built with them")]
    KernelFeature {
        op: String,
        #[source]
        source: berth_kernel::Error,
    },
    /// The kernel refused an operation.
    #[error("{op}: {source}")]
    Kernel {
        op: String,
        #[source]
        source: berth_kernel::Error,
    },
    /// A file operation failed.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// The container's command could not be started.
    #[error("cannot start {program:?} in container {container}: {source}")]
    Exec {
        program: String,
        container: String,
        #[source]
        source: std::io::Error,
    },
    /// Teardown went on past failures; these are all of them.
    #[error("{}", .0.join("; "))]
    Incomplete(Vec<String>),
}

impl Error {
    /// The shell-style status for a command that could not start: 127 when it does not
    /// exist, 126 when it cannot be executed (as Docker and shells report them).
    pub fn exec_status(&self) -> Option<u8> {
        match self {
            Error::Exec { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                Some(127)
            }
            Error::Exec { .. } => Some(126),
            _ => None,
        }
    }
}

/// Result with the engine's error.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps kernel errors with the operation they interrupted.
pub(crate) trait KernelContext<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T>;
}

impl<T> KernelContext<T> for std::result::Result<T, berth_kernel::Error> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| match source.errno() {
            // What the kernel answers for an unknown link kind or a missing module.
            Some(libc::EOPNOTSUPP | libc::EAFNOSUPPORT | libc::EPROTONOSUPPORT) => {
                Error::KernelFeature { op: op(), source }
            }
            _ => Error::Kernel { op: op(), source },
        })
    }
}

impl<T> KernelContext<T> for std::io::Result<T> {
    fn op(self, op: impl FnOnce() -> String) -> Result<T> {
        self.map_err(|source| Error::Io { op: op(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsupported_operations_say_what_to_load() {
        let r: std::result::Result<(), _> = Err(berth_kernel::Error::netlink(
            "create bridge berth0",
            libc::EOPNOTSUPP,
        ));
        let e = r
            .op(|| "create bridge berth0 for network bridge".into())
            .unwrap_err();
        assert!(matches!(e, Error::KernelFeature { .. }));
        assert!(e.to_string().contains("modprobe bridge veth"), "{e}");
        let r: std::result::Result<(), _> = Err(berth_kernel::Error::netlink(
            "create bridge berth0",
            libc::EEXIST,
        ));
        let e = r.op(|| "create bridge".into()).unwrap_err();
        assert!(matches!(e, Error::Kernel { .. }));
    }
}
