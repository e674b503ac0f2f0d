//! berth's shim: the executable podman runs as `netavark` (contrib/podman).
//!
//! Every door call is a new process, and with berth's agent running the call's work is done
//! in the agent (`berth_engine::door`): the door process only hands it over and prints the
//! reply. berth itself is a poor program for that. glibc's static start-up reads the CPU's
//! cache topology with dozens of `cpuid` instructions, each a trap to the hypervisor on a
//! VM. Then comes berth's own start (a large image's page faults, its log set-up). Together
//! that is ~0.6 ms per call here, a quarter of a handed setup (docs/ARCHITECTURE.md,
//! "Process start"). The shim is a few kilobytes with no C library. It hands `setup` and
//! `teardown` to the agent over `<run-root>/door.sock` with the same request berth's door
//! sends. For everything else (another verb, `BERTH_NO_AGENT`, no agent, a refusal) it
//! becomes berth: `execve` of the `berth` beside it, with the same arguments and
//! environment, and its stdin replayed from memory when the shim has already read it.
//!
//! This library is the shim's logic without its system calls, tested on the host like any
//! crate: which calls it hands ([`plan`]), the request line ([`request`]), the reply
//! ([`Reply::parse`]). `src/main.rs` is the program: start-up, system calls, the flow.

#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod json;

use alloc::vec::Vec;

/// berth's defaults for the variables a door reads (`berth::env_paths`).
pub const DEFAULT_ROOT: &str = "/var/lib/berth";
pub const DEFAULT_RUN_ROOT: &str = "/run/berth";
pub const DEFAULT_LOG: &str = "warn";

/// The process's environment, as `NAME=value` entries.
#[derive(Clone, Copy)]
pub struct Env<'a>(pub &'a [&'a [u8]]);

impl<'a> Env<'a> {
    /// The value of `name`, if set (the first entry wins, as `getenv` finds it).
    pub fn var(&self, name: &str) -> Option<&'a [u8]> {
        self.0.iter().find_map(|e| {
            e.strip_prefix(name.as_bytes())
                .and_then(|rest| rest.strip_prefix(b"="))
        })
    }

    /// [`Env::var`] as text, or `default` when unset; `None` when it is not UTF-8.
    pub fn text(&self, name: &str, default: &'a str) -> Option<&'a str> {
        match self.var(name) {
            Some(v) => core::str::from_utf8(v).ok(),
            None => Some(default),
        }
    }
}

/// What the shim does with a call.
#[derive(Debug, PartialEq)]
pub enum Plan<'a> {
    /// Hand it to the agent: a netavark `setup` or `teardown` of this namespace path.
    Hand { netns: &'a [u8] },
    /// Become berth, which does whatever the call asks.
    Exec,
}

/// Which calls the shim hands: what berth's netavark door would hand (`netavark::run`),
/// bar `--file`, where berth reads the file itself. Anything the door would reject goes
/// to berth too, which gives the same error.
pub fn plan<'a>(argv0: &[u8], args: &[&'a [u8]], env: Env<'_>) -> Plan<'a> {
    let name = argv0.rsplit(|&c| c == b'/').next().unwrap_or(argv0);
    let agent_off = env
        .var("BERTH_NO_AGENT")
        .is_some_and(|v| v != b"0" && !v.is_empty());
    if name != b"netavark" || agent_off {
        return Plan::Exec;
    }
    let mut verb: Option<&[u8]> = None;
    let mut operands = Vec::new();
    let mut it = args.iter();
    while let Some(&a) = it.next() {
        if verb.is_some() {
            operands.push(a);
            continue;
        }
        let key = match a.iter().position(|&c| c == b'=') {
            Some(at) if a.starts_with(b"-") => &a[..at],
            _ => a,
        };
        let inline = key.len() < a.len();
        match key {
            b"-c" | b"--config" | b"-a" | b"--aardvark-binary" | b"-r" | b"--rootless" => {
                if !inline && it.next().is_none() {
                    return Plan::Exec;
                }
            }
            _ if a.starts_with(b"-") => return Plan::Exec,
            _ => verb = Some(a),
        }
    }
    match (verb, operands.as_slice()) {
        (Some(b"setup" | b"teardown"), [netns]) if netns.starts_with(b"/") => Plan::Hand { netns },
        _ => Plan::Exec,
    }
}

