//! Firewall self-repair: nf_tables notifications (not a poll) tell the agent that one of
//! berth's tables (`inet berth`, `netdev berth`: the fast path) or one of their chains, rules
//! or sets went; it rebuilds them from the store. (A fast-path device leaving the netdev
//! chain is notified as a chain deletion too: the check finds the tables complete.)

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

/// Starts one watching thread per table.
pub(crate) fn spawn(paths: Paths, metrics: AgentMetrics) -> std::io::Result<()> {
    for family in [Family::Inet, Family::Netdev] {
        watch(family, paths.clone(), metrics.clone())?;
    }
    Ok(())
}

fn watch(family: Family, paths: Paths, metrics: AgentMetrics) -> std::io::Result<()> {
    let mut monitor = Monitor::open(family, "berth").map_err(std::io::Error::other)?;
    std::thread::Builder::new()
        .name(format!("firewall-repair-{}", family.name()))
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
    // One table's watcher at a time: after `nft flush ruleset` both see deletions, and the
    // second finds the tables the first rebuilt complete.
    static ONE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE.lock().unwrap_or_else(|e| e.into_inner());
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
