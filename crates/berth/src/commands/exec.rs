//! `berth exec`: run a command in a container's namespaces (also after its process exited).

use crate::cli::ExecArgs;
use crate::{Failure, Outcome};
use berth_engine::{container, Engine};

pub(crate) fn run(engine: &mut Engine, a: ExecArgs) -> Result<Outcome, Failure> {
    let c = container::find(engine, &a.container)?;
    let mut cmd = container::exec_command(engine, &c, &a.command)?;
    match cmd.status() {
        Ok(status) => Ok(Outcome::Code(container::exit_code(status))),
        // As a shell: 127 when the command does not exist, 126 when it cannot run.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Failure::with_code(
            anyhow::anyhow!(
                "exec {:?} in container {}: command not found",
                a.command[0],
                c.name
            ),
            127,
        )),
        Err(e) => Err(Failure::with_code(
            anyhow::anyhow!("exec {:?} in container {}: {e}", a.command[0], c.name),
            126,
        )),
    }
}
