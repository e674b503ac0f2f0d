//! Firewall self-repair: nf_tables notifications (not a poll) tell the agent that berth's
//! table or one of its chains, rules or sets went; it rebuilds the table from the store.

use crate::metrics::AgentMetrics;
use berth_engine::{container, Engine, Paths};
use berth_kernel::nftables::{Change, Family, Monitor};
use std::time::Duration;

/// How long the table must be quiet after a rebuild before events count again (the
/// rebuild's own deletions arrive as notifications too).
const SETTLE: Duration = Duration::from_millis(100);

fn needs_repair(c: &Change) -> bool {
    matches!(
        c,
        Change::TableDeleted
            | Change::ChainDeleted(_)
            | Change::RuleDeleted { .. }
            | Change::SetDeleted(_)
            | Change::Lost
    )
}

/// Starts the watching thread.
pub(crate) fn spawn(paths: Paths, metrics: AgentMetrics) -> std::io::Result<()> {
    let mut monitor = Monitor::open(Family::Inet, "berth").map_err(std::io::Error::other)?;
    std::thread::Builder::new()
        .name("firewall-repair".into())
        .spawn(move || loop {
            match monitor.next(None) {
                Ok(Some(c)) if needs_repair(&c) => {
                    // Let a burst (a whole `nft flush ruleset`) arrive first.
                    drain(&mut monitor, Duration::from_millis(20));
                    match repair(&paths) {
                        Ok(true) => {
                            metrics.firewall_repairs.inc();
                            tracing::info!("berth's nftables table was changed ({c:?}): restored");
                        }
                        Ok(false) => {}
                        Err(e) => tracing::error!("restore berth's nftables table: {e}"),
                    }
                    drain(&mut monitor, SETTLE);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!("nftables monitor: {e}");
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        })?;
    Ok(())
}

/// Discards notifications until none came for `quiet`.
fn drain(monitor: &mut Monitor, quiet: Duration) {
    while let Ok(Some(_)) = monitor.next(Some(quiet)) {}
}

/// Rebuilds the table when berth has anything on this host and the table lost its marker or
/// a rule; returns whether it did. A rebuild berth itself just did (gc, `firewall reload`)
/// also shows up as deletions, and finds the table complete.
fn repair(paths: &Paths) -> berth_engine::Result<bool> {
    let mut engine = Engine::open(paths.clone())?;
    if engine.firewall_complete()? {
        return Ok(false);
    }
    let active = container::list(&mut engine)?
        .iter()
        .any(|(_, eps)| !eps.is_empty());
    if !active {
        return Ok(false);
    }
    engine.firewall_reload()?;
    engine.record_event("firewall", "repair", ("inet berth", "berth"));
    Ok(true)
}
