//! `berth stop`: SIGTERM, then SIGKILL after the timeout.

use super::each;
use crate::cli::StopArgs;
use crate::{Failure, Outcome};
use berth_engine::{container, Engine};
use std::time::Duration;

pub(crate) fn run(engine: &mut Engine, a: StopArgs) -> Result<Outcome, Failure> {
    let timeout = Duration::from_secs(a.time);
    each(&a.containers, |c| {
        container::stop(engine, c, timeout).map(Some)
    })
}
