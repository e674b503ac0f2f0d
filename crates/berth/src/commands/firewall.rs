//! `berth firewall reload`: rebuild berth's nftables table from berth's state.

use crate::cli::FirewallCommand;
use crate::{Failure, Outcome};
use berth_engine::Engine;

pub(crate) fn run(engine: &mut Engine, c: FirewallCommand) -> Result<Outcome, Failure> {
    match c {
        FirewallCommand::Reload => {
            let n = engine.firewall_reload()?;
            engine.record_event("firewall", "reload", ("inet berth", "berth"));
            println!("firewall reloaded: {n} elements");
            Ok(Outcome::Ok)
        }
    }
}
