//! berth's shim: the executable podman runs as `netavark` (contrib/podman), and CNI
//! runtimes as the `berth` plugin (contrib/cni).
//!
//! Every door call is a new process, and with berth's agent running the call's work is done
//! in the agent (`berth_engine::door`): the door process only hands it over and prints the
//! reply. berth itself is a poor program for that. glibc's static start-up reads the CPU's
//! cache topology with dozens of `cpuid` instructions, each a trap to the hypervisor on a
//! VM. Then comes berth's own start (a large image's page faults, its log set-up). Together
//! that is ~0.6 ms per call here, a quarter of a handed setup (docs/ARCHITECTURE.md,
//! "Process start"). The shim is a few kilobytes with no C library. It hands netavark's
//! `setup` and `teardown`, and CNI's `ADD`, `DEL`, `CHECK` and `GC`, to the agent over
//! `<run-root>/door.sock` with the same request berth's door sends. For everything else
//! (another verb, `BERTH_NO_AGENT`, no agent, a refusal) it becomes berth: `execve` of the
//! `berth` beside it, with the same arguments and environment, and its stdin replayed from
//! memory when the shim has already read it.
//!
//! This library is the shim's logic without its system calls, tested on the host like any
//! crate: which calls it hands ([`plan`]), the request line ([`request`]), the reply
//! ([`Reply::parse`]), the error lines ([`error_line`]). `src/main.rs` is the program:
//! start-up, system calls, the flow.

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

/// The door a call is for, and so the protocol of its errors.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Kind {
    /// podman's network backend: run as `netavark`.
    Netavark,
    /// A CNI plugin: `CNI_COMMAND` set (and not run as `netavark`).
    Cni,
}

impl Kind {
    /// The door of a call, as berth's `main` picks it: by the program's name, then by
    /// `CNI_COMMAND`. A call for neither is answered in netavark's form.
    pub fn of(argv0: &[u8], env: Env<'_>) -> Kind {
        let name = argv0.rsplit(|&c| c == b'/').next().unwrap_or(argv0);
        match name != b"netavark" && env.var("CNI_COMMAND").is_some() {
            true => Kind::Cni,
            false => Kind::Netavark,
        }
    }

    /// Its name in a request (`berth_engine::door::Request::door`).
    pub fn name(self) -> &'static str {
        match self {
            Kind::Netavark => "netavark",
            Kind::Cni => "cni",
        }
    }
}

/// What the shim does with a call.
#[derive(Debug, PartialEq)]
pub enum Plan<'a> {
    /// Hand it to the agent: a netavark `setup` or `teardown` of this namespace path, or a
    /// CNI verb that works on berth's state (its `CNI_NETNS`, empty for `GC`).
    Hand { kind: Kind, netns: &'a [u8] },
    /// Become berth, which does whatever the call asks.
    Exec,
}

/// The variables of a CNI runtime's environment that berth's CNI door reads and hands on
/// (`cni::VARS`).
pub const CNI_VARS: &[&str] = &[
    "CNI_COMMAND",
    "CNI_CONTAINERID",
    "CNI_NETNS",
    "CNI_IFNAME",
    "CNI_ARGS",
];

/// The CNI verbs berth's door hands to the agent (`cni::ENGINE_VERBS`).
const CNI_HANDED: &[&[u8]] = &[b"ADD", b"DEL", b"CHECK", b"GC"];

/// The CNI versions berth speaks (`cni::SUPPORTED`); an error answers in the one the
/// configuration asks for when it is one of them, else in the newest.
pub const CNI_VERSIONS: &[&str] = &["0.4.0", "1.0.0", "1.1.0"];

/// Which calls the shim hands: what berth's doors would hand (`netavark::run`,
/// `cni::in_agent::hand`), bar netavark's `--file`, where berth reads the file itself.
/// Anything the door would reject goes to berth too, which gives the same error.
pub fn plan<'a>(argv0: &[u8], args: &[&'a [u8]], env: Env<'a>) -> Plan<'a> {
    let name = argv0.rsplit(|&c| c == b'/').next().unwrap_or(argv0);
    let agent_off = env
        .var("BERTH_NO_AGENT")
        .is_some_and(|v| v != b"0" && !v.is_empty());
    if agent_off || name == b"aardvark-dns" {
        return Plan::Exec;
    }
    match Kind::of(argv0, env) {
        Kind::Cni => cni_plan(env),
        Kind::Netavark if name == b"netavark" => netavark_plan(args),
        Kind::Netavark => Plan::Exec,
    }
}

fn netavark_plan<'a>(args: &[&'a [u8]]) -> Plan<'a> {
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
        (Some(b"setup" | b"teardown"), [netns]) if netns.starts_with(b"/") => Plan::Hand {
            kind: Kind::Netavark,
            netns,
        },
        _ => Plan::Exec,
    }
}

