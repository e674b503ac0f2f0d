//! The error type of the kernel boundary.
//!
//! Every variant names the operation and the object it acted on (`op`), so a
//! message reads like "create veth bth1234 in container namespace: file
//! exists (os error 17)". Kernel error numbers stay typed so that callers can
//! branch on them ([`Error::is_exists`], [`Error::is_not_found`]) instead of
//! matching strings.

use std::io;

/// Result alias used throughout this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// An error from a system call, a netlink request or an invalid argument.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The kernel answered a netlink request with a negative errno.
    #[error("{op}: {}{}", errno_text(*errno), extack_text(extack.as_deref()))]
    Netlink {
        /// What was attempted, e.g. "create bridge berth0".
        op: String,
        /// The positive errno (e.g. `libc::EEXIST`).
        errno: i32,
        /// The kernel's extended acknowledgement text, when it sent one
        /// (e.g. "Unknown device type").
        extack: Option<String>,
    },
    /// A system call or file operation failed.
    #[error("{op}: {}", io_text(source))]
    Io {
        /// What was attempted, e.g. "open network namespace /run/x".
        op: String,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The kernel sent something this crate could not parse or did not
    /// expect (wrong sequence number, missing acknowledgement, ...).
    #[error("{op}: netlink protocol error: {detail}")]
    Protocol {
        /// What was attempted.
        op: String,
        /// What went wrong.
        detail: String,
    },
    /// An argument was rejected before anything was sent to the kernel.
    #[error("invalid argument: {0}")]
    Invalid(String),
}

impl Error {
    /// A netlink error without extended acknowledgement text; for callers
    /// (and their test fakes) that need to build one.
    pub fn netlink(op: impl Into<String>, errno: i32) -> Error {
        Error::Netlink {
            op: op.into(),
            errno,
            extack: None,
        }
    }

    /// Builds an [`Error::Io`] from `errno` (the C `errno` of the failed call).
    pub(crate) fn last_os(op: impl Into<String>) -> Error {
        Error::Io {
            op: op.into(),
            source: io::Error::last_os_error(),
        }
    }

    /// Builds an [`Error::Io`] from an [`io::Error`].
    pub(crate) fn io(op: impl Into<String>, source: io::Error) -> Error {
        Error::Io {
            op: op.into(),
            source,
        }
    }

    /// The kernel errno behind this error, if there is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Netlink { errno, .. } => Some(*errno),
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Protocol { .. } | Error::Invalid(_) => None,
        }
    }

    /// True if the object already existed (`EEXIST`).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }

    /// True if the object (device, address, route, file, process) did not
    /// exist: `ENODEV`, `ENOENT`, `ESRCH` or `EADDRNOTAVAIL`.
    pub fn is_not_found(&self) -> bool {
        matches!(
            self.errno(),
            Some(libc::ENODEV | libc::ENOENT | libc::ESRCH | libc::EADDRNOTAVAIL)
        )
    }

    /// The operation this error is about.
    pub fn op(&self) -> &str {
        match self {
            Error::Netlink { op, .. } | Error::Io { op, .. } | Error::Protocol { op, .. } => op,
            Error::Invalid(what) => what,
        }
    }
}

/// "file exists (os error 17)": the libc text with a lower-case first letter.
fn errno_text(errno: i32) -> String {
    lower_first(io::Error::from_raw_os_error(errno).to_string())
}

fn extack_text(extack: Option<&str>) -> String {
    match extack {
        Some(text) if !text.is_empty() => format!(" ({})", lower_first(text.to_string())),
        _ => String::new(),
    }
}

fn io_text(err: &io::Error) -> String {
    lower_first(err.to_string())
}

fn lower_first(text: String) -> String {
    let mut chars = text.chars();
    match chars.next() {
        // Keep acronyms such as "RTNETLINK" or "IO" as they are.
        Some(first) if first.is_uppercase() && !chars.next().is_some_and(char::is_uppercase) => {
            first
                .to_lowercase()
                .chain(text[first.len_utf8()..].chars())
                .collect()
        }
        _ => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_lower_case_and_names_the_object() {
        let err = Error::netlink("create veth bth1234 in container namespace", libc::EEXIST);
        assert_eq!(
            err.to_string(),
            "create veth bth1234 in container namespace: file exists (os error 17)"
        );
        assert!(err.is_exists());
        assert!(!err.is_not_found());
        assert_eq!(err.errno(), Some(libc::EEXIST));
    }

    #[test]
    fn extack_is_appended() {
        let err = Error::Netlink {
            op: "create link x".into(),
            errno: libc::EOPNOTSUPP,
            extack: Some("Unknown device type".into()),
        };
        assert_eq!(
            err.to_string(),
            "create link x: operation not supported (os error 95) (unknown device type)"
        );
    }

    #[test]
    fn io_errors_keep_their_errno() {
        let err = Error::io("kill process 42", io::Error::from_raw_os_error(libc::ESRCH));
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "kill process 42: no such process (os error 3)"
        );
        let err = Error::Protocol {
            op: "dump links".into(),
            detail: "x".into(),
        };
        assert_eq!(err.errno(), None);
        assert!(!err.is_not_found());
    }

    #[test]
    fn lower_first_keeps_acronyms() {
        assert_eq!(lower_first("IO failed".into()), "IO failed");
        assert_eq!(lower_first("File exists".into()), "file exists");
        assert_eq!(lower_first(String::new()), "");
    }
}
