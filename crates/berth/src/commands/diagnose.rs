//! `berth diagnose SRC DST`.
use crate::cli::DiagnoseArgs;
use crate::{Failure, Outcome};
use berth_engine::Engine;
pub(crate) fn run(_engine: &mut Engine, _a: DiagnoseArgs) -> Result<Outcome, Failure> {
    Ok(Outcome::Ok)
}