/// A CNI call is handed when berth's door would hand it: one of its engine verbs, every
/// variable it reads in UTF-8, `CNI_ARGS` all `KEY=VALUE` (else the door's answer is an
/// error of its own), and `CNI_NETNS` absolute or empty (a relative path would be the
/// agent's, from its own working directory).
fn cni_plan(env: Env<'_>) -> Plan<'_> {
    let var = |k| env.var(k).unwrap_or_default();
    if CNI_VARS
        .iter()
        .any(|k| core::str::from_utf8(var(k)).is_err())
    {
        return Plan::Exec;
    }
    let args_ok = var("CNI_ARGS")
        .split(|&c| c == b';')
        .all(|kv| kv.is_empty() || kv.contains(&b'='));
    let netns = var("CNI_NETNS");
    match CNI_HANDED.contains(&var("CNI_COMMAND"))
        && args_ok
        && (netns.is_empty() || netns.starts_with(b"/"))
    {
        true => Plan::Hand {
            kind: Kind::Cni,
            netns,
        },
        false => Plan::Exec,
    }
}

/// What the request says about the door beyond its arguments and input.
pub struct Door<'a> {
    pub kind: Kind,
    /// The variables of its environment that the command reads, as set (netavark's
    /// `NETAVARK_DNS_PORT`; [`CNI_VARS`]).
    pub env: Vec<(&'a str, &'a str)>,
    pub log: &'a str,
    pub root: &'a str,
    /// Inodes of the mount and network namespaces.
    pub namespaces: (u64, u64),
    /// The berth executable's device, inode and modification time in ns.
    pub build: (u64, u64, i64),
}

/// The variables of `env` that a call of `kind` hands on, those that are set; `None` when
/// one is not UTF-8.
pub fn door_env<'a>(kind: Kind, env: Env<'a>) -> Option<Vec<(&'static str, &'a str)>> {
    let names: &[&'static str] = match kind {
        Kind::Netavark => &["NETAVARK_DNS_PORT"],
        Kind::Cni => CNI_VARS,
    };
    let mut out = Vec::new();
    for &k in names {
        if let Some(v) = env.var(k) {
            out.push((k, core::str::from_utf8(v).ok()?));
        }
    }
    Some(out)
}

/// The request line (`berth_engine::door::Request`, newline included) for a command;
/// `None` when an argument is not UTF-8 (berth's door would not take it either). A CNI
/// call's arguments are none: berth's CNI door hands its environment instead.
pub fn request(args: &[&[u8]], stdin: &str, door: &Door<'_>) -> Option<Vec<u8>> {
    let args = match door.kind {
        Kind::Netavark => args,
        Kind::Cni => &[],
    };
    let mut out = Vec::with_capacity(stdin.len() + 512);
    out.extend_from_slice(b"{\"door\":");
    json::string(&mut out, door.kind.name());
    out.extend_from_slice(b",\"args\":[");
    for (i, a) in args.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(&mut out, core::str::from_utf8(a).ok()?);
    }
    out.extend_from_slice(b"],\"stdin\":");
    json::string(&mut out, stdin);
    out.extend_from_slice(b",\"env\":{");
    for (i, (k, v)) in door.env.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json::string(&mut out, k);
        out.push(b':');
        json::string(&mut out, v);
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

/// CNI codes the shim answers with (berth's `cni::error::code`).
pub mod cni_code {
    /// The configuration could not be read.
    pub const IO: u32 = 5;
    /// The agent's result is unknown: the runtime may try again.
    pub const TRY_AGAIN: u32 = 11;
    /// berth could not be run.
    pub const INTERNAL: u32 = 102;
}

