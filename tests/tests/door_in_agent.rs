//! The doors' commands run by the agent (`berth_engine::door`): with an agent running, the
//! netavark door's `setup` and `teardown` and the CNI plugin's ADD, CHECK and DEL are handed
//! to it and do exactly what the door would have done (addresses, links, error JSON, its log
//! on the door's stderr); a door the agent will not take (another mount namespace, another
//! executable) or cannot take (killed) runs the command itself.

use berth_tests::{shell_quote, Sandbox};
use serde_json::{json, Value};

/// `NetworkOptions` for container `name` (id: 64 × `id`) on podman network n7.
fn options(id: char, name: &str, driver: &str) -> String {
    json!({
        "container_id": id.to_string().repeat(64),
        "container_name": name,
        "networks": {"n7": {"interface_name": "eth0"}},
        "network_info": {"n7": {
            "name": "n7", "id": "7".repeat(64), "driver": driver,
            "network_interface": "podman7",
            "subnets": [{"subnet": "10.99.7.0/24", "gateway": "10.99.7.1"}],
            "ipv6_enabled": false, "internal": false, "dns_enabled": false,
            "ipam_options": {"driver": "host-local"}
        }},
        "port_mappings": [],
    })
    .to_string()
}

/// A persistent network namespace at `name` beside the sandbox's berth root.
fn netns(sb: &Sandbox, name: &str) -> String {
    let p = sb.root().parent().unwrap().join(name).display().to_string();
    sb.ok(&format!("touch {p} && unshare --net={p} true"));
    p
}

/// Runs `berth netavark VERB NETNS` with `stdin`, logging at debug; `prefix` goes before the
/// command (an `unshare`, say).
fn door(sb: &Sandbox, prefix: &str, verb: &str, ns: &str, stdin: &str) -> berth_tests::Out {
    sb.sh(&format!(
        "printf %s {} | {prefix} env BERTH_LOG=berth=debug berth netavark {verb} {ns}",
        shell_quote(stdin)
    ))
}

const HANDED: &str = "ran by the agent";

#[test]
fn with_the_agent_running_setup_and_teardown_run_in_it_and_do_what_the_door_does() {
    let sb = Sandbox::new();
    let (ns1, ns2) = (netns(&sb, "ns1"), netns(&sb, "ns2"));
    // The first setup finds no agent: it runs here and starts one.
    let out = door(&sb, "", "setup", &ns1, &options('a', "one", "bridge"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(HANDED), "{out:?}");
    sb.ok("test -S \"$BERTH_RUN_ROOT/door.sock\"");
    // The next runs in the agent and prints what the door prints.
    let out = door(&sb, "", "setup", &ns2, &options('b', "two", "bridge"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "not handed to the agent: {out:?}"
    );
    let status: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
    assert_eq!(
        status["n7"]["interfaces"]["eth0"]["subnets"][0]["ipnet"], "10.99.7.3/24",
        "{status}"
    );
    // Its log at the door's filter comes back on the door's stderr.
    assert!(out.stderr.contains("DEBUG"), "{out:?}");
    sb.ok(&format!(
        "nsenter --net={ns2} ip -br addr show eth0 | grep -q 10.99.7.3/24"
    ));
    sb.ok(&format!("nsenter --net={ns2} ping -c1 -W2 10.99.7.2"));
    let ps = sb.berth_ok(&["ps", "--format", "json"]);
    assert!(ps.contains("\"two\""), "{ps}");

    // Errors come back as the door's error JSON, and change nothing.
    let before = sb.state();
    for (stdin, ns, part) in [
        (
            "{nope".to_string(),
            ns2.clone(),
            "invalid network options JSON",
        ),
        (options('c', "three", "macvlan"), ns2.clone(), "macvlan"),
        (
            options('c', "three", "bridge"),
            "/nonexistent/ns".to_string(),
            "/nonexistent/ns",
        ),
    ] {
        let out = door(&sb, "", "setup", &ns, &stdin);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.contains(HANDED),
            "not handed to the agent: {out:?}"
        );
        let v: Value = serde_json::from_str(out.stdout.trim()).expect("one JSON object");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(part), "error {msg:?} lacks {part:?}");
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    }
    assert_eq!(sb.state(), before, "a failed setup changed state");

    // A teardown in the agent removes the container's link and record.
    let out = door(&sb, "", "teardown", &ns2, &options('b', "two", "bridge"));
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "not handed to the agent: {out:?}"
    );
    let eth0 = sb.sh(&format!("nsenter --net={ns2} ip link show eth0"));
    assert_ne!(eth0.code, 0, "eth0 left behind: {eth0:?}");
    let ps = sb.berth_ok(&["ps", "--format", "json"]);
    assert!(!ps.contains("\"two\""), "{ps}");
}

