//! Phase timings of the verbs, logged at debug level under the `berth::timing` target
//! (`BERTH_LOG=berth::timing=debug`): where a setup or teardown spends its time.

use std::time::Instant;

/// Marks the end of each phase of one verb.
pub struct Phases {
    verb: &'static str,
    start: Instant,
    last: Instant,
}

impl Phases {
    pub fn new(verb: &'static str) -> Phases {
        let now = Instant::now();
        Phases {
            verb,
            start: now,
            last: now,
        }
    }

    /// Logs the time since the previous mark (and since the start) for `phase`.
    pub fn mark(&mut self, phase: &str) {
        let now = Instant::now();
        tracing::debug!(
            target: "berth::timing",
            verb = self.verb,
            phase,
            us = (now - self.last).as_micros() as u64,
            total_us = (now - self.start).as_micros() as u64,
        );
        self.last = now;
    }
}
