//! The store's error type.

/// What can go wrong reading or writing state.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite refused or failed an operation.
    #[error("{op}: {source}")]
    Sql {
        op: String,
        #[source]
        source: rusqlite::Error,
    },
    /// The state directory could not be prepared.
    #[error("{op}: {source}")]
    Io {
        op: String,
        #[source]
        source: std::io::Error,
    },
    /// A stored value could not be decoded (hand-edited or newer database).
    #[error("corrupt state: {0}")]
    Corrupt(String),
}

/// Result with the store's error.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// True when SQLite gave up waiting for another process's transaction (try again).
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            Error::Sql {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    }

    /// Makes a closure that wraps a SQLite error with the operation it interrupted.
    pub(crate) fn sql(op: String) -> impl FnOnce(rusqlite::Error) -> Error {
        move |source| Error::Sql { op, source }
    }

    /// True when SQLite reported a UNIQUE or PRIMARY KEY constraint violation.
    pub fn is_unique_violation(&self) -> bool {
        matches!(self, Error::Sql { source: rusqlite::Error::SqliteFailure(e, _), .. }
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
    }
}
