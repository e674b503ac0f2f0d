//! Door commands run by the agent (`berth_engine::door`), the part both doors share:
//! [`hand`] is a door's side, [`serve`] the agent's (the handler `berth agent` gives
//! `berth_agent::run`). Each door's own part (`netavark::in_agent`, `cni::in_agent`) runs
//! the same code its process would, with the door's input, environment and log filter;
//! what the command logs at that filter comes back for the door to write on its stderr.

use berth_engine::door::{self, Handed, Reply, Request};
use berth_engine::{Engine, Paths};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// Hands a command of `door` to a running agent: `None` when none took it (run it here),
/// else what the agent's run printed, or (`Err`) why its result is unknown. `netns`, when
/// the command names one, must be absolute: a relative path would be the agent's, from its
/// own working directory.
pub(crate) fn hand(
    paths: &Paths,
    door: &str,
    args: &[String],
    stdin: &str,
    env: BTreeMap<String, String>,
    log: &str,
    netns: &str,
) -> Option<Result<Reply, String>> {
    if !berth_engine::agent::enabled()
        || !(netns.is_empty() || std::path::Path::new(netns).is_absolute())
    {
        return None;
    }
    let req = Request {
        door: door.into(),
        args: args.to_vec(),
        stdin: stdin.to_string(),
        env,
        log: log.to_string(),
        root: paths.root.clone(),
        cluster: door::cluster_of(paths),
        namespaces: door::namespaces().ok()?,
        build: door::build().ok()?,
    };
    match door::hand(paths, &req) {
        Handed::Ran(reply) => {
            tracing::debug!("ran by the agent");
            Some(Ok(reply))
        }
        Handed::NotTaken(why) => {
            tracing::debug!("the agent did not take the command ({why}): running it here");
            None
        }
        Handed::Lost(why) => Some(Err(format!("{why}; see {}", paths.agent_log().display()))),
    }
}

/// A handed command's reply: its output line on success (exit 0), else its door's error
/// JSON line (exit 1), with what it logged.
pub(crate) fn reply(result: Result<Option<String>, String>, stderr: String) -> Reply {
    let (code, stdout) = match result {
        Ok(out) => (0, out.map(|o| format!("{o}\n")).unwrap_or_default()),
        Err(error) => (1, format!("{error}\n")),
    };
    Reply {
        code,
        stdout,
        stderr,
        micros: 0,
    }
}

/// Runs a handed command on the agent's `engine`, by its door.
pub(crate) fn serve(engine: &mut Engine, req: &Request) -> Reply {
    match req.door.as_str() {
        crate::netavark::OWNER => crate::netavark::serve(engine, req),
        crate::cni::OWNER => crate::cni::serve(engine, req),
        d => Reply {
            code: 1,
            stdout: format!(
                "{}\n",
                serde_json::json!({ "error": format!("the agent runs no {d:?} door") })
            ),
            ..Reply::default()
        },
    }
}

thread_local! {
    /// What the command running on this thread has logged.
    static LOGGED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// One log dispatcher per filter: making one costs a rebuild of every callsite's
    /// interest, so it is kept for the next command with the same filter.
    static DISPATCH: RefCell<HashMap<String, tracing::Dispatch>> = RefCell::new(HashMap::new());
}

/// Writes into [`LOGGED`].
struct Logged;

impl std::io::Write for Logged {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOGGED.with(|l| l.borrow_mut().extend_from_slice(buf));
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Runs `f` with what it logs at `filter` (the door's) collected, and returns both.
pub(crate) fn capture<T>(filter: &str, f: impl FnOnce() -> T) -> (T, String) {
    let dispatch = DISPATCH.with(|d| {
        d.borrow_mut()
            .entry(filter.to_string())
            .or_insert_with(|| {
                let filter = tracing_subscriber::EnvFilter::try_new(filter)
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
                tracing::Dispatch::new(
                    tracing_subscriber::fmt()
                        .with_env_filter(filter)
                        .with_ansi(false)
                        .with_writer(|| Logged)
                        .finish(),
                )
            })
            .clone()
    });
    LOGGED.with(|l| l.borrow_mut().clear());
    let out = tracing::dispatcher::with_default(&dispatch, f);
    let logged = LOGGED
        .with(|l| String::from_utf8_lossy(&std::mem::take(&mut *l.borrow_mut())).into_owned());
    (out, logged)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_command_logs_at_its_filter_is_collected() {
        let ((), logged) = capture("warn", || {
            tracing::warn!("shown");
            tracing::info!("hidden");
        });
        assert!(logged.contains("shown"), "{logged}");
        assert!(!logged.contains("hidden"), "{logged}");
        let ((), logged) = capture("info", || tracing::info!("now shown"));
        assert!(logged.contains("now shown"), "{logged}");
        assert!(
            !logged.contains("WARN"),
            "the first command's log came back: {logged}"
        );
    }
}
