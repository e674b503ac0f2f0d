//! The netavark door: podman 4.x runs `netavark [--config DIR] [--rootless BOOL]
//! [--aardvark-binary PATH] setup|teardown NETNS_PATH` with `NetworkOptions` JSON on stdin,
//! `netavark version`, and (podman 4.5+) `netavark update NETWORK --network-dns-servers IPS`. berth answers exactly as netavark does: a map of network name to
//! `StatusBlock` on stdout for setup, nothing for teardown, and on any failure
//! `{"error": "..."}` on stdout with exit 1 — never anything else on stdout.
//!
//! podman's network definitions arrive with every call and are mapped onto berth networks
//! (`network::ensure`, labelled `berth.door=netavark`); podman's containers become external
//! containers (owner `netavark`) in podman's own namespace. DNS is berth's agent on the
//! gateways (port `NETAVARK_DNS_PORT`, else 53; a running agent is moved to that port); the
//! `aardvark-dns` podman looks for is the same binary, which has nothing to do when run.
//!
//! With the agent running, `setup` and `teardown` are handed to it whole (`in_agent`,
//! `berth_engine::door`): it runs this same code on a warm store connection, and the door
//! prints what it printed. Otherwise, or when the agent will not take them, the door runs
//! them itself.

mod in_agent;
pub(crate) use in_agent::serve;
mod setup;
mod teardown;
mod types;
mod update;

use berth_engine::{Engine, Paths};
use std::io::Read;
use std::process::ExitCode;

/// The netavark release whose interface berth speaks.
pub(crate) const NETAVARK_VERSION: &str = "1.4.0";
/// The owner recorded on podman's containers.
pub(crate) const OWNER: &str = "netavark";

/// The parsed command line.
#[derive(Debug, Default, PartialEq)]
struct Args {
    file: Option<String>,
    verb: String,
    operands: Vec<String>,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let (key, inline) = match a.split_once('=') {
            Some((k, v)) if k.starts_with('-') => (k, Some(v.to_string())),
            _ => (a.as_str(), None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match key {
            "-c" | "--config" => drop(value("--config")?),
            "-a" | "--aardvark-binary" => drop(value("--aardvark-binary")?),
            "-r" | "--rootless" => {
                let v = value("--rootless")?;
                match v.as_str() {
                    "false" => {}
                    "true" => {
                        return Err(
                            "rootless mode is not supported by berth: run podman as root".into(),
                        )
                    }
                    v => return Err(format!("invalid --rootless value {v:?}: use true or false")),
                }
            }
            "-f" | "--file" => out.file = Some(value("--file")?),
            k if k.starts_with('-') && out.verb.is_empty() => {
                return Err(format!("unknown option {k}"))
            }
            _ if out.verb.is_empty() => out.verb = a.clone(),
            // The verb's own options (update's --network-dns-servers) are its operands.
            _ => {
                out.operands.push(key.to_string());
                if let Some(v) = inline {
                    out.operands.push(v);
                }
            }
        }
    }
    Ok(out)
}

/// How a door command ended: with its own result, or with what the agent's run of it
/// printed.
enum Done {
    Out(Option<String>),
    Agent(berth_engine::door::Reply),
}

/// Runs the door with the arguments after the program name; `log` is its log filter.
pub(crate) fn main(paths: Paths, args: &[String], log: &str) -> ExitCode {
    match run(paths, args, log) {
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
            println!("{}", error_json(&e));
            ExitCode::FAILURE
        }
    }
}

fn error_json(e: &str) -> serde_json::Value {
    serde_json::json!({ "error": e })
}

fn run(paths: Paths, args: &[String], log: &str) -> Result<Done, String> {
    let a = parse(args)?;
    match a.verb.as_str() {
        "version" => Ok(Done::Out(Some(
            serde_json::json!({
                "version": NETAVARK_VERSION,
                "commit": format!("berth {}", env!("CARGO_PKG_VERSION")),
                "build_time": "",
                "target": std::env::consts::ARCH,
            })
            .to_string(),
        ))),
        "setup" | "teardown" => {
            let netns = netns_operand(&a)?;
            let mut phases = berth_engine::timing::Phases::new("netavark");
            let text = read_input(a.file.as_deref())?;
            let dns_port = std::env::var("NETAVARK_DNS_PORT").ok();
            phases.mark("options");
            if let Some(done) = in_agent::hand(&paths, args, &text, dns_port.as_deref(), log, netns)
            {
                phases.mark("agent");
                return done.map(Done::Agent);
            }
            let opts = parse_options(&text)?;
            let mut engine = Engine::open(paths).map_err(|e| e.to_string())?;
            phases.mark("open");
            let out = execute(&mut engine, &a.verb, netns, &opts, dns_port.as_deref());
            phases.mark(&a.verb);
            engine.close_at_exit();
            phases.mark("close");
            out.map(Done::Out)
        }
        "update" => {
            let mut engine = Engine::open(paths).map_err(|e| e.to_string())?;
            update::run(&mut engine, &a.operands).map(|()| Done::Out(None))
        }
        "" => Err("no command given: use setup, teardown or version".into()),
        v => Err(format!(
            "unknown command {v:?}: use setup, teardown or version"
        )),
    }
}

/// The one operand of `setup` and `teardown`: the network namespace path.
fn netns_operand(a: &Args) -> Result<&str, String> {
    match a.operands.as_slice() {
        [netns] => Ok(netns),
        _ => Err(format!(
            "{} needs one argument: the network namespace path",
            a.verb
        )),
    }
}

/// `setup` or `teardown` on `engine`, in the door's process or in the agent's.
fn execute(
    engine: &mut Engine,
    verb: &str,
    netns: &str,
    opts: &types::NetworkOptions,
    dns_port: Option<&str>,
) -> Result<Option<String>, String> {
    match verb {
        "setup" => setup::run(engine, netns, opts, dns_port).map(Some),
        _ => teardown::run(engine, opts).map(|()| None),
    }
}

/// The text of `NetworkOptions` from `--file` (or `-`, stdin).
fn read_input(file: Option<&str>) -> Result<String, String> {
    match file {
        None | Some("-") => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("read network options from stdin: {e}"))?;
            Ok(s)
        }
        Some(p) => std::fs::read_to_string(p).map_err(|e| format!("read {p}: {e}")),
    }
}

fn parse_options(text: &str) -> Result<types::NetworkOptions, String> {
    serde_json::from_str(text).map_err(|e| format!("invalid network options JSON: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parses_podmans_command_lines() {
        let a = parse(&strings(&[
            "--config",
            "/run/containers/networks",
            "--rootless=false",
            "--aardvark-binary=/usr/lib/podman/aardvark-dns",
            "setup",
            "/run/netns/netns-1",
        ]))
        .unwrap();
        assert_eq!(a.verb, "setup");
        assert_eq!(a.operands, ["/run/netns/netns-1"]);
        let e = parse(&strings(&["--rootless", "true", "setup", "x"])).unwrap_err();
        assert!(e.contains("rootless"), "{e}");
        let e = parse(&strings(&["--bogus", "setup"])).unwrap_err();
        assert!(e.contains("--bogus"), "{e}");
        let e = parse(&strings(&["--config"])).unwrap_err();
        assert!(e.contains("needs a value"), "{e}");
    }
}
