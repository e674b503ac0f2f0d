//! `berth stats`: per container and interface counters and rates, as a table redrawn in
//! place every second (ANSI: cursor home, clear), or printed once with `--no-stream`.

use super::events::closed;
use crate::cli::{Format, StatsArgs};
use crate::table;
use crate::{Failure, Outcome};
use berth_engine::observe::stats::{self, human_bytes, InterfaceStats};
use berth_engine::Engine;
use std::io::Write;
use std::time::{Duration, Instant};

/// Time between the two samples of `--no-stream` (its rates) and between redraws.
const FIRST_INTERVAL: Duration = Duration::from_millis(500);
const INTERVAL: Duration = Duration::from_secs(1);

pub(crate) fn run(engine: &mut Engine, a: StatsArgs) -> Result<Outcome, Failure> {
    let mut prev = stats::sample(engine, &a.containers)?;
    let mut at = Instant::now();
    let mut wait = FIRST_INTERVAL;
    loop {
        std::thread::sleep(wait);
        let mut cur = stats::sample(engine, &a.containers)?;
        let now = Instant::now();
        stats::with_rates(&prev, &mut cur, (now - at).as_secs_f64());
        let out = render(&cur, a.format)?;
        let mut stdout = std::io::stdout().lock();
        let written = match (a.no_stream, a.format) {
            (true, _) | (false, Format::Json) => write!(stdout, "{out}"),
            // Home, clear to the end of the screen, draw: the table stays in one place.
            (false, Format::Table) => write!(stdout, "\x1b[H\x1b[J{out}"),
        };
        if closed(written.and_then(|()| stdout.flush()))? {
            return Ok(Outcome::Ok);
        }
        if a.no_stream {
            return Ok(Outcome::Ok);
        }
        prev = cur;
        at = now;
        wait = INTERVAL;
    }
}

fn render(rows: &[InterfaceStats], format: Format) -> Result<String, Failure> {
    Ok(match format {
        Format::Json => serde_json::to_string(rows)? + "\n",
        Format::Table => {
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|r| {
                    vec![
                        r.id.clone(),
                        r.container.clone(),
                        r.interface.clone(),
                        r.network.clone(),
                        format!(
                            "{} / {}",
                            human_bytes(r.rx_bytes as f64),
                            human_bytes(r.tx_bytes as f64)
                        ),
                        format!("{} / {}", r.rx_packets, r.tx_packets),
                        format!("{} / {}", r.rx_errors, r.tx_errors),
                        format!("{} / {}", r.rx_dropped, r.tx_dropped),
                        format!(
                            "{}/s / {}/s",
                            human_bytes(r.rx_rate),
                            human_bytes(r.tx_rate)
                        ),
                    ]
                })
                .collect();
            table::render(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "IFACE",
                    "NETWORK",
                    "RX / TX BYTES",
                    "RX / TX PACKETS",
                    "ERRORS",
                    "DROPS",
                    "RX / TX RATE",
                ],
                &cells,
            )
        }
    })
}
