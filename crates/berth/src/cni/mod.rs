//! The CNI door (spec 1.1.0, also 0.4.0 and 1.0.0): taken when `CNI_COMMAND` is set.
//!
//! The runtime gives the verb and the attachment in the environment (`CNI_COMMAND`,
//! `CNI_CONTAINERID`, `CNI_NETNS`, `CNI_IFNAME`, `CNI_ARGS`) and the network configuration
//! on stdin; berth answers with a result (ADD), a version list (VERSION) or nothing, and on
//! failure with the spec's error JSON on stdout and exit 1. Nothing else is ever printed on
//! stdout. The configuration's `name` is a berth network (defined from the configuration's
//! berth options when it does not exist); attachments are external containers of the engine
//! (owner `cni`), so `berth ps` and `berth network inspect` show them.
//!
//! One module per verb: `add`, `del`, `check`, `gc`, `status`; `config` parses stdin
//! (`ipam` its `ipam` section), `result` builds and merges results, `error` holds the codes.
//! With the agent running, ADD, DEL, CHECK and GC are handed to it whole (`in_agent`,
//! `crate::in_agent`) and run on its warm store connection; otherwise here.

mod add;
mod check;
mod config;
mod del;
mod error;
mod gc;
mod in_agent;
mod ipam;
mod result;
mod status;

use berth_engine::{Engine, Paths};
pub(crate) use error::CniError;
pub(crate) use in_agent::serve;
use std::io::Read;
use std::process::ExitCode;

/// The versions this plugin speaks.
pub(crate) const SUPPORTED: &[&str] = &["0.4.0", "1.0.0", "1.1.0"];
/// The owner recorded on containers attached through this door.
pub(crate) const OWNER: &str = "cni";

/// The attachment the environment names.
#[derive(Debug, Default)]
pub(crate) struct Env {
    pub(crate) command: String,
    pub(crate) container_id: String,
    pub(crate) netns: String,
    pub(crate) ifname: String,
    pub(crate) args: Vec<(String, String)>,
}

/// The variables of the runtime's environment the door reads.
pub(crate) const VARS: &[&str] = &[
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
];

impl Env {
    fn read() -> Result<Env, CniError> {
        Env::from_vars(|k| std::env::var(k).unwrap_or_default())
    }

    /// The attachment `var` (one of [`VARS`], empty when unset) names.
    pub(crate) fn from_vars(var: impl Fn(&str) -> String) -> Result<Env, CniError> {
        let args = var("CNI_ARGS")
            .split(';')
            .filter(|s| !s.is_empty())
            .map(|kv| match kv.split_once('=') {
                Some((k, v)) => Ok((k.to_string(), v.to_string())),
                None => Err(CniError::env(format!(
                    "CNI_ARGS entry {kv:?} is not KEY=VALUE"
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Env {
            command: var("CNI_COMMAND"),
            container_id: var("CNI_CONTAINERID"),
            netns: var("CNI_NETNS"),
            ifname: var("CNI_IFNAME"),
            args,
        })
    }

    /// A variable the verb cannot do without.
    pub(crate) fn require<'a>(&self, name: &str, value: &'a str) -> Result<&'a str, CniError> {
        match value.is_empty() {
            true => Err(CniError::env(format!("{name} is not set"))),
            false => Ok(value),
        }
    }

    pub(crate) fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Runs the door; `paths` are berth's directories (from `BERTH_ROOT`/`BERTH_RUN_ROOT`),
/// `log` its log filter.
pub(crate) fn main(paths: Paths, log: &str) -> ExitCode {
    let mut stdin = String::new();
    let outcome = match std::io::stdin().read_to_string(&mut stdin) {
        Ok(_) => Env::read().and_then(|env| match in_agent::hand(&paths, &env, &stdin, log) {
            Some(Ok(reply)) => Ok(Done::Agent(reply)),
            Some(Err(lost)) => Err(CniError::msg(error::code::TRY_AGAIN, lost)),
            None => dispatch(paths, &env, &stdin).map(Done::Out),
        }),
        Err(e) => Err(CniError::new(
            5,
            "cannot read the configuration on stdin",
            e,
        )),
    };
    match outcome {
        Ok(Done::Out(Some(out))) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(Done::Out(None)) => ExitCode::SUCCESS,
        Ok(Done::Agent(r)) => {
            eprint!("{}", r.stderr);
            print!("{}", r.stdout);
            ExitCode::from(r.code)
        }
        Err(e) => {
            let version = config::requested_version(&stdin);
            println!("{}", e.to_json(&version));
            ExitCode::FAILURE
        }
    }
}

/// How a verb ended: with its own result, or with what the agent's run of it printed.
enum Done {
    Out(Option<String>),
    Agent(berth_engine::door::Reply),
}

fn dispatch(paths: Paths, env: &Env, stdin: &str) -> Result<Option<String>, CniError> {
    if env.command == "VERSION" {
        // VERSION needs no valid configuration, only a version to answer in.
        let version = config::requested_version(stdin);
        return Ok(Some(
            serde_json::json!({
                "cniVersion": version,
                "supportedVersions": SUPPORTED,
            })
            .to_string(),
        ));
    }
    let conf = config::parse(stdin)?;
    match env.command.as_str() {
        "STATUS" => status::run(paths, &conf).map(|()| None),
        verb if ENGINE_VERBS.contains(&verb) => {
            let mut phases = berth_engine::timing::Phases::new("cni");
            let mut engine = Engine::open(paths).map_err(CniError::from)?;
            phases.mark("open");
            let out = on_engine(&mut engine, env, &conf);
            phases.mark(verb);
            engine.close_at_exit();
            out
        }
        "" => Err(CniError::env("CNI_COMMAND is empty".to_string())),
        other => Err(CniError::env(format!(
            "unknown CNI_COMMAND {other:?}: use ADD, DEL, CHECK, STATUS, GC or VERSION"
        ))),
    }
}

/// The verbs that work on the engine (and that the agent may run).
pub(crate) const ENGINE_VERBS: &[&str] = &["ADD", "DEL", "CHECK", "GC"];

/// One of [`ENGINE_VERBS`] on `engine`, in the door's process or in the agent's.
fn on_engine(
    engine: &mut Engine,
    env: &Env,
    conf: &config::Config,
) -> Result<Option<String>, CniError> {
    match env.command.as_str() {
        "ADD" => add::run(engine, env, conf).map(Some),
        "DEL" => del::run(engine, env, conf).map(|()| None),
        "CHECK" => check::run(engine, env, conf).map(|()| None),
        "GC" => gc::run(engine, conf).map(|()| None),
        other => Err(CniError::env(format!(
            "{other:?} does not run on the engine"
        ))),
    }
}

/// Whether `version` is at least `min` (both `MAJOR.MINOR.PATCH`).
pub(crate) fn at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(version) >= parse(min)
}
