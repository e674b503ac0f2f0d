//! A door's command run by the agent: the client side of `<run-root>/door.sock`.
//!
//! A door process (podman's `netavark setup`, say) spends most of its own time getting
//! ready rather than working: opening the store, reading its schema, preparing every
//! statement anew. When an agent runs, the door hands it the whole command instead: its
//! arguments, what it read on stdin, the environment it would read and its log filter. The
//! agent runs the same code on a worker thread with a warm store connection and prints
//! nothing; the door prints what comes back. Where the agent is not running (or runs another
//! executable, or lives in another mount or network namespace, or under another root), the
//! door does the work itself, as it always could: no network depends on the agent.
//!
//! Protocol: one [`Request`] as a JSON line. The agent answers `refused WHY` (the door runs
//! the command itself) or `started`, then, once done, one [`Reply`] as a JSON line. A door
//! that reads end-of-file before `started` runs the command itself (the agent did not take
//! it); after `started`, it reports that the agent stopped mid-command (podman tears down a
//! failed setup).

use crate::Paths;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

/// How long a door waits for the agent to take its command (a free worker).
const TAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a door waits for a taken command's result.
const RESULT_TIMEOUT: Duration = Duration::from_secs(300);

/// One door command, as the door process would have run it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Request {
    /// Which door (`netavark`).
    pub door: String,
    /// The arguments after the program name.
    pub args: Vec<String>,
    /// What the door read as its input (stdin or `--file`).
    pub stdin: String,
    /// The variables of the door's environment that its command reads.
    pub env: BTreeMap<String, String>,
    /// The door's log filter (`BERTH_LOG`): what of the command's log comes back to its
    /// stderr.
    pub log: String,
    /// The door's berth root; the agent takes only commands for its own.
    pub root: PathBuf,
    /// The door's cluster store URL and host name, if any.
    pub cluster: Option<(String, String)>,
    /// The inodes of the door's mount and network namespaces: paths and host-side kernel
    /// objects mean the same to the agent only when they are its own.
    pub namespaces: (u64, u64),
    /// The door's executable ([`build`]): an agent runs only its own build's code.
    pub build: (u64, u64, i64),
}

/// What the command printed and its exit code.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub code: u8,
    pub stdout: String,
    pub stderr: String,
    /// How long the agent took, from reading the request to writing this reply.
    #[serde(default)]
    pub micros: u64,
}

/// What became of a command handed to the agent.
#[derive(Debug)]
pub enum Handed {
    /// The agent ran it.
    Ran(Reply),
    /// The agent did not take it (none runs, or it refused): run it here.
    NotTaken(String),
    /// The agent took it and stopped before answering: its result is unknown.
    Lost(String),
}

/// The inodes of this thread's mount and network namespaces.
pub fn namespaces() -> std::io::Result<(u64, u64)> {
    let ino = |p: &str| std::fs::metadata(p).map(|m| m.ino());
    Ok((
        ino("/proc/thread-self/ns/mnt")?,
        ino("/proc/thread-self/ns/net")?,
    ))
}

/// This process's executable file: device, inode and modification time. An upgrade that
/// replaces the binary under a running agent makes the door's differ from the agent's (the
/// agent's still names the old, deleted file).
pub fn build() -> std::io::Result<(u64, u64, i64)> {
    let m = std::fs::metadata("/proc/self/exe")?;
    Ok((m.dev(), m.ino(), m.mtime() * 1_000_000_000 + m.mtime_nsec()))
}

/// The cluster part of `paths`, as a request carries it.
pub fn cluster_of(paths: &Paths) -> Option<(String, String)> {
    paths
        .cluster
        .as_ref()
        .map(|c| (c.url.clone(), c.host.clone()))
}

/// Hands `req` to the agent of `paths` and waits for its reply.
pub fn hand(paths: &Paths, req: &Request) -> Handed {
    let mut phases = crate::timing::Phases::new("door");
    let s = match UnixStream::connect(paths.door_socket()) {
        Ok(s) => s,
        Err(e) => return Handed::NotTaken(format!("connect: {e}")),
    };
    let mut line = match serde_json::to_string(req) {
        Ok(l) => l,
        Err(e) => return Handed::NotTaken(format!("encode: {e}")),
    };
    line.push('\n');
    if let Err(e) = (&s).write_all(line.as_bytes()) {
        return Handed::NotTaken(format!("send: {e}"));
    }
    phases.mark("send");
    let mut r = BufReader::new(&s);
    let mut first = String::new();
    let _ = s.set_read_timeout(Some(TAKE_TIMEOUT));
    match r.read_line(&mut first) {
        Ok(0) => return Handed::NotTaken("the agent closed the connection".into()),
        Err(e) => return Handed::NotTaken(format!("no answer: {e}")),
        Ok(_) => {}
    }
    match first.trim_end() {
        "started" => {}
        other => {
            let why = other.strip_prefix("refused ").unwrap_or(other);
            return Handed::NotTaken(why.to_string());
        }
    }
    phases.mark("taken");
    let _ = s.set_read_timeout(Some(RESULT_TIMEOUT));
    let mut reply = String::new();
    match r.read_line(&mut reply) {
        Ok(0) => Handed::Lost("the agent stopped before it answered".into()),
        Err(e) => Handed::Lost(format!("no result from the agent: {e}")),
        Ok(_) => match serde_json::from_str::<Reply>(&reply) {
            Ok(reply) => {
                phases.mark("ran");
                tracing::debug!(target: "berth::timing", verb = "door", phase = "in-agent", us = reply.micros);
                Handed::Ran(reply)
            }
            Err(e) => Handed::Lost(format!("unreadable result from the agent: {e}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_are_one_json_line_each() {
        let req = Request {
            door: "netavark".into(),
            args: vec!["setup".into(), "/run/netns/a".into()],
            stdin: "{\n  \"container_id\": \"x\"\n}\n".into(),
            env: BTreeMap::from([("NETAVARK_DNS_PORT".into(), "5353".into())]),
            log: "warn".into(),
            root: "/var/lib/berth".into(),
            cluster: None,
            namespaces: (1, 2),
            build: (3, 4, 5),
        };
        let line = serde_json::to_string(&req).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert_eq!(serde_json::from_str::<Request>(&line).unwrap(), req);
        let reply = Reply {
            code: 1,
            stdout: "{\"error\":\"x\"}\n".into(),
            stderr: "WARN y\n".into(),
            micros: 1,
        };
        let line = serde_json::to_string(&reply).unwrap();
        assert!(!line.contains('\n'), "{line}");
    }

    #[test]
    fn this_threads_namespaces_are_known() {
        let (mnt, net) = namespaces().unwrap();
        assert!(mnt > 0 && net > 0 && mnt != net);
    }
}
