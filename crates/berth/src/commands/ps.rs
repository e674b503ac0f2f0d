//! `berth ps`: containers with their state, networks and addresses.

use crate::cli::{Format, PsArgs};
use crate::table;
use crate::{Failure, Outcome};
use berth_engine::container::{self, live_state};
use berth_engine::{network, view, Engine};
use berth_store::ContainerState;

pub(crate) fn run(engine: &mut Engine, a: PsArgs) -> Result<Outcome, Failure> {
    let nets = network::list(engine)?;
    let net_name = |id: &str| {
        nets.iter()
            .find(|n| n.id == id)
            .map_or_else(|| id[..12].to_string(), |n| n.name.clone())
    };
    let shown: Vec<_> = container::list(engine)?
        .into_iter()
        .filter(|(c, _)| a.all || live_state(c) == ContainerState::Running)
        .collect();
    let mut ports = std::collections::BTreeMap::new();
    for (c, _) in &shown {
        ports.insert(c.id.clone(), container::published_ports(engine, &c.id)?);
    }
    if a.quiet {
        for (c, _) in &shown {
            println!("{}", c.id);
        }
        return Ok(Outcome::Ok);
    }
    match a.format {
        Format::Json => {
            let v: Vec<_> = shown
                .iter()
                .map(|(c, eps)| {
                    let pairs: Vec<_> = eps
                        .iter()
                        .filter_map(|e| {
                            nets.iter()
                                .find(|n| n.id == e.network_id)
                                .map(|n| (n.clone(), e.clone()))
                        })
                        .collect();
                    view::container(c, &pairs, &ports[&c.id])
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&v)?);
        }
        Format::Table => {
            let rows: Vec<Vec<String>> = shown
                .iter()
                .map(|(c, eps)| {
                    let state = match (live_state(c), c.exit_code) {
                        (ContainerState::Exited, Some(code)) if code >= 0 => {
                            format!("exited ({code})")
                        }
                        (s, _) => s.as_str().to_string(),
                    };
                    let networks = match eps.is_empty() {
                        true => c.mode.as_str().to_string(),
                        false => eps
                            .iter()
                            .map(|e| net_name(&e.network_id))
                            .collect::<Vec<_>>()
                            .join(","),
                    };
                    vec![
                        c.id[..12].to_string(),
                        c.name.clone(),
                        state,
                        networks,
                        view::addresses(eps)
                            .iter()
                            .map(|a| a.to_string())
                            .collect::<Vec<_>>()
                            .join(","),
                        view::ports_summary(&ports[&c.id]),
                        c.command.join(" "),
                    ]
                })
                .collect();
            print!(
                "{}",
                table::render(
                    &[
                        "CONTAINER ID",
                        "NAME",
                        "STATE",
                        "NETWORKS",
                        "ADDRESSES",
                        "PORTS",
                        "COMMAND"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(Outcome::Ok)
}
