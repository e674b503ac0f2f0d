//! `berth gc`: remove what crashes left behind.

use crate::{Failure, Outcome};
use berth_engine::Engine;

pub(crate) fn run(engine: &mut Engine) -> Result<Outcome, Failure> {
    for line in engine.gc()? {
        println!("{line}");
    }
    Ok(Outcome::Ok)
}
