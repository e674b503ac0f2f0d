//! `berth agent`: run the per-host agent in the foreground, or start it detached.

use crate::cli::AgentArgs;
use crate::{Failure, Outcome};
use berth_engine::{agent, Paths};

pub(crate) fn run(paths: Paths, a: AgentArgs) -> Result<Outcome, Failure> {
    let metrics = match a.metrics_addr.as_str() {
        "off" => None,
        addr => Some(addr.parse().map_err(|_| {
            anyhow::anyhow!("invalid --metrics-addr {addr:?}: expected IP:PORT or off")
        })?),
    };
    if a.foreground {
        berth_agent::run(
            paths,
            berth_agent::Options {
                dns_port: a.dns_port,
                metrics,
                door: Some(std::sync::Arc::new(crate::in_agent::serve)),
            },
        )?;
        return Ok(Outcome::Ok);
    }
    if agent::request(&paths, "ping").is_ok() {
        let pid = std::fs::read_to_string(paths.agent_pid()).unwrap_or_default();
        return Err(anyhow::anyhow!(
            "an agent is already running for {} (pid {})",
            paths.run_root.display(),
            pid.trim()
        )
        .into());
    }
    let args = [
        "--dns-port".to_string(),
        a.dns_port.to_string(),
        "--metrics-addr".to_string(),
        a.metrics_addr.clone(),
    ];
    agent::start(&paths, &args)?;
    println!("{}", std::fs::read_to_string(paths.agent_pid())?.trim());
    Ok(Outcome::Ok)
}
