//! The netavark door's `setup` and `teardown` run by the agent (`crate::in_agent`): the
//! door's side hands its arguments, input, `NETAVARK_DNS_PORT` and log filter; the agent's
//! runs the same `execute` as the door.

use super::{error_json, execute, netns_operand, parse, parse_options};
use berth_engine::door::{Reply, Request};
use berth_engine::{Engine, Paths};
use std::collections::BTreeMap;

/// The variable of the door's environment its commands read.
const DNS_PORT: &str = "NETAVARK_DNS_PORT";

/// [`crate::in_agent::hand`] for a netavark command.
pub(super) fn hand(
    paths: &Paths,
    args: &[String],
    text: &str,
    dns_port: Option<&str>,
    log: &str,
    netns: &str,
) -> Option<Result<Reply, String>> {
    let env = dns_port
        .map(|p| BTreeMap::from([(DNS_PORT.to_string(), p.to_string())]))
        .unwrap_or_default();
    crate::in_agent::hand(paths, super::OWNER, args, text, env, log, netns)
}

/// Runs a handed netavark command on the agent's `engine`.
pub(crate) fn serve(engine: &mut Engine, req: &Request) -> Reply {
    let (result, stderr) = crate::in_agent::capture(&req.log, || {
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
    crate::in_agent::reply(result.map_err(|e| error_json(&e).to_string()), stderr)
}
