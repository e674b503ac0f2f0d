//! The door's `setup` and `teardown` run by the agent (`berth_engine::door`): [`hand`] is the
//! door's side, [`serve`] the agent's. The agent runs the same `execute` as the door, with
//! the door's input, `NETAVARK_DNS_PORT` and log filter; what the command logs at that
//! filter comes back for the door to write on its stderr.

use super::{error_json, execute, netns_operand, parse, parse_options};
use berth_engine::door::{self, Handed, Reply, Request};
use berth_engine::{Engine, Paths};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

/// The variable of the door's environment its commands read.
const DNS_PORT: &str = "NETAVARK_DNS_PORT";

/// Hands the command to a running agent: `None` when none took it (run it here), else what
/// the agent's run printed, or why its result is unknown.
pub(super) fn hand(
    paths: &Paths,
    args: &[String],
    text: &str,
    dns_port: Option<&str>,
    log: &str,
    netns: &str,
) -> Option<Result<Reply, String>> {
    // A relative path would be the agent's, from its own working directory.
    if !berth_engine::agent::enabled() || !std::path::Path::new(netns).is_absolute() {
        return None;
    }
    let req = Request {
        door: super::OWNER.into(),
        args: args.to_vec(),
        stdin: text.to_string(),
        env: dns_port
            .map(|p| BTreeMap::from([(DNS_PORT.to_string(), p.to_string())]))
            .unwrap_or_default(),
        log: log.to_string(),
        root: paths.root.clone(),
        cluster: door::cluster_of(paths),
        namespaces: door::namespaces().ok()?,
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

/// Runs a handed command on the agent's `engine`.
pub(crate) fn serve(engine: &mut Engine, req: &Request) -> Reply {
    let out = capture(&req.log, || {
        if req.door != super::OWNER {
            return Err(format!("the agent runs no {:?} door", req.door));
        }
        let a = parse(&req.args)?;
        if !matches!(a.verb.as_str(), "setup" | "teardown") {
            return Err(format!("the agent does not run {:?}", a.verb));
        }
        let netns = netns_operand(&a)?;
        let opts = parse_options(&req.stdin)?;
        let dns_port = req.env.get(DNS_PORT).map(String::as_str);
        let mut phases = berth_engine::timing::Phases::new("netavark");
        let out = execute(engine, &a.verb, netns, &opts, dns_port);
        phases.mark(&a.verb);
        out
    });
    let (result, stderr) = out;
    match result {
        Ok(out) => Reply {
            code: 0,
            stdout: out.map(|o| format!("{o}\n")).unwrap_or_default(),
            stderr,
            micros: 0,
        },
        Err(e) => Reply {
            code: 1,
            stdout: format!("{}\n", error_json(&e)),
            stderr,
            micros: 0,
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
fn capture<T>(filter: &str, f: impl FnOnce() -> T) -> (T, String) {
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
