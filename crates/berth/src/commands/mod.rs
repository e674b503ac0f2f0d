//! One module per command; each takes its parsed arguments and an engine.

mod agent;
mod create;
mod diagnose;
mod events;
mod exec;
mod firewall;
mod gc;
mod inspect;
mod logs;
mod network;
mod port;
mod ps;
mod rm;
mod run;
mod shim;
mod stats;
mod stop;
mod topology;

use crate::cli::{Cli, Command};
use crate::{Failure, Outcome};
use berth_engine::{Engine, Paths};

/// Runs the parsed command.
pub(crate) fn dispatch(cli: Cli) -> Result<Outcome, Failure> {
    let mut paths = Paths::new(cli.root.clone(), cli.run_root.clone());
    paths.cluster = crate::config::cluster(&cli).map_err(|e| Failure::with_code(e, 2))?;
    // `run` reports berth's own failures with 125, so it opens the engine itself.
    let command = match cli.command {
        Command::Run(args) => return run::run(paths, args),
        Command::Create(args) => return create::create(paths, args),
        Command::Start { containers } => return create::start(paths, &containers),
        Command::Agent(a) => return agent::run(paths, a),
        c => c,
    };
    let mut engine = Engine::open(paths)?;
    let outcome = match command {
        Command::Network(c) => network::run(&mut engine, c),
        Command::Ps(a) => ps::run(&mut engine, a),
        Command::Inspect(a) => inspect::run(&mut engine, a),
        Command::Exec(a) => exec::run(&mut engine, a),
        Command::Logs { container } => logs::run(&mut engine, &container),
        Command::Stop(a) => stop::run(&mut engine, a),
        Command::Rm(a) => rm::run(&mut engine, a),
        Command::Gc => gc::run(&mut engine),
        Command::ContainerShim { id } => shim::run(&mut engine, &id),
        Command::Port {
            container,
            private_port,
        } => port::run(&mut engine, &container, private_port.as_deref()),
        Command::Firewall(c) => firewall::run(&mut engine, c),
        Command::Stats(a) => stats::run(&mut engine, a),
        Command::Diagnose(a) => diagnose::run(&mut engine, a),
        Command::Topology(a) => topology::run(&mut engine, a),
        Command::Events(a) => events::run(&mut engine, a),
        Command::Run(_)
        | Command::Create(_)
        | Command::Start { .. }
        | Command::Agent(_)
        | Command::Netavark { .. } => {
            unreachable!("handled above")
        }
    };
    engine.close_at_exit();
    outcome
}

/// Runs `f` for every name, printing successes; fails with every error once all were tried.
pub(crate) fn each(
    names: &[String],
    mut f: impl FnMut(&str) -> Result<Option<String>, berth_engine::Error>,
) -> Result<Outcome, Failure> {
    let mut errors = Vec::new();
    for n in names {
        match f(n) {
            Ok(Some(out)) => println!("{out}"),
            Ok(None) => {}
            Err(e) => errors.push(e.to_string()),
        }
    }
    match errors.is_empty() {
        true => Ok(Outcome::Ok),
        false => Err(anyhow::anyhow!(errors.join("; ")).into()),
    }
}