/// `options` on a network with DNS, the container at a static address.
fn with_dns(id: char, name: &str, ip: &str) -> String {
    let mut v: Value = serde_json::from_str(&options(id, name, "bridge")).unwrap();
    v["network_info"]["n7"]["dns_enabled"] = true.into();
    v["networks"]["n7"]["static_ips"] = json!([ip]);
    v.to_string()
}

/// The A records DNS on network n7's gateway gives for `name`, asked from namespace `ns`.
fn resolve(sb: &Sandbox, ns: &str, name: &str) -> Vec<String> {
    let out = sb.ok(&format!(
        "nsenter --net={ns} dig +time=2 +tries=1 +short @10.99.7.1 {name} A"
    ));
    let mut ips: Vec<String> = out.lines().map(str::to_string).collect();
    ips.sort();
    ips
}

#[test]
fn a_name_freed_by_a_handed_teardown_answers_only_for_its_new_owner() {
    // A setup on a network with DNS adds its own container to what DNS serves, read by id
    // (`reload-names`); a teardown handed to the agent leaves the full reload for later, so
    // the next setup must not add to the records from before it: the old owner of a reused
    // name would answer beside the new one. Teardown and setup run back to back, before the
    // agent's deferred reload.
    let sb = Sandbox::new();
    let (ns1, ns2, ns3) = (netns(&sb, "ns1"), netns(&sb, "ns2"), netns(&sb, "ns3"));
    let run = |verb: &str, ns: &str, opts: &str| {
        let out = door(&sb, "", verb, ns, opts);
        assert_eq!(out.code, 0, "{verb}: {out:?}");
    };
    run("setup", &ns1, &with_dns('a', "cli", "10.99.7.10"));
    let web = with_dns('b', "web", "10.99.7.50");
    run("setup", &ns2, &web);
    assert_eq!(resolve(&sb, &ns1, "web"), ["10.99.7.50"]);
    let out = sb.sh(&format!(
        "printf %s {} | berth netavark teardown {ns2} && printf %s {} | berth netavark setup {ns3} >/dev/null",
        shell_quote(&web),
        shell_quote(&with_dns('c', "web", "10.99.7.60"))
    ));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(resolve(&sb, &ns1, "web"), ["10.99.7.60"]);
    // A setup after it adds to exact records: both names answer.
    run("setup", &ns2, &with_dns('d', "db", "10.99.7.70"));
    assert_eq!(resolve(&sb, &ns1, "db"), ["10.99.7.70"]);
    assert_eq!(resolve(&sb, &ns1, "web"), ["10.99.7.60"]);
}

