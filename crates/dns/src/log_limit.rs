//! Rate limiting for logs that outside input can trigger (queries, upstream failures).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Minimum time between two messages from one call site.
const INTERVAL_MS: u64 = 10_000;

/// Lets one message through per interval; use one `static` per call site.
pub(crate) struct LogLimit {
    next_ms: AtomicU64,
}

impl LogLimit {
    pub(crate) const fn new() -> LogLimit {
        LogLimit {
            next_ms: AtomicU64::new(0),
        }
    }

    /// True when this call site may log now.
    pub(crate) fn allow(&self) -> bool {
        static EPOCH: OnceLock<Instant> = OnceLock::new();
        let now = EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + INTERVAL_MS,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_message_per_interval() {
        let l = LogLimit::new();
        assert!(l.allow());
        assert!(!l.allow());
        assert!(!l.allow());
    }
}
