//! STATUS (1.1.0): is berth ready for ADD — its store opens and its firewall can be set up.

use super::config::Config;
use super::error::code;
use super::CniError;
use berth_engine::{Engine, Paths};

pub(super) fn run(paths: Paths, conf: &Config) -> Result<(), CniError> {
    if !super::at_least(&conf.cni_version, "1.1.0") {
        return Err(CniError::msg(
            code::INCOMPATIBLE_VERSION,
            format!(
                "STATUS needs CNI 1.1.0, the configuration says {}",
                conf.cni_version
            ),
        ));
    }
    let unavailable =
        |e: String| CniError::msg(code::NOT_AVAILABLE, format!("berth is not ready: {e}"));
    let mut engine = Engine::open(paths).map_err(|e| unavailable(e.to_string()))?;
    engine
        .firewall_complete()
        .map_err(|e| unavailable(e.to_string()))?;
    Ok(())
}