#[test]
fn a_door_the_agent_cannot_or_will_not_take_runs_the_command_itself() {
    let sb = Sandbox::new();
    let (ns1, ns2, ns3) = (netns(&sb, "ns1"), netns(&sb, "ns2"), netns(&sb, "ns3"));
    let out = door(&sb, "", "setup", &ns1, &options('a', "one", "bridge"));
    assert_eq!(out.code, 0, "{out:?}");
    // From another mount namespace, paths may mean something else: the agent refuses and
    // the door runs the setup itself.
    let out = door(
        &sb,
        "unshare -m",
        "setup",
        &ns2,
        &options('b', "two", "bridge"),
    );
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(HANDED), "{out:?}");
    assert!(
        out.stderr.contains("another mount or network namespace"),
        "{out:?}"
    );
    sb.ok(&format!("nsenter --net={ns2} ping -c1 -W2 10.99.7.2"));
    // Another executable (as after an upgrade that replaced the binary under the running
    // agent) may run other code: refused too. The door's teardown runs itself.
    let other = sb.dir().join("netavark").display().to_string();
    sb.ok(&format!("cp \"$BERTH_BIN\" {other}"));
    let out = sb.sh(&format!(
        "printf %s {} | BERTH_LOG=berth=debug {other} teardown {ns2}",
        shell_quote(&options('b', "two", "bridge"))
    ));
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(!out.stderr.contains(HANDED), "{out:?}");
    assert!(out.stderr.contains("another berth executable"), "{out:?}");
    let eth0 = sb.sh(&format!("nsenter --net={ns2} ip link show eth0"));
    assert_ne!(eth0.code, 0, "eth0 left behind: {eth0:?}");
    // A killed agent takes nothing: the door runs the command, and starts a new agent.
    let pid = sb
        .ok("cat \"$BERTH_RUN_ROOT/agent.pid\"")
        .trim()
        .to_string();
    // Gone once its /proc entry is (or is a zombie's).
    sb.ok(&format!(
        "kill -9 {pid}; while [ -e /proc/{pid} ] && ! grep -q '^State:.*Z' /proc/{pid}/status 2>/dev/null; do sleep 0.05; done"
    ));
    let out = door(&sb, "", "setup", &ns3, &options('c', "three", "bridge"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(HANDED), "{out:?}");
    sb.ok(&format!("nsenter --net={ns3} ping -c1 -W2 10.99.7.2"));
    let again = berth_tests::eventually(
        || {
            sb.sh("cat \"$BERTH_RUN_ROOT/agent.pid\"")
                .stdout
                .trim()
                .to_string()
        },
        |p| !p.is_empty() && *p != pid,
    );
    assert_ne!(again, pid, "no new agent");
    let out = door(&sb, "", "teardown", &ns3, &options('c', "three", "bridge"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "the new agent took nothing: {out:?}"
    );
}

/// Runs the berth binary as a CNI plugin with `CNI_COMMAND=cmd` for container `id` in `ns`,
/// logging at debug.
fn cni(sb: &Sandbox, cmd: &str, id: &str, ns: &str, stdin: &str) -> berth_tests::Out {
    sb.sh(&format!(
        "printf %s {} | env BERTH_LOG=berth=debug CNI_COMMAND={cmd} CNI_CONTAINERID={id} \
         CNI_NETNS={ns} CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin \"$BERTH_BIN\"",
        shell_quote(stdin)
    ))
}

#[test]
fn with_the_agent_running_cni_verbs_run_in_it_and_answer_as_the_plugin_does() {
    let sb = Sandbox::new();
    let (ns1, ns2) = (netns(&sb, "ns1"), netns(&sb, "ns2"));
    let conf = json!({
        "cniVersion": "1.1.0", "name": "cnia", "type": "berth",
        "bridge": "br-cnia", "subnet": "10.30.7.0/24",
    })
    .to_string();
    // The first ADD runs here and starts the agent.
    let out = cni(&sb, "ADD", "c1", &ns1, &conf);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(HANDED), "{out:?}");
    sb.ok("test -S \"$BERTH_RUN_ROOT/door.sock\"");
    let out = cni(&sb, "ADD", "c2", &ns2, &conf);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "not handed to the agent: {out:?}"
    );
    let result = out.json();
    assert_eq!(result["cniVersion"], "1.1.0", "{result}");
    assert_eq!(result["ips"][0]["address"], "10.30.7.3/24", "{result}");
    sb.ok(&format!("nsenter --net={ns2} ping -c1 -W2 10.30.7.2"));
    let mut check: Value = serde_json::from_str(&conf).unwrap();
    check["prevResult"] = result.clone();
    let out = cni(&sb, "CHECK", "c2", &ns2, &check.to_string());
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "not handed to the agent: {out:?}"
    );
    // The spec's error JSON comes back as the plugin prints it: a configuration that is
    // not JSON is a decoding failure (code 6).
    let out = cni(&sb, "ADD", "c3", &ns2, "{nope");
    assert_eq!(out.code, 1, "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "not handed to the agent: {out:?}"
    );
    let v = out.json();
    assert_eq!(v["code"], 6, "{v}");
    // DEL in the agent removes the attachment.
    let out = cni(&sb, "DEL", "c2", &ns2, &conf);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    assert!(
        out.stderr.contains(HANDED),
        "not handed to the agent: {out:?}"
    );
    let eth0 = sb.sh(&format!("nsenter --net={ns2} ip link show eth0"));
    assert_ne!(eth0.code, 0, "eth0 left behind: {eth0:?}");
    // VERSION needs no engine: the plugin answers it itself.
    let out = cni(&sb, "VERSION", "", "", r#"{"cniVersion":"1.0.0"}"#);
    assert_eq!(out.code, 0, "{out:?}");
    assert!(!out.stderr.contains(HANDED), "{out:?}");
}
