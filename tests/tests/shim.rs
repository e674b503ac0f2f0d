//! berth-shim, what podman runs as `netavark` and a CNI runtime as the `berth` plugin
//! (shim/): with an agent running it hands netavark's `setup` and `teardown`, and CNI's
//! `ADD`, `DEL`, `CHECK` and `GC`, to it with the request berth's own door sends and prints
//! the reply; for anything else, and when no agent takes the command, it runs the `berth`
//! beside it with the same arguments, environment and stdin.

use berth_tests::{berth_bin, shell_quote, shim_bin, Out, Sandbox};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `NetworkOptions` for container `name` (id: 64 × `id`) on podman network n8.
fn options(id: char, name: &str) -> String {
    json!({
        "container_id": id.to_string().repeat(64),
        "container_name": name,
        "networks": {"n8": {"interface_name": "eth0"}},
        "network_info": {"n8": {
            "name": "n8", "id": "8".repeat(64), "driver": "bridge",
            "network_interface": "podman8",
            "subnets": [{"subnet": "10.99.8.0/24", "gateway": "10.99.8.1"}],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            "ipam_options": {"driver": "host-local"}
        }},
        "port_mappings": [{"host_ip": "", "container_port": 80,
                           "host_port": 18000 + id as u32, "range": 1, "protocol": "tcp"}],
    })
    .to_string()
}

/// A persistent network namespace at `name` beside the sandbox's berth root.
fn netns(sb: &Sandbox, name: &str) -> String {
    let p = sb.dir().join(name).display().to_string();
    sb.ok(&format!("touch {p} && unshare --net={p} true"));
    p
}

/// Runs `DIR/netavark VERB NETNS` with `stdin`, logging at debug (without colours); `env`
/// goes before it.
fn shim(sb: &Sandbox, dir: &Path, env: &str, verb: &str, ns: &str, stdin: &str) -> Out {
    sb.sh(&format!(
        "printf %s {} | env BERTH_LOG=berth=debug NO_COLOR=1 {env} {}/netavark --config /unused \
         {verb} {ns}",
        shell_quote(stdin),
        dir.display()
    ))
}

/// Logged by berth's own door when it hands a command to the agent: the shim did not.
const BERTH_HANDED: &str = "ran by the agent";
/// Logged by berth's own door when it opens the store: the command ran in the door.
const RAN_IN_DOOR: &str = "phase=\"open\"";
/// Logged where the setup ran (in the agent, its log comes back on the door's stderr).
const SET_UP: &str = "phase=\"setup\"";

