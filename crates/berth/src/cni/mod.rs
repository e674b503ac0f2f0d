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

mod add;
mod check;
mod config;
mod del;
mod error;
mod gc;
mod ipam;
mod result;
mod status;

use berth_engine::{Engine, Paths};
pub(crate) use error::CniError;
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

impl Env {
    fn read() -> Result<Env, CniError> {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
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

/// Runs the door; `paths` are berth's directories (from `BERTH_ROOT`/`BERTH_RUN_ROOT`).
pub(crate) fn main(paths: Paths) -> ExitCode {
    let mut stdin = String::new();
    let outcome = match std::io::stdin().read_to_string(&mut stdin) {
        Ok(_) => Env::read().and_then(|env| dispatch(paths, &env, &stdin)),
        Err(e) => Err(CniError::new(
            5,
            "cannot read the configuration on stdin",
            e,
        )),
    };
    match outcome {
        Ok(Some(out)) => {
            println!("{out}");
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            let version = config::requested_version(&stdin);
            println!("{}", e.to_json(&version));
            ExitCode::FAILURE
        }
    }
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
    let engine_verb = |verb: &dyn Fn(&mut Engine) -> Result<Option<String>, CniError>| {
        let mut engine = Engine::open(paths.clone()).map_err(CniError::from)?;
        let out = verb(&mut engine);
        engine.close_at_exit();
        out
    };
    match env.command.as_str() {
        "ADD" => engine_verb(&|e| add::run(e, env, &conf).map(Some)),
        "DEL" => engine_verb(&|e| del::run(e, env, &conf).map(|()| None)),
        "CHECK" => engine_verb(&|e| check::run(e, env, &conf).map(|()| None)),
        "STATUS" => status::run(paths, &conf).map(|()| None),
        "GC" => engine_verb(&|e| gc::run(e, &conf).map(|()| None)),
        "" => Err(CniError::env("CNI_COMMAND is empty".to_string())),
        other => Err(CniError::env(format!(
            "unknown CNI_COMMAND {other:?}: use ADD, DEL, CHECK, STATUS, GC or VERSION"
        ))),
    }
}

/// Whether `version` is at least `min` (both `MAJOR.MINOR.PATCH`).
pub(crate) fn at_least(version: &str, min: &str) -> bool {
    let parse = |v: &str| -> Vec<u32> { v.split('.').map(|p| p.parse().unwrap_or(0)).collect() };
    parse(version) >= parse(min)
}