/// What the request says about the door beyond its arguments and input.
pub struct Door<'a> {
    pub dns_port: Option<&'a str>,
    pub log: &'a str,
    pub root: &'a str,
    /// Inodes of the mount and network namespaces.
    pub namespaces: (u64, u64),
    /// The berth executable's device, inode and modification time in ns.
    pub build: (u64, u64, i64),
}

/// The request line (`berth_engine::door::Request`, newline included) for a netavark
/// command; `None` when an argument is not UTF-8 (berth's door would not take it either).
pub fn request(args: &[&[u8]], stdin: &str, door: &Door<'_>) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(stdin.len() + 512);
    out.extend_from_slice(b"{\"door\":\"netavark\",\"args\":[");
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(&mut out, core::str::from_utf8(a).ok()?);
    }
    out.extend_from_slice(b"],\"stdin\":");
    json::string(&mut out, stdin);
    out.extend_from_slice(b",\"env\":{");
    if let Some(port) = door.dns_port {
        json::string(&mut out, "NETAVARK_DNS_PORT");
        out.push(b':');
        json::string(&mut out, port);
    }
    out.extend_from_slice(b"},\"log\":");
    json::string(&mut out, door.log);
    out.extend_from_slice(b",\"root\":");
    json::string(&mut out, door.root);
    out.extend_from_slice(b",\"cluster\":null,\"namespaces\":[");
    json::number(&mut out, door.namespaces.0 as i128);
    out.push(b',');
    json::number(&mut out, door.namespaces.1 as i128);
    out.extend_from_slice(b"],\"build\":[");
    json::number(&mut out, door.build.0 as i128);
    out.push(b',');
    json::number(&mut out, door.build.1 as i128);
    out.push(b',');
    json::number(&mut out, door.build.2 as i128);
    out.extend_from_slice(b"]}\n");
    Some(out)
}

/// The agent's answer to a command it ran (`berth_engine::door::Reply`).
#[derive(Debug, Default, PartialEq)]
pub struct Reply {
    pub code: u8,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Reply {
    /// The reply on `line` (its newline may be there or not).
    pub fn parse(line: &[u8]) -> Option<Reply> {
        let mut reply = Reply::default();
        for (key, value) in json::object(line)? {
            match (key.as_slice(), value) {
                (b"code", json::Value::Int(c)) => reply.code = u8::try_from(c).ok()?,
                (b"stdout", json::Value::Str(s)) => reply.stdout = s,
                (b"stderr", json::Value::Str(s)) => reply.stderr = s,
                (b"code" | b"stdout" | b"stderr", _) => return None,
                _ => {}
            }
        }
        Some(reply)
    }
}

/// `dir/name`, the way `Path::join` makes it for a relative `name`.
pub fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    if !p.is_empty() && !p.ends_with(b"/") {
        p.push(b'/');
    }
    p.extend_from_slice(name);
    p
}

