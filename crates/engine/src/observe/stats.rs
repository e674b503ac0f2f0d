//! Per-container, per-interface traffic counters, read over netlink inside each container's
//! namespace (`IFLA_STATS64`), and rates between two samples.
//!
//! Counters are the container's view: `rx` is what the container received.

use super::NsView;
use crate::container::{self, live_state};
use crate::{Engine, Error, Result};
use berth_kernel::netlink::LinkStats;
use berth_store::ContainerState;
use serde::Serialize;

/// One interface of one container at one moment.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct InterfaceStats {
    pub container: String,
    #[serde(rename = "ID")]
    pub id: String,
    pub interface: String,
    /// The network the interface belongs to (empty when berth did not make it).
    pub network: String,
    pub rx_bytes: u64,
    pub tx_bytes: u64,
    pub rx_packets: u64,
    pub tx_packets: u64,
    pub rx_errors: u64,
    pub tx_errors: u64,
    pub rx_dropped: u64,
    pub tx_dropped: u64,
    /// Bytes per second since the previous sample.
    pub rx_rate: f64,
    pub tx_rate: f64,
}

impl InterfaceStats {
    fn counters(&self) -> LinkStats {
        LinkStats {
            rx_bytes: self.rx_bytes,
            tx_bytes: self.tx_bytes,
            ..LinkStats::default()
        }
    }
}

/// Reads the counters of `containers` (names, ids or prefixes); all running containers when
/// the list is empty. A host-mode container has no interfaces of its own and shows none.
pub fn sample(engine: &mut Engine, containers: &[String]) -> Result<Vec<InterfaceStats>> {
    let all = container::list(engine)?;
    let nets = crate::network::list(engine)?;
    let chosen: Vec<_> = match containers.is_empty() {
        true => all
            .into_iter()
            .filter(|(c, _)| live_state(c) == ContainerState::Running)
            .collect(),
        false => {
            let mut out = Vec::new();
            for r in containers {
                let c = container::find(engine, r)?;
                let eps = container::endpoints(engine, &c.id)?;
                out.push((c, eps));
            }
            out
        }
    };
    let mut rows = Vec::new();
    for (c, eps) in chosen {
        let Some(view) = NsView::container(&c)? else {
            if c.netns.is_some() {
                return Err(Error::Conflict(format!(
                    "container {}'s network namespace is gone: run berth gc",
                    c.name
                )));
            }
            continue;
        };
        for link in view.links.iter().filter(|l| l.name != "lo") {
            let st = link.stats.unwrap_or_default();
            let network = eps
                .iter()
                .find(|e| e.ifname == link.name)
                .and_then(|e| nets.iter().find(|n| n.id == e.network_id))
                .map(|n| n.name.clone())
                .unwrap_or_default();
            rows.push(InterfaceStats {
                container: c.name.clone(),
                id: c.id[..12].to_string(),
                interface: link.name.clone(),
                network,
                rx_bytes: st.rx_bytes,
                tx_bytes: st.tx_bytes,
                rx_packets: st.rx_packets,
                tx_packets: st.tx_packets,
                rx_errors: st.rx_errors,
                tx_errors: st.tx_errors,
                rx_dropped: st.rx_dropped,
                tx_dropped: st.tx_dropped,
                rx_rate: 0.0,
                tx_rate: 0.0,
            });
        }
    }
    rows.sort_by(|a, b| (&a.container, &a.interface).cmp(&(&b.container, &b.interface)));
    Ok(rows)
}

/// Fills in the rates of `current` from `previous`, taken `secs` seconds earlier. An
/// interface new since then (or whose counters went back: a recreated link) gets rate 0.
pub fn with_rates(previous: &[InterfaceStats], current: &mut [InterfaceStats], secs: f64) {
    for row in current.iter_mut() {
        let before = previous
            .iter()
            .find(|p| p.id == row.id && p.interface == row.interface)
            .map(InterfaceStats::counters);
        let now = row.counters();
        let rate = |a: u64, b: Option<u64>| match b {
            Some(b) if a >= b && secs > 0.0 => (a - b) as f64 / secs,
            _ => 0.0,
        };
        row.rx_rate = rate(now.rx_bytes, before.map(|b| b.rx_bytes));
        row.tx_rate = rate(now.tx_bytes, before.map(|b| b.tx_bytes));
    }
}

/// Bytes in a short human form: `512B`, `1.5kB`, `12.0MB` (powers of 1000, as docker).
pub fn human_bytes(n: f64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    match i {
        0 => format!("{}{}", v as u64, UNITS[0]),
        _ => format!("{v:.1}{}", UNITS[i]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, rx: u64, tx: u64) -> InterfaceStats {
        InterfaceStats {
            container: "c".into(),
            id: id.into(),
            interface: "eth0".into(),
            network: "n".into(),
            rx_bytes: rx,
            tx_bytes: tx,
            rx_packets: 0,
            tx_packets: 0,
            rx_errors: 0,
            tx_errors: 0,
            rx_dropped: 0,
            tx_dropped: 0,
            rx_rate: 0.0,
            tx_rate: 0.0,
        }
    }

    #[test]
    fn rates_are_deltas_per_second() {
        let before = [row("a", 1000, 0)];
        let mut now = [row("a", 3000, 500), row("b", 10, 10)];
        with_rates(&before, &mut now, 2.0);
        assert_eq!(now[0].rx_rate, 1000.0);
        assert_eq!(now[0].tx_rate, 250.0);
        assert_eq!(now[1].rx_rate, 0.0);
        let mut reset = [row("a", 10, 0)];
        with_rates(&before, &mut reset, 1.0);
        assert_eq!(reset[0].rx_rate, 0.0);
    }

    #[test]
    fn bytes_read_like_docker() {
        assert_eq!(human_bytes(512.0), "512B");
        assert_eq!(human_bytes(1500.0), "1.5kB");
        assert_eq!(human_bytes(12_000_000.0), "12.0MB");
    }
}
