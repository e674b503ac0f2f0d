//! `berth network create|ls|inspect|rm|connect|disconnect|prune`.

use super::each;
use crate::cli::{Format, NetworkCommand};
use crate::table;
use crate::{Failure, Outcome};
use berth_engine::network::{self, CreateRequest};
use berth_engine::{container, view, Engine};

pub(crate) fn run(engine: &mut Engine, cmd: NetworkCommand) -> Result<Outcome, Failure> {
    match cmd {
        NetworkCommand::Create(a) => {
            let net = network::create(
                engine,
                &CreateRequest {
                    name: a.name,
                    driver: a.driver,
                    subnets: a.subnet,
                    gateways: a.gateway,
                    ip_range: a.ip_range,
                    internal: a.internal,
                    ipv6: a.ipv6,
                    mtu: a.mtu,
                    options: a.opt,
                    labels: a.label,
                },
            )?;
            println!("{}", net.id);
        }
        NetworkCommand::Ls(f) => {
            let nets = network::list_global(engine)?;
            match f.format {
                Format::Json => {
                    let all = inspect_all(engine, nets.iter().map(|n| n.id.clone()).collect())?;
                    println!("{}", serde_json::to_string_pretty(&all)?);
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = nets
                        .iter()
                        .map(|n| {
                            vec![
                                n.id[..12].to_string(),
                                n.name.clone(),
                                n.driver.clone(),
                                n.subnets
                                    .iter()
                                    .map(|s| s.subnet.to_string())
                                    .collect::<Vec<_>>()
                                    .join(","),
                                n.bridge.clone().unwrap_or_default(),
                                n.internal.to_string(),
                            ]
                        })
                        .collect();
                    print!(
                        "{}",
                        table::render(
                            &[
                                "NETWORK ID",
                                "NAME",
                                "DRIVER",
                                "SUBNET",
                                "BRIDGE",
                                "INTERNAL"
                            ],
                            &rows
                        )
                    );
                }
            }
        }
        NetworkCommand::Inspect(a) => {
            network::sync_global(engine)?;
            let mut found = Vec::new();
            let mut missing = Vec::new();
            for r in &a.networks {
                match network::find(engine, r) {
                    Ok(n) => found.push(n.id),
                    Err(e) => missing.push(e.to_string()),
                }
            }
            let all = inspect_all(engine, found)?;
            println!("{}", serde_json::to_string_pretty(&all)?);
            if !missing.is_empty() {
                return Err(anyhow::anyhow!(missing.join("; ")).into());
            }
        }
        NetworkCommand::Rm { networks } => {
            return each(&networks, |n| network::remove(engine, n).map(Some));
        }
        NetworkCommand::Connect(a) => {
            container::connect(engine, &a.network, &a.container, a.ip.as_deref(), &a.alias)?;
        }
        NetworkCommand::Disconnect { network, container } => {
            container::disconnect(engine, &network, &container)?;
        }
        NetworkCommand::Prune => {
            for name in network::prune(engine)? {
                println!("{name}");
            }
        }
    }
    Ok(Outcome::Ok)
}

/// The inspect JSON of the given networks, with their containers.
fn inspect_all(engine: &mut Engine, ids: Vec<String>) -> Result<serde_json::Value, Failure> {
    let containers = container::list(engine)?;
    let mut out = Vec::new();
    for id in ids {
        let net = network::find(engine, &id)?;
        let members: Vec<_> = containers
            .iter()
            .flat_map(|(c, eps)| {
                eps.iter()
                    .filter(|e| e.network_id == net.id)
                    .map(|e| (c.clone(), e.clone()))
            })
            .collect();
        out.push(view::network(&net, &members));
    }
    Ok(serde_json::Value::Array(out))
}