/// The error line of a call of `kind`, newline included: netavark's [`error_json`], or a
/// CNI error result with `code` in the version the configuration on `stdin` asks for (the
/// newest berth speaks when it names none of them), as berth's CNI door writes it.
pub fn error_line(kind: Kind, stdin: &[u8], code: u32, msg: &str) -> Vec<u8> {
    if kind == Kind::Netavark {
        return error_json(msg);
    }
    let asked = json::object(stdin).and_then(|members| {
        members
            .into_iter()
            .find_map(|(k, v)| match (k.as_slice(), v) {
                (b"cniVersion", json::Value::Str(s)) => Some(s),
                _ => None,
            })
    });
    let version = CNI_VERSIONS
        .iter()
        .find(|v| asked.as_deref() == Some(v.as_bytes()))
        .unwrap_or(&CNI_VERSIONS[CNI_VERSIONS.len() - 1]);
    let mut out = b"{\"cniVersion\":".to_vec();
    json::string(&mut out, version);
    out.extend_from_slice(b",\"code\":");
    json::number(&mut out, code as i128);
    out.extend_from_slice(b",\"msg\":");
    json::string(&mut out, msg);
    out.extend_from_slice(b"}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of<'a>(argv0: &str, args: &'a [&'a str], env: &'a [&'a [u8]]) -> Plan<'a> {
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
                kind: Kind::Netavark,
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
                kind: Kind::Netavark,
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
        // CNI: the verbs berth's CNI door runs itself, and calls its hand-over would not take.
        let add: &[&[u8]] = &[b"CNI_COMMAND=ADD", b"CNI_NETNS=/run/netns/c1"];
        exec("berth", &[], &[b"CNI_COMMAND=VERSION"]);
        exec("berth", &[], &[b"CNI_COMMAND=STATUS"]);
        exec("berth", &[], &[b"CNI_COMMAND=add", b"CNI_NETNS=/n"]);
        exec("berth", &[], &[b"CNI_COMMAND=ADD", b"CNI_NETNS=relative/n"]);
        exec(
            "berth",
            &[],
            &[add[0], add[1], b"CNI_ARGS=IgnoreUnknown=1;oops"],
        );
        exec("berth", &[], &[add[0], add[1], b"CNI_IFNAME=\xff"]);
        exec("berth", &[], &[add[0], add[1], b"BERTH_NO_AGENT=1"]);
        exec("aardvark-dns", &[], add);
        // Run as netavark, berth is the netavark door whatever CNI_COMMAND says.
        exec("netavark", &["version"], add);
    }

    #[test]
    fn cni_engine_verbs_are_handed() {
        let netns = |verb: &'static str, env: &'static [&'static [u8]]| match plan_of(
            "/opt/cni/bin/berth",
            &[],
            env,
        ) {
            Plan::Hand {
                kind: Kind::Cni,
                netns,
            } => netns,
            p => panic!("{verb}: {p:?}"),
        };
        let add: &[&[u8]] = &[
            b"CNI_COMMAND=ADD",
            b"CNI_CONTAINERID=c1",
            b"CNI_NETNS=/run/netns/c1",
            b"CNI_IFNAME=eth0",
            b"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAME=web;",
        ];
        assert_eq!(netns("ADD", add), b"/run/netns/c1");
        assert_eq!(netns("DEL", &[b"CNI_COMMAND=DEL", b"CNI_NETNS=/x"]), b"/x");
        assert_eq!(
            netns("CHECK", &[b"CNI_COMMAND=CHECK", b"CNI_NETNS=/x"]),
            b"/x"
        );
        assert_eq!(netns("GC", &[b"CNI_COMMAND=GC"]), b"");
        assert_eq!(Kind::of(b"berth", Env(add)), Kind::Cni);
        assert_eq!(Kind::of(b"/x/netavark", Env(add)), Kind::Netavark);
        assert_eq!(Kind::of(b"berth", Env(&[])), Kind::Netavark);
    }

    #[test]
    fn the_request_is_what_berths_door_sends() {
        let door = Door {
            kind: Kind::Netavark,
            env: vec![("NETAVARK_DNS_PORT", "5353")],
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
        // A CNI call's request carries its variables, and no arguments.
        let env = Env(&[
            b"CNI_COMMAND=DEL",
            b"PATH=/bin",
            b"CNI_NETNS=/n",
            b"CNI_IFNAME=e\"0",
        ]);
        let cni = Door {
            kind: Kind::Cni,
            env: door_env(Kind::Cni, env).unwrap(),
            ..door
        };
        let line = request(&[b"ignored"], "{}", &cni).unwrap();
        let expected = concat!(
            r#"{"door":"cni","args":[],"stdin":"{}","#,
            r#""env":{"CNI_COMMAND":"DEL","CNI_NETNS":"/n","CNI_IFNAME":"e\"0"},"#,
            r#""log":"warn","root":"/var/lib/berth","cluster":null,"#,
            r#""namespaces":[4026531841,4026531840],"build":[2049,77,1700000000123456789]}"#,
            "\n"
        );
        assert_eq!(String::from_utf8(line).unwrap(), expected);
        assert_eq!(door_env(Kind::Cni, Env(&[b"CNI_ARGS=\xff"])), None);
        assert_eq!(door_env(Kind::Netavark, env), Some(vec![]));
    }

    #[test]
    fn errors_are_in_the_callers_protocol() {
        let msg = "the agent stopped \"x\"";
        assert_eq!(
            error_line(Kind::Netavark, b"{}", cni_code::TRY_AGAIN, msg),
            error_json(msg)
        );
        let cni = |stdin: &str| {
            String::from_utf8(error_line(
                Kind::Cni,
                stdin.as_bytes(),
                cni_code::TRY_AGAIN,
                msg,
            ))
            .unwrap()
        };
        assert_eq!(
            cni(r#"{"cniVersion": "0.4.0", "name": "n", "plugins": [{"type": "berth"}]}"#),
            "{\"cniVersion\":\"0.4.0\",\"code\":11,\"msg\":\"the agent stopped \\\"x\\\"\"}\n"
        );
        for other in [r#"{"cniVersion": "9.9.9"}"#, "{nope", ""] {
            assert!(
                cni(other).starts_with("{\"cniVersion\":\"1.1.0\",\"code\":11,"),
                "{other}"
            );
        }
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
