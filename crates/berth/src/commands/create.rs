//! `berth create` and `berth start`: build a container's network now, start its command later.

use super::run::{detach, request, BERTH_FAILED};
use crate::cli::ContainerArgs;
use crate::{Failure, Outcome};
use berth_engine::container;
use berth_engine::{Engine, Paths};
use berth_store::ContainerState;

/// Creates the container (namespace, endpoints, published ports) and prints its id.
pub(crate) fn create(paths: Paths, a: ContainerArgs) -> Result<Outcome, Failure> {
    let fail = |e: anyhow::Error| Failure::with_code(e, BERTH_FAILED);
    let t = std::time::Instant::now();
    let mut engine = Engine::open(paths).map_err(|e| fail(e.into()))?;
    tracing::debug!(target: "berth::timing", verb = "create", phase = "engine-open", us = t.elapsed().as_micros() as u64);
    let c = container::create(&mut engine, &request(a)).map_err(|e| fail(e.into()))?;
    engine.close_at_exit();
    println!("{}", c.id);
    Ok(Outcome::Ok)
}

/// Starts created containers detached, printing each name; a running one is left alone.
pub(crate) fn start(paths: Paths, names: &[String]) -> Result<Outcome, Failure> {
    let mut engine = Engine::open(paths.clone())?;
    let mut errors = Vec::new();
    for n in names {
        let started = container::find(&mut engine, n).map_err(|e| e.to_string()).and_then(|c| {
            match c.state {
                ContainerState::Created => detach(&paths, &c.id)
                    .map(|()| c.name)
                    .map_err(|f| f.error.to_string()),
                _ if container::is_running(&c) => Ok(c.name),
                _ => Err(format!(
                    "container {} has exited: berth starts a container's command once; run a new one",
                    c.name
                )),
            }
        });
        match started {
            Ok(name) => println!("{name}"),
            Err(e) => errors.push(e),
        }
    }
    match errors.is_empty() {
        true => Ok(Outcome::Ok),
        false => Err(anyhow::anyhow!(errors.join("; ")).into()),
    }
}
