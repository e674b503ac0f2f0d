//! CNI error results: the spec's well-known codes and berth's own (100 and up).

use berth_engine::Error as EngineError;

/// Codes of the spec (1-11) and berth's own.
pub(crate) mod code {
    pub(crate) const INCOMPATIBLE_VERSION: u32 = 1;
    pub(crate) const UNSUPPORTED_FIELD: u32 = 2;
    pub(crate) const UNKNOWN_CONTAINER: u32 = 3;
    pub(crate) const INVALID_ENV: u32 = 4;
    pub(crate) const IO: u32 = 5;
    pub(crate) const DECODE: u32 = 6;
    pub(crate) const INVALID_CONFIG: u32 = 7;
    pub(crate) const TRY_AGAIN: u32 = 11;
    pub(crate) const NOT_AVAILABLE: u32 = 50;
    /// berth: the attachment in the kernel differs from what was set up (CHECK).
    pub(crate) const STATE_MISMATCH: u32 = 100;
    /// berth: the request conflicts with state (address, port or name in use).
    pub(crate) const CONFLICT: u32 = 101;
    /// berth: the kernel or the store failed.
    pub(crate) const INTERNAL: u32 = 102;
}

/// A failed verb: code, message, details.
#[derive(Debug)]
pub(crate) struct CniError {
    pub(crate) code: u32,
    pub(crate) msg: String,
    pub(crate) details: String,
}

impl CniError {
    pub(crate) fn new(code: u32, msg: impl Into<String>, details: impl ToString) -> CniError {
        CniError {
            code,
            msg: msg.into(),
            details: details.to_string(),
        }
    }

    pub(crate) fn msg(code: u32, msg: impl Into<String>) -> CniError {
        CniError::new(code, msg, "")
    }

    pub(crate) fn env(msg: String) -> CniError {
        CniError::msg(code::INVALID_ENV, msg)
    }

    pub(crate) fn config(msg: impl Into<String>) -> CniError {
        CniError::msg(code::INVALID_CONFIG, msg)
    }

    /// The error result, in the configuration's version.
    pub(crate) fn to_json(&self, version: &str) -> String {
        let mut v = serde_json::json!({
            "cniVersion": version,
            "code": self.code,
            "msg": self.msg,
        });
        if !self.details.is_empty() {
            v["details"] = self.details.clone().into();
        }
        v.to_string()
    }
}

impl From<EngineError> for CniError {
    fn from(e: EngineError) -> CniError {
        let c = match &e {
            EngineError::Invalid(_) | EngineError::Ipam(_) => code::INVALID_CONFIG,
            EngineError::NotFound { .. } => code::INVALID_CONFIG,
            EngineError::Conflict(_) => code::CONFLICT,
            EngineError::Store(s) if s.is_busy() => code::TRY_AGAIN,
            EngineError::Io { .. } => code::IO,
            _ => code::INTERNAL,
        };
        CniError::msg(c, e.to_string())
    }
}
