//! `berth rm`: remove containers with their network.

use super::each;
use crate::cli::RmArgs;
use crate::{Failure, Outcome};
use berth_engine::{container, Engine};

pub(crate) fn run(engine: &mut Engine, a: RmArgs) -> Result<Outcome, Failure> {
    each(&a.containers, |c| container::remove(engine, c, a.force))
}