#[test]
fn with_the_agent_running_the_shim_hands_setup_and_teardown_and_prints_the_reply() {
    let sb = Sandbox::new();
    let dir = sb.shim_dir();
    let (ns1, ns2) = (netns(&sb, "ns1"), netns(&sb, "ns2"));
    // No agent yet: the shim runs berth, whose setup starts one.
    let out = shim(&sb, &dir, "", "setup", &ns1, &options('a', "one"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(RAN_IN_DOOR), "{out:?}");
    sb.ok("test -S \"$BERTH_RUN_ROOT/door.sock\"");

    let out = shim(&sb, &dir, "", "setup", &ns2, &options('b', "two"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(SET_UP),
        "the agent's log did not come back: {out:?}"
    );
    assert!(
        !out.stderr.contains(BERTH_HANDED) && !out.stderr.contains(RAN_IN_DOOR),
        "berth ran, not the shim's hand-over: {out:?}"
    );
    let status: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    let eth0 = &status["n8"]["interfaces"]["eth0"];
    assert_eq!(eth0["subnets"][0]["ipnet"], "10.99.8.3/24", "{status}");
    assert_eq!(eth0["subnets"][0]["gateway"], "10.99.8.1", "{status}");
    sb.ok(&format!("nsenter --net={ns2} ping -c1 -W2 10.99.8.2"));
    let mac = eth0["mac_address"].as_str().expect("mac_address");
    sb.ok(&format!(
        "nsenter --net={ns2} ip -br link show eth0 | grep -qi {mac}"
    ));

    // An error is the agent's error JSON, on stdout, with exit 1, and changes nothing.
    let before = sb.state();
    let out = shim(&sb, &dir, "", "setup", &ns2, "{nope");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(!out.stderr.contains(RAN_IN_DOOR), "{out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains("invalid network options JSON"), "{v}");
    assert_eq!(sb.state(), before, "a failed setup changed state");

    let out = shim(&sb, &dir, "", "teardown", &ns2, &options('b', "two"));
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(!out.stderr.contains(RAN_IN_DOOR), "{out:?}");
    let link = sb.sh(&format!("nsenter --net={ns2} ip link show eth0"));
    assert_ne!(link.code, 0, "eth0 left behind: {link:?}");
    let ps = sb.berth_ok(&["ps", "--format", "json"]);
    assert!(!ps.contains("\"two\"") && ps.contains("\"one\""), "{ps}");
}

#[test]
fn what_the_shim_does_not_hand_berth_runs_with_the_same_input() {
    let sb = Sandbox::new();
    let dir = sb.shim_dir();
    let (ns1, ns2, ns3) = (netns(&sb, "ns1"), netns(&sb, "ns2"), netns(&sb, "ns3"));
    let out = shim(&sb, &dir, "", "setup", &ns1, &options('a', "one"));
    assert_eq!(out.code, 0, "{out:?}");
    // Verbs it does not hand: berth's answer.
    let version = sb.ok(&format!("{}/netavark version", dir.display()));
    let berths = sb.berth_ok(&["netavark", "version"]);
    assert_eq!(version.trim(), berths, "{version}");
    // BERTH_NO_AGENT: berth's door runs the setup itself, with the shim's stdin.
    let out = shim(
        &sb,
        &dir,
        "BERTH_NO_AGENT=1",
        "setup",
        &ns2,
        &options('b', "two"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(RAN_IN_DOOR), "{out:?}");
    sb.ok(&format!("nsenter --net={ns2} ping -c1 -W2 10.99.8.2"));
    // An agent that refuses (a shim beside another berth executable than the agent's): the
    // shim has read stdin already and replays it to that berth, whose door (refused too)
    // runs the setup itself.
    let other = sb.dir().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::copy(shim_bin(), other.join("berth-shim")).unwrap();
    std::os::unix::fs::symlink("berth-shim", other.join("netavark")).unwrap();
    std::fs::copy(berth_bin(), other.join("berth")).unwrap();
    let out = shim(&sb, &other, "", "setup", &ns3, &options('c', "three"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains("another berth executable") && out.stderr.contains(RAN_IN_DOOR),
        "{out:?}"
    );
    sb.ok(&format!("nsenter --net={ns3} ping -c1 -W2 10.99.8.2"));
    let out = shim(&sb, &other, "", "teardown", &ns3, &options('c', "three"));
    assert_eq!(out.code, 0, "{out:?}");
    let link = sb.sh(&format!("nsenter --net={ns3} ip link show eth0"));
    assert_ne!(link.code, 0, "eth0 left behind: {link:?}");
}

/// A berth stand-in for the shim to run: it prints its arguments, then its stdin.
const STAND_IN_BERTH: &str = "#!/bin/sh\necho \"berth ran: $*\"\nexec cat\n";

/// A shim in a fresh directory beside [`STAND_IN_BERTH`], run as `netavark` with `args` and
/// `stdin` against a stand-in agent on `run/door.sock` that answers `answer`; returns the
/// request line it read, the stand-in berth's metadata and the shim's exit code, stdout and
/// stderr.
fn against_stand_in(
    args: &[&str],
    stdin: &str,
    answer: &'static str,
) -> (Value, std::fs::Metadata, i32, String, String) {
    stand_in_run("netavark", args, &[], stdin, answer)
}

/// [`against_stand_in`] with the shim run through the link `link` (`netavark`, or
/// `cni/berth` as a CNI runtime finds its plugin) and the variables `env` set.
fn stand_in_run(
    link: &str,
    args: &[&str],
    env: &[(&str, &str)],
    stdin: &str,
    answer: &'static str,
) -> (Value, std::fs::Metadata, i32, String, String) {
    let tag: String = [link]
        .iter()
        .chain(args)
        .chain(env.iter().map(|(_, v)| v))
        .map(|a| a.replace('/', ""))
        .collect::<Vec<_>>()
        .join("-");
    let dir = std::env::temp_dir().join(format!("berth-shim-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("run")).unwrap();
    std::fs::create_dir_all(dir.join("cni")).unwrap();
    std::fs::copy(shim_bin(), dir.join("berth-shim")).unwrap();
    std::os::unix::fs::symlink(dir.join("berth-shim"), dir.join(link)).unwrap();
    std::fs::write(dir.join("berth"), STAND_IN_BERTH).unwrap();
    std::fs::set_permissions(dir.join("berth"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let listener = UnixListener::bind(dir.join("run/door.sock")).unwrap();
    listener.set_nonblocking(true).unwrap();
    // Set once the shim has exited: a connection it made is queued by then.
    let exited = Arc::new(AtomicBool::new(false));
    let agent = {
        let exited = exited.clone();
        std::thread::spawn(move || {
            // No connection by the shim's exit (or within 20 s): the shim did not hand the
            // command (an empty request).
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut conn = loop {
                let gone = exited.load(Ordering::SeqCst);
                match listener.accept() {
                    Ok((conn, _)) => break conn,
                    Err(_) if !gone && Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    Err(_) => return String::new(),
                }
            };
            conn.set_nonblocking(false).unwrap();
            let mut line = String::new();
            BufReader::new(&conn).read_line(&mut line).unwrap();
            conn.write_all(answer.as_bytes()).unwrap();
            line
        })
    };
    let mut cmd = Command::new(dir.join(link));
    cmd.args(args)
        .envs(env.iter().copied())
        .env("BERTH_ROOT", dir.join("root"))
        .env("BERTH_RUN_ROOT", dir.join("run"))
        .env("BERTH_LOG", "info")
        .env("NETAVARK_DNS_PORT", "5353")
        .env_remove("BERTH_NO_AGENT")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // The shim was copied just now: a child another test thread forked meanwhile holds the
    // copy's write descriptor until it execs, and running the file fails with ETXTBSY then.
    let mut tries = 0;
    let mut child = loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 100 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            r => break r.unwrap(),
        }
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    exited.store(true, Ordering::SeqCst);
    let request = agent.join().unwrap();
    let berth = std::fs::metadata(dir.join("berth")).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        match request.is_empty() {
            true => Value::Null,
            false => serde_json::from_str(&request).expect("the request is one JSON line"),
        },
        berth,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The request berth's `door` sends (`berth_engine::door::Request`) with `args`, `stdin` and
/// `env`, from a shim run by [`stand_in_run`] (log filter `info`) beside the stand-in `berth`;
/// the root is the one `got` names, checked to be the run's.
fn request(
    door: &str,
    args: Value,
    stdin: &str,
    env: Value,
    got: &Value,
    berth: &std::fs::Metadata,
) -> Value {
    assert!(
        got["root"].as_str().unwrap_or_default().ends_with("/root"),
        "{got}"
    );
    let ino = |p: &str| std::fs::metadata(p).unwrap().ino();
    json!({
        "door": door,
        "args": args,
        "stdin": stdin,
        "env": env,
        "log": "info",
        "root": got["root"],
        "cluster": null,
        "namespaces": [ino("/proc/thread-self/ns/mnt"), ino("/proc/thread-self/ns/net")],
        "build": [berth.dev(), berth.ino(), berth.mtime() * 1_000_000_000 + berth.mtime_nsec()],
    })
}

#[test]
fn the_shims_request_is_berths_and_its_reply_is_printed_as_it_came() {
    let stdin = "{\"x\": \"a \\\"quoted\\\" é\\n\"}\n\ttab\u{1}";
    let answer = "started\n{\"code\":3,\"stdout\":\"out \\\"é\\\"\\n\",\"stderr\":\"err \\u00fc\\n\",\"micros\":1}\n";
    let args = [
        "--config",
        "/etc/x",
        "--rootless=false",
        "setup",
        "/run/netns/t1",
    ];
    let (req, berth, code, stdout, stderr) = against_stand_in(&args, stdin, answer);
    assert_eq!(
        (code, stdout.as_str(), stderr.as_str()),
        (3, "out \"é\"\n", "err ü\n")
    );
    // What berth's door sends (berth_engine::door::Request), field for field.
    let env = json!({"NETAVARK_DNS_PORT": "5353"});
    assert_eq!(
        req,
        request("netavark", json!(args), stdin, env, &req, &berth)
    );
}

#[test]
fn an_agent_that_stops_mid_command_is_an_error_and_a_refusal_runs_berth_on_the_same_stdin() {
    let (_, _, code, stdout, _) =
        against_stand_in(&["teardown", "/run/netns/t2"], "{}", "started\n");
    assert_eq!(code, 1, "{stdout}");
    let v: Value = serde_json::from_str(stdout.trim()).expect("error JSON");
    let msg = v["error"].as_str().unwrap();
    assert!(
        msg.contains("the agent stopped before it answered") && msg.contains("agent.log"),
        "{v}"
    );
    let stdin = "{\"container_id\": \"x\"}\nsecond line é";
    for answer in ["refused not today\n", ""] {
        let (_, _, code, stdout, _) = against_stand_in(&["setup", "/run/netns/t3"], stdin, answer);
        assert_eq!(code, 0, "{stdout}");
        assert_eq!(stdout, format!("berth ran: setup /run/netns/t3\n{stdin}"));
    }
}

/// A CNI runtime's variables for an ADD of container c1 in /run/netns/c1.
const CNI_ADD: &[(&str, &str)] = &[
    ("CNI_COMMAND", "ADD"),
    ("CNI_CONTAINERID", "c1"),
    ("CNI_NETNS", "/run/netns/c1"),
    ("CNI_IFNAME", "eth0"),
    ("CNI_ARGS", "IgnoreUnknown=1"),
    ("CNI_PATH", "/opt/cni/bin"),
];

#[test]
fn as_a_cni_plugin_the_shims_request_is_berths_and_its_errors_are_cnis() {
    let stdin = r#"{"cniVersion": "1.0.0", "name": "n", "type": "berth"}"#;
    let answer = "started\n{\"code\":0,\"stdout\":\"{}\\n\",\"stderr\":\"\",\"micros\":1}\n";
    let (req, berth, code, stdout, _) = stand_in_run("cni/berth", &[], CNI_ADD, stdin, answer);
    assert_eq!((code, stdout.as_str()), (0, "{}\n"));
    // What berth's CNI door sends (`cni::in_agent::hand`): no arguments, its variables.
    let env = json!({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "c1", "CNI_NETNS": "/run/netns/c1",
                     "CNI_IFNAME": "eth0", "CNI_ARGS": "IgnoreUnknown=1"});
    assert_eq!(req, request("cni", json!([]), stdin, env, &req, &berth));

    // An agent that stops mid-command: CNI's "try again later" (11), in each version berth
    // answers VERSION with, else in the newest.
    let versions = Command::new(berth_bin())
        .env("CNI_COMMAND", "VERSION")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let versions: Value = serde_json::from_slice(&versions.stdout).expect("VERSION's answer");
    let versions = versions["supportedVersions"].as_array().unwrap().clone();
    assert!(versions.len() >= 3, "{versions:?}");
    let asked = versions
        .iter()
        .map(|v| v.as_str().unwrap())
        .chain(["9.9.9"]);
    for v in asked {
        let conf = json!({"cniVersion": v, "name": "n", "type": "berth"}).to_string();
        let (_, _, code, stdout, _) = stand_in_run("cni/berth", &[], CNI_ADD, &conf, "started\n");
        assert_eq!(code, 1, "{stdout}");
        let e: Value = serde_json::from_str(stdout.trim()).expect("CNI error JSON");
        let answered = if v == "9.9.9" { "1.1.0" } else { v };
        assert_eq!(e["cniVersion"], answered, "{e}");
        assert_eq!(e["code"], 11, "{e}");
        let msg = e["msg"].as_str().unwrap();
        assert!(msg.contains("the agent stopped before it answered"), "{e}");
    }

    // A refusal, and the verbs berth's door runs itself: the stand-in berth runs, with the
    // same stdin.
    let (_, _, code, stdout, _) = stand_in_run("cni/berth", &[], CNI_ADD, stdin, "refused no\n");
    assert_eq!((code, stdout), (0, format!("berth ran: \n{stdin}")));
    let version = [("CNI_COMMAND", "VERSION")];
    let (req, _, code, stdout, _) = stand_in_run("cni/berth", &[], &version, stdin, "");
    assert_eq!(req, Value::Null, "VERSION was handed");
    assert_eq!((code, stdout), (0, format!("berth ran: \n{stdin}")));
}

/// Logged by berth's CNI door when it runs a verb in its own process.
const CNI_RAN_IN_DOOR: &str = "verb=\"cni\" phase=\"open\"";

#[test]
fn with_the_agent_running_the_shim_hands_cni_verbs_and_prints_the_plugins_answer() {
    let sb = Sandbox::new();
    let shim_dir = sb.shim_dir();
    // The plugin as contrib/podman/containers-cni.conf installs it: `berth` in the runtime's
    // plugin directory, a link to berth-shim (which runs the berth beside its own file).
    let plugins = sb.dir().join("cni-bin");
    std::fs::create_dir_all(&plugins).unwrap();
    std::os::unix::fs::symlink(shim_dir.join("berth-shim"), plugins.join("berth")).unwrap();
    let (ns1, ns2) = (netns(&sb, "ns1"), netns(&sb, "ns2"));
    let conf = json!({
        "cniVersion": "1.1.0", "name": "cnis", "type": "berth",
        "bridge": "br-cnis", "subnet": "10.30.9.0/24",
    })
    .to_string();
    let cni = |cmd: &str, id: &str, ns: &str, stdin: &str| {
        sb.sh(&format!(
            "printf %s {} | env BERTH_LOG=berth=debug NO_COLOR=1 CNI_COMMAND={cmd} \
             CNI_CONTAINERID={id} CNI_NETNS={ns} CNI_IFNAME=eth0 CNI_PATH={p} {p}/berth",
            shell_quote(stdin),
            p = plugins.display()
        ))
    };
    // Run by the shim's hand-over: neither berth's door nor berth's own hand-over ran.
    let by_shim = |out: &Out| {
        assert!(
            !out.stderr.contains(CNI_RAN_IN_DOOR) && !out.stderr.contains(BERTH_HANDED),
            "berth ran, not the shim's hand-over: {out:?}"
        );
    };
    // No agent yet: the shim runs berth, whose ADD starts one.
    let out = cni("ADD", "c1", &ns1, &conf);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains(CNI_RAN_IN_DOOR), "{out:?}");
    sb.ok("test -S \"$BERTH_RUN_ROOT/door.sock\"");

    let out = cni("ADD", "c2", &ns2, &conf);
    assert_eq!(out.code, 0, "{out:?}");
    by_shim(&out);
    assert!(
        out.stderr.contains("verb=\"attach\""),
        "the agent's log did not come back: {out:?}"
    );
    let result = out.json();
    assert_eq!(result["cniVersion"], "1.1.0", "{result}");
    assert_eq!(result["ips"][0]["address"], "10.30.9.3/24", "{result}");
    sb.ok(&format!("nsenter --net={ns2} ping -c1 -W2 10.30.9.2"));

    let mut check: Value = serde_json::from_str(&conf).unwrap();
    check["prevResult"] = result;
    let out = cni("CHECK", "c2", &ns2, &check.to_string());
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    by_shim(&out);

    // The plugin's error JSON, as berth's door prints it, and nothing changed.
    let before = sb.state();
    let out = cni("ADD", "c3", &ns2, "{nope");
    assert_eq!(out.code, 1, "{out:?}");
    by_shim(&out);
    assert_eq!(out.json()["code"], 6, "{out:?}");
    assert_eq!(sb.state(), before, "a failed ADD changed state");

    let out = cni("DEL", "c2", &ns2, &conf);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    by_shim(&out);
    let eth0 = sb.sh(&format!("nsenter --net={ns2} ip link show eth0"));
    assert_ne!(eth0.code, 0, "eth0 left behind: {eth0:?}");
    // c1 (set up by berth itself) is all that is left.
    let ps: Value = serde_json::from_str(&sb.berth_ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(ps.as_array().map(Vec::len), Some(1), "{ps}");

    // VERSION is berth's own answer.
    let out = cni("VERSION", "", "", r#"{"cniVersion":"1.0.0"}"#);
    assert_eq!(out.code, 0, "{out:?}");
    let berths = sb.sh("printf '{\"cniVersion\":\"1.0.0\"}' | CNI_COMMAND=VERSION \"$BERTH_BIN\"");
    assert_eq!(out.stdout, berths.stdout, "{out:?}");
}
