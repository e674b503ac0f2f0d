//! The CNI door's engine verbs run by the agent (`crate::in_agent`): the door hands its
//! `CNI_*` variables, the configuration and its log filter; the agent runs the same
//! `on_engine` as the door and answers with the same result or error JSON.

use super::{config, on_engine, CniError, Env, ENGINE_VERBS, OWNER, VARS};
use berth_engine::door::{Reply, Request};
use berth_engine::{Engine, Paths};

/// [`crate::in_agent::hand`] for a CNI verb; `None` for the verbs the door runs itself.
pub(super) fn hand(
    paths: &Paths,
    env: &Env,
    stdin: &str,
    log: &str,
) -> Option<Result<Reply, String>> {
    if !ENGINE_VERBS.contains(&env.command.as_str()) {
        return None;
    }
    let vars = VARS
        .iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
    crate::in_agent::hand(paths, OWNER, &[], stdin, vars, log, &env.netns)
}

/// Runs a handed CNI verb on the agent's `engine`.
pub(crate) fn serve(engine: &mut Engine, req: &Request) -> Reply {
    let (result, stderr) = crate::in_agent::capture(&req.log, || -> Result<_, CniError> {
        let env = Env::from_vars(|k| req.env.get(k).cloned().unwrap_or_default())?;
        if !ENGINE_VERBS.contains(&env.command.as_str()) {
            return Err(CniError::env(format!(
                "the agent does not run CNI_COMMAND {:?}",
                env.command
            )));
        }
        let conf = config::parse(&req.stdin)?;
        on_engine(engine, &env, &conf)
    });
    crate::in_agent::reply(
        result.map_err(|e| e.to_json(&config::requested_version(&req.stdin))),
        stderr,
    )
}
