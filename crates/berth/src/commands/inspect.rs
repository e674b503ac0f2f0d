//! `berth inspect`: containers as a JSON array.

use crate::cli::InspectArgs;
use crate::{Failure, Outcome};
use berth_engine::{container, network, view, Engine};

pub(crate) fn run(engine: &mut Engine, a: InspectArgs) -> Result<Outcome, Failure> {
    let mut out = Vec::new();
    let mut missing = Vec::new();
    for r in &a.containers {
        match container::find(engine, r) {
            Ok(c) => {
                let mut pairs = Vec::new();
                for ep in container::endpoints(engine, &c.id)? {
                    pairs.push((network::find(engine, &ep.network_id)?, ep));
                }
                let ports = container::published_ports(engine, &c.id)?;
                out.push(view::container(&c, &pairs, &ports));
            }
            Err(e) => missing.push(e.to_string()),
        }
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    match missing.is_empty() {
        true => Ok(Outcome::Ok),
        false => Err(anyhow::anyhow!(missing.join("; ")).into()),
    }
}