/// The error JSON of berth's netavark door, newline included.
pub fn error_json(msg: &str) -> Vec<u8> {
    let mut out = b"{\"error\":".to_vec();
    json::string(&mut out, msg);
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of<'a>(argv0: &str, args: &'a [&'a str], env: &[&[u8]]) -> Plan<'a> {
        let args: Vec<&[u8]> = args.iter().map(|a| a.as_bytes()).collect();
        // The operands live as long as `args` (static strings here).
        let args: &'a [&'a [u8]] = Vec::leak(args);
        plan(argv0.as_bytes(), args, Env(env))
    }

    #[test]
    fn podmans_setup_and_teardown_are_handed() {
        let args = [
            "--config",
            "/run/containers/networks",
            "--rootless=false",
            "--aardvark-binary=/usr/libexec/podman/aardvark-dns",
            "setup",
            "/run/netns/netns-1",
        ];
        assert_eq!(
            plan_of("/usr/lib/berth/netavark", &args, &[]),
            Plan::Hand {
                netns: b"/run/netns/netns-1"
            }
        );
        assert_eq!(
            plan_of(
                "netavark",
                &["teardown", "/run/netns/x"],
                &[b"BERTH_NO_AGENT=0"]
            ),
            Plan::Hand {
                netns: b"/run/netns/x"
            }
        );
    }

    #[test]
    fn everything_else_runs_berth() {
        let exec = |argv0, args: &'static [&'static str], env: &[&[u8]]| {
            assert_eq!(plan_of(argv0, args, env), Plan::Exec, "{argv0} {args:?}");
        };
        exec("netavark", &["version"], &[]);
        exec(
            "netavark",
            &["update", "net", "--network-dns-servers", "1.1.1.1"],
            &[],
        );
        exec("netavark", &["setup", "relative/ns"], &[]);
        exec("netavark", &["setup"], &[]);
        exec("netavark", &["setup", "/a", "/b"], &[]);
        exec("netavark", &["-f", "opts.json", "setup", "/a"], &[]);
        exec("netavark", &["--bogus", "setup", "/a"], &[]);
        exec("netavark", &["--config"], &[]);
        exec("netavark", &["setup", "/a"], &[b"BERTH_NO_AGENT=1"]);
        exec("berth", &["setup", "/a"], &[]);
        exec("berth-shim", &["ps"], &[]);
    }

    #[test]
    fn the_request_is_what_berths_door_sends() {
        let door = Door {
            dns_port: Some("5353"),
            log: "warn",
            root: "/var/lib/berth",
            namespaces: (4026531841, 4026531840),
            build: (2049, 77, 1_700_000_000_123_456_789),
        };
        let line = request(&[b"setup", b"/run/netns/a"], "{\"x\": \"\\n\"}\n", &door).unwrap();
        assert!(line.ends_with(b"}\n") && !line[..line.len() - 1].contains(&b'\n'));
        let expected = concat!(
            r#"{"door":"netavark","args":["setup","/run/netns/a"],"#,
            r#""stdin":"{\"x\": \"\\n\"}\n","env":{"NETAVARK_DNS_PORT":"5353"},"#,
            r#""log":"warn","root":"/var/lib/berth","cluster":null,"#,
            r#""namespaces":[4026531841,4026531840],"build":[2049,77,1700000000123456789]}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(line).unwrap(), expected);
        assert_eq!(request(&[b"\xff"], "", &door), None);
    }

    #[test]
    fn replies_are_read() {
        let r = Reply::parse(
            br#"{"code":1,"stdout":"{\"error\":\"x\"}\n","stderr":"WARN y\n","micros":812}"#,
        )
        .unwrap();
        assert_eq!(r.code, 1);
        assert_eq!(r.stdout, b"{\"error\":\"x\"}\n");
        assert_eq!(r.stderr, b"WARN y\n");
        assert_eq!(Reply::parse(b"{\"code\":300}"), None);
        assert_eq!(Reply::parse(b"{\"stdout\":1}"), None);
        assert_eq!(Reply::parse(b"started"), None);
    }

    #[test]
    fn paths_join_as_berths_do() {
        assert_eq!(join(b"/run/berth", b"door.sock"), b"/run/berth/door.sock");
        assert_eq!(join(b"/run/berth/", b"door.sock"), b"/run/berth/door.sock");
        assert_eq!(join(b"", b"door.sock"), b"door.sock");
    }

    #[test]
    fn the_environment_is_looked_up_by_whole_names() {
        let env = Env(&[b"BERTH_ROOTX=1", b"BERTH_ROOT=/x", b"BERTH_ROOT=/y"]);
        assert_eq!(env.var("BERTH_ROOT"), Some(&b"/x"[..]));
        assert_eq!(env.text("BERTH_LOG", "warn"), Some("warn"));
        assert_eq!(Env(&[b"BERTH_LOG=\xff"]).text("BERTH_LOG", "warn"), None);
    }
}
