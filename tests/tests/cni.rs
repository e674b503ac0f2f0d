//! The CNI door by environment and stdin, as a runtime drives it: every verb, the spec's
//! error codes, CHECK after damage, DEL when the namespace is gone, GC of stale attachments,
//! dual-stack configurations (reach and publish over IPv6).

use berth_tests::{eventually, shell_quote, Out, Sandbox};
use serde_json::{json, Value};

/// A network configuration of type berth on 10.30.0.0/24 with all four capabilities.
fn conf(version: &str, runtime: Value) -> Value {
    json!({
        "cniVersion": version,
        "name": "cninet",
        "type": "berth",
        "bridge": "br-cni",
        "subnet": "10.30.0.0/24",
        "capabilities": {"portMappings": true, "ips": true, "mac": true, "aliases": true},
        "runtimeConfig": runtime,
    })
}

/// Makes a namespace file `NAME` in the sandbox's directory; returns its path.
fn netns(sb: &Sandbox, name: &str) -> String {
    let path = sb.root().parent().unwrap().join(name).display().to_string();
    sb.ok(&format!(
        "touch {path} && unshare --net={path} true && nsenter --net={path} ip link set lo up"
    ));
    path
}

/// Runs the berth binary as a CNI plugin: `CNI_COMMAND=cmd`, the other variables from `env`,
/// `stdin` on stdin.
fn cni(sb: &Sandbox, cmd: &str, env: &[(&str, &str)], stdin: &str) -> Out {
    let vars: Vec<String> = env
        .iter()
        .map(|(k, v)| format!("{k}={}", shell_quote(v)))
        .collect();
    sb.sh(&format!(
        "printf %s {} | env CNI_COMMAND={cmd} CNI_PATH=/opt/cni/bin {} \"$BERTH_BIN\"",
        shell_quote(stdin),
        vars.join(" ")
    ))
}

fn attach_env<'a>(id: &'a str, ns: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("CNI_CONTAINERID", id),
        ("CNI_NETNS", ns),
        ("CNI_IFNAME", "eth0"),
    ]
}

/// ADD that must succeed; returns the result.
fn add(sb: &Sandbox, id: &str, ns: &str, conf: &Value) -> Value {
    let out = cni(sb, "ADD", &attach_env(id, ns), &conf.to_string());
    assert_eq!(out.code, 0, "ADD failed: {out:?}");
    out.json()
}

/// Asserts an error result: exit 1, only the error JSON on stdout, the code, a message.
fn assert_error(out: &Out, code: u64, msg_part: &str) {
    assert_ne!(out.code, 0, "expected failure: {out:?}");
    let v = out.json();
    assert_eq!(v["code"], code, "{v}");
    let msg = v["msg"].as_str().unwrap_or_default();
    assert!(msg.contains(msg_part), "msg {msg:?} lacks {msg_part:?}");
    assert!(v["cniVersion"].is_string(), "{v}");
}

fn links(sb: &Sandbox) -> String {
    sb.ok("ip -br link | awk '{print $1}' | cut -d@ -f1 | sort | tr '\\n' ' '")
}

/// Waits (see `eventually`: the agent deletes them after DEL returns) until no berth veth
/// and no `br-cni` bridge is left.
fn assert_no_veth_or_bridge_left(sb: &Sandbox) {
    let left = eventually(
        || links(sb),
        |l| !l.contains("bth") && !l.contains("br-cni"),
    );
    assert!(!left.contains("bth"), "{left}");
    assert!(!left.contains("br-cni"), "bridge left: {left}");
}

fn pub_elements(sb: &Sandbox) -> String {
    sb.ok("nft -j list map inet berth pub4 2>/dev/null | jq -c '[.nftables[].map.elem // empty]' || true")
        .trim()
        .to_string()
}

#[test]
fn version_answers_in_the_asked_version_with_every_supported_one() {
    let sb = Sandbox::new();
    for v in ["0.4.0", "1.0.0", "1.1.0"] {
        let out = cni(&sb, "VERSION", &[], &json!({"cniVersion": v}).to_string());
        assert_eq!(out.code, 0, "{out:?}");
        let r = out.json();
        assert_eq!(r["cniVersion"], v);
        assert_eq!(r["supportedVersions"], json!(["0.4.0", "1.0.0", "1.1.0"]));
    }
}

#[test]
fn add_check_del_with_capabilities_and_check_fails_after_damage() {
    let sb = Sandbox::new();
    let ns = netns(&sb, "ns1");
    let runtime = json!({
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "ips": ["10.30.0.5/24"],
        "mac": "02:00:00:00:30:05",
        "aliases": {"cninet": ["web"]},
    });
    let c = conf("1.1.0", runtime);
    let r = add(&sb, "ctr-1", &ns, &c);
    assert_eq!(r["cniVersion"], "1.1.0");
    assert_eq!(r["ips"][0]["address"], "10.30.0.5/24", "{r}");
    assert_eq!(r["ips"][0]["gateway"], "10.30.0.1");
    assert_eq!(
        r["interfaces"][r["ips"][0]["interface"].as_u64().unwrap() as usize]["mac"],
        "02:00:00:00:30:05"
    );
    assert_eq!(r["routes"][0]["dst"], "0.0.0.0/0");
    assert_eq!(r["dns"]["nameservers"][0], "10.30.0.1");
    // The kernel has what the result says.
    let inside = sb.ok(&format!("nsenter --net={ns} ip -br addr show eth0"));
    assert!(inside.contains("10.30.0.5/24"), "{inside}");
    let link = sb.ok(&format!("nsenter --net={ns} ip -br link show eth0"));
    assert!(link.contains("02:00:00:00:30:05"), "{link}");
    // berth shows the attachment like its own containers.
    let ps: Value = serde_json::from_str(&sb.berth_ok(&["ps", "--format", "json"])).unwrap();
    assert_eq!(ps.as_array().unwrap().len(), 1, "{ps}");
    let net: Value = serde_json::from_str(&sb.berth_ok(&["network", "inspect", "cninet"])).unwrap();
    let members = net[0]["Containers"].as_object().unwrap();
    assert_eq!(members.len(), 1, "{net}");
    // The published port leads into the namespace.
    sb.spawn(&format!(
        "exec nsenter --net={ns} socat TCP-LISTEN:80,fork,reuseaddr EXEC:cat"
    ));
    let reached = (0..20).any(|_| {
        let o = sb.sh("echo ping | timeout 3 socat -T2 - TCP:127.0.0.1:8080,connect-timeout=2");
        let ok = o.stdout.trim() == "ping";
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        ok
    });
    assert!(reached, "published port 8080 not reachable");
    // CHECK passes with ADD's result, and fails once the interface is gone.
    let mut checked = c.clone();
    checked["prevResult"] = r.clone();
    let ok = cni(
        &sb,
        "CHECK",
        &attach_env("ctr-1", &ns),
        &checked.to_string(),
    );
    assert_eq!((ok.code, ok.stdout.as_str()), (0, ""), "{ok:?}");
    sb.ok(&format!("nsenter --net={ns} ip link del eth0"));
    let bad = cni(
        &sb,
        "CHECK",
        &attach_env("ctr-1", &ns),
        &checked.to_string(),
    );
    assert_error(&bad, 100, "eth0");
    // DEL removes everything; a second DEL succeeds too.
    for _ in 0..2 {
        let del = cni(&sb, "DEL", &attach_env("ctr-1", &ns), &c.to_string());
        assert_eq!((del.code, del.stdout.as_str()), (0, ""), "{del:?}");
    }
    assert_eq!(sb.berth_ok(&["ps", "-q"]), "");
    let left = eventually(|| links(&sb), |l| !l.contains("bth"));
    assert!(!left.contains("bth"), "{left}");
    assert_eq!(pub_elements(&sb), "[]");
    // CHECK of what is gone: unknown container.
    let gone = cni(
        &sb,
        "CHECK",
        &attach_env("ctr-1", &ns),
        &checked.to_string(),
    );
    assert_error(&gone, 3, "ctr-1");
}

#[test]
fn del_is_complete_when_the_namespace_is_already_gone() {
    let sb = Sandbox::new();
    let ns = netns(&sb, "ns1");
    let runtime =
        json!({"portMappings": [{"hostPort": 9090, "containerPort": 90, "protocol": "udp"}]});
    let c = conf("1.0.0", runtime);
    let r = add(&sb, "ctr-gone", &ns, &c);
    assert_eq!(r["cniVersion"], "1.0.0");
    assert_ne!(pub_elements(&sb), "[]");
    sb.ok(&format!("umount {ns} && rm {ns}"));
    let env = vec![("CNI_CONTAINERID", "ctr-gone"), ("CNI_IFNAME", "eth0")];
    let del = cni(&sb, "DEL", &env, &c.to_string());
    assert_eq!((del.code, del.stdout.as_str()), (0, ""), "{del:?}");
    assert_eq!(sb.berth_ok(&["ps", "-q"]), "");
    assert_no_veth_or_bridge_left(&sb);
    assert_eq!(pub_elements(&sb), "[]");
    let rows = sb.ok(&format!(
        "sqlite3 {} 'SELECT count(*) FROM endpoints; SELECT count(*) FROM allocations; SELECT count(*) FROM ports'",
        sb.root().join("berth.db").display()
    ));
    assert_eq!(rows.split_whitespace().collect::<Vec<_>>(), ["0", "0", "0"]);
}

#[test]
fn a_record_whose_namespace_is_gone_is_stale_for_add_and_gc() {
    let sb = Sandbox::new();
    let c = conf("1.1.0", json!({}));
    let ns1 = netns(&sb, "ns1");
    add(&sb, "ctr-again", &ns1, &c);
    sb.ok(&format!("umount {ns1} && rm {ns1}"));
    // The runtime lost the namespace without DEL (a reboot): a new ADD is not refused.
    let ns2 = netns(&sb, "ns2");
    let r = add(&sb, "ctr-again", &ns2, &c);
    assert_eq!(r["interfaces"][1]["sandbox"], ns2.as_str(), "{r}");
    assert_eq!(sb.berth_ok(&["ps", "-q"]).lines().count(), 1);
    // A live namespace elsewhere is not taken over.
    let ns3 = netns(&sb, "ns3");
    assert_error(
        &cni(&sb, "ADD", &attach_env("ctr-again", &ns3), &c.to_string()),
        101,
        "namespace",
    );
    // berth gc removes attachments whose namespace is gone, and only those.
    add(&sb, "ctr-lost", &ns3, &c);
    sb.ok(&format!("umount {ns3} && rm {ns3}"));
    let gc = sb.berth_ok(&["gc"]);
    assert!(gc.contains("namespace is gone"), "{gc}");
    assert_eq!(sb.berth_ok(&["ps", "-q"]).lines().count(), 1);
    assert_eq!(links(&sb).matches("bth").count(), 1, "{}", links(&sb));
}

#[test]
fn version_0_4_0_results_and_prev_result_chaining() {
    let sb = Sandbox::new();
    let ns = netns(&sb, "ns1");
    let mut c = conf("0.4.0", json!({}));
    c["prevResult"] = json!({
        "cniVersion": "0.4.0",
        "interfaces": [{"name": "tap0"}],
        "ips": [{"version": "4", "address": "192.0.2.9/24", "interface": 0}],
    });
    let r = add(&sb, "ctr-chain", &ns, &c);
    assert_eq!(r["interfaces"][0]["name"], "tap0", "{r}");
    assert_eq!(r["ips"][0]["address"], "192.0.2.9/24");
    assert_eq!(r["ips"][1]["version"], "4");
    assert_eq!(r["ips"][1]["interface"], 2);
    assert_eq!(r["interfaces"][2]["sandbox"], ns.as_str());
}

#[test]
fn bad_input_gets_the_spec_error_codes_and_changes_nothing() {
    let sb = Sandbox::new();
    let ns = netns(&sb, "ns1");
    sb.ok("mkdir -p \"$BERTH_RUN_ROOT\"");
    let before = sb.state();
    let env = attach_env("ctr-bad", &ns);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = conf("1.1.0", json!({}));
        f(&mut c);
        c.to_string()
    };
    let cases: Vec<(String, u64, &str)> = vec![
        (with(&|c| c["cniVersion"] = "0.1.0".into()), 1, "0.1.0"),
        ("{not json".to_string(), 6, "not JSON"),
        (with(&|c| c["network"] = "nope".into()), 7, "nope"),
        (
            with(&|c| c["ipam"] = json!({"type": "host-local"})),
            2,
            "host-local",
        ),
        (
            with(&|c| c["subnet"] = "10.30.0.0/33".into()),
            7,
            "10.30.0.0/33",
        ),
        (
            with(&|c| {
                c["runtimeConfig"] =
                    json!({"portMappings": [{"hostPort": "x", "containerPort": 80}]})
            }),
            6,
            "portMappings",
        ),
        (
            with(&|c| {
                c["runtimeConfig"] = json!({"portMappings": [{"hostPort": 0, "containerPort": 80}]})
            }),
            7,
            "zero port",
        ),
        (
            with(&|c| c["runtimeConfig"] = json!({"ips": ["not-an-ip"]})),
            7,
            "not-an-ip",
        ),
        (
            with(&|c| c["runtimeConfig"] = json!({"ips": ["10.31.0.5/24"]})),
            7,
            "10.31.0.5",
        ),
        (
            with(&|c| c["runtimeConfig"] = json!({"mac": "ff:ff:ff:ff:ff:ff"})),
            7,
            "MAC",
        ),
        (
            with(&|c| c["runtimeConfig"] = json!({"aliases": 5})),
            7,
            "aliases",
        ),
        (
            with(&|c| c["runtimeConfig"] = json!({"ips": ["10.30.0.5/16"]})),
            7,
            "10.30.0.0/24",
        ),
        (
            with(&|c| c["args"] = json!({"cni": {"ips": "10.30.0.5"}})),
            6,
            "args.cni.ips",
        ),
        (
            with(&|c| c["ipam"] = json!({"dataDir": "/var/lib/cni"})),
            2,
            "ipam.dataDir",
        ),
        (
            with(&|c| c["ipam"] = json!({"routes": [{"dst": "10.50.0.0/16", "table": 5}]})),
            2,
            "ipam.routes[0].table",
        ),
        (
            with(&|c| {
                c["ipam"] =
                    json!({"ranges": [[{"subnet": "fd00:30::/64", "rangeStart": "fd00:31::5"}]]})
            }),
            7,
            "rangeStart",
        ),
        (
            with(&|c| c["ipam"] = json!({"routes": [{"dst": "10.50.0.0/16", "gw": "10.99.0.1"}]})),
            7,
            "gateway 10.99.0.1",
        ),
        (
            with(&|c| c["ipam"] = json!({"routes": [{"dst": "fd50::/48"}]})),
            7,
            "no IPv6 subnet",
        ),
    ];
    for (stdin, code, part) in &cases {
        let out = cni(&sb, "ADD", &env, stdin);
        assert_error(&out, *code, part);
    }
    let good = conf("1.1.0", json!({})).to_string();
    assert_error(
        &cni(
            &sb,
            "ADD",
            &[("CNI_CONTAINERID", "x"), ("CNI_IFNAME", "eth0")],
            &good,
        ),
        4,
        "CNI_NETNS",
    );
    assert_error(
        &cni(
            &sb,
            "ADD",
            &[("CNI_NETNS", &ns), ("CNI_IFNAME", "eth0")],
            &good,
        ),
        4,
        "CNI_CONTAINERID",
    );
    assert_error(&cni(&sb, "BOGUS", &env, &good), 4, "BOGUS");
    assert_eq!(sb.state(), before, "bad input changed state");
}

#[test]
fn gc_removes_exactly_the_attachments_not_named() {
    let sb = Sandbox::new();
    let c = conf("1.1.0", json!({}));
    let mut ns = Vec::new();
    for i in 1..=3 {
        let path = netns(&sb, &format!("ns{i}"));
        add(&sb, &format!("ctr-{i}"), &path, &c);
        ns.push(path);
    }
    let keep = |ids: &[&str], key: &str| {
        let mut g = c.clone();
        g[key] = ids
            .iter()
            .map(|id| json!({"containerID": id, "ifname": "eth0"}))
            .collect::<Vec<_>>()
            .into();
        g.to_string()
    };
    let gc = cni(
        &sb,
        "GC",
        &[],
        &keep(&["ctr-1", "ctr-3"], "cni.dev/valid-attachments"),
    );
    assert_eq!((gc.code, gc.stdout.as_str()), (0, ""), "{gc:?}");
    let ips = |p: &str| {
        sb.sh(&format!("nsenter --net={p} ip -br -4 addr show eth0"))
            .stdout
    };
    assert!(ips(&ns[0]).contains("10.30.0."), "ctr-1 lost its interface");
    assert!(
        !ips(&ns[1]).contains("10.30.0."),
        "ctr-2 kept its interface"
    );
    assert!(ips(&ns[2]).contains("10.30.0."), "ctr-3 lost its interface");
    assert_eq!(sb.berth_ok(&["ps", "-q"]).lines().count(), 2);
    // The older key works as well.
    let gc = cni(&sb, "GC", &[], &keep(&["ctr-1"], "cni.dev/attachments"));
    assert_eq!(gc.code, 0, "{gc:?}");
    assert_eq!(sb.berth_ok(&["ps", "-q"]).lines().count(), 1);
    assert!(
        !ips(&ns[2]).contains("10.30.0."),
        "ctr-3 kept its interface"
    );
    // GC before 1.1.0 is refused.
    let mut old = c.clone();
    old["cniVersion"] = "1.0.0".into();
    old["cni.dev/valid-attachments"] = json!([]);
    assert_error(&cni(&sb, "GC", &[], &old.to_string()), 1, "GC");
    assert_eq!(sb.berth_ok(&["ps", "-q"]).lines().count(), 1);
}

#[test]
fn the_contrib_conflist_example_works() {
    let sb = Sandbox::new();
    let ns = netns(&sb, "ns1");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../contrib/cni/berth.conflist");
    let list: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut plugin = list["plugins"][0].clone();
    plugin["name"] = list["name"].clone();
    plugin["cniVersion"] = list["cniVersion"].clone();
    let mut env = attach_env("ctr-contrib", &ns);
    env.push(("CNI_ARGS", "IgnoreUnknown=1;K8S_POD_NAME=contrib"));
    let out = cni(&sb, "ADD", &env, &plugin.to_string());
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(r["ips"][0]["address"], "10.44.0.2/24", "{r}");
    let v = sb.inspect("contrib");
    assert_eq!(v["Owner"], "cni", "{v}");
    let del = cni(
        &sb,
        "DEL",
        &attach_env("ctr-contrib", &ns),
        &plugin.to_string(),
    );
    assert_eq!(del.code, 0, "{del:?}");
}

#[test]
fn status_is_ready_on_1_1_0_and_refused_before() {
    let sb = Sandbox::new();
    let out = cni(&sb, "STATUS", &[], &conf("1.1.0", json!({})).to_string());
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
    let old = cni(&sb, "STATUS", &[], &conf("1.0.0", json!({})).to_string());
    assert_error(&old, 1, "STATUS");
}

/// Runs `script` inside namespace file `ns`.
fn in_ns(sb: &Sandbox, ns: &str, script: &str) -> Out {
    sb.sh(&format!("nsenter --net={ns} sh -c {}", shell_quote(script)))
}

/// Whether a line sent over TCP to `target` (socat syntax) from namespace `ns` (or the
/// sandbox when `None`) comes back, retrying while the server starts.
fn echoes(sb: &Sandbox, ns: Option<&str>, target: &str) -> bool {
    let send = format!("echo ping | timeout 3 socat -T2 - {target},connect-timeout=2");
    (0..20).any(|_| {
        let o = match ns {
            Some(ns) => in_ns(sb, ns, &send),
            None => sb.sh(&send),
        };
        let ok = o.stdout.trim() == "ping";
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        ok
    })
}

fn pub6_elements(sb: &Sandbox) -> String {
    sb.ok("nft -j list map inet berth pub6 2>/dev/null | jq -c '[.nftables[].map.elem // empty]' || true")
        .trim()
        .to_string()
}

#[test]
fn dual_stack_conflist_reaches_over_ipv6_and_publishes_v6_ports() {
    let sb = Sandbox::new();
    let outside = sb.outside();
    let dual = |runtime: Value| {
        let mut c = conf("1.1.0", runtime);
        c["ipam"] = json!({"ranges": [[{"subnet": "fd00:30::/64", "gateway": "fd00:30::1"}]]});
        c
    };
    let (ns1, ns2) = (netns(&sb, "ns1"), netns(&sb, "ns2"));
    let ports =
        json!({"portMappings": [{"hostPort": 8086, "containerPort": 80, "protocol": "tcp"}]});
    let c1 = dual(ports);
    let r1 = add(&sb, "ctr-v6a", &ns1, &c1);
    let r2 = add(&sb, "ctr-v6b", &ns2, &dual(json!({})));
    let v6 = |r: &Value| -> Value {
        r["ips"]
            .as_array()
            .unwrap()
            .iter()
            .find(|ip| ip["address"].as_str().unwrap().contains(':'))
            .cloned()
            .unwrap_or_else(|| panic!("no IPv6 address in {r}"))
    };
    let (a, b) = (v6(&r1), v6(&r2));
    assert_eq!(a["address"], "fd00:30::2/64", "{r1}");
    assert_eq!(a["gateway"], "fd00:30::1", "{r1}");
    assert_eq!(b["address"], "fd00:30::3/64", "{r2}");
    assert_eq!(r1["ips"][0]["address"], "10.30.0.2/24", "{r1}");
    let routes: Vec<&str> = r1["routes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["dst"].as_str())
        .collect();
    assert!(routes.contains(&"::/0"), "{r1}");
    let inside = in_ns(&sb, &ns1, "ip -6 -br addr show eth0").stdout;
    assert!(inside.contains("fd00:30::2/64"), "{inside}");
    // ctr-v6b reaches ctr-v6a over IPv6 (a TCP connection through the bridge).
    sb.spawn(&format!(
        "exec nsenter --net={ns1} socat TCP6-LISTEN:80,fork,reuseaddr EXEC:cat"
    ));
    assert!(
        echoes(&sb, Some(&ns2), "TCP6:[fd00:30::2]:80"),
        "ctr-v6b -> [fd00:30::2]:80"
    );
    // The published port over IPv6, from beyond the host.
    assert_ne!(pub6_elements(&sb), "[]");
    let from_outside = (0..20).any(|_| {
        let r =
            outside.sh("echo ping | timeout 4 socat -T1 - TCP6:[fd99::1]:8086,connect-timeout=1");
        let ok = r.stdout.trim() == "ping";
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        ok
    });
    assert!(from_outside, "outside -> [fd99::1]:8086");
    // DEL takes the v6 address, the veth and the v6 element with it.
    let del = cni(&sb, "DEL", &attach_env("ctr-v6a", &ns1), &c1.to_string());
    assert_eq!((del.code, del.stdout.as_str()), (0, ""), "{del:?}");
    let inside = in_ns(&sb, &ns1, "ip -6 -br addr").stdout;
    assert!(!inside.contains("fd00:30"), "{inside}");
    assert_eq!(pub6_elements(&sb), "[]");
    let after = in_ns(
        &sb,
        &ns2,
        "echo ping | timeout 3 socat -T1 - TCP6:[fd00:30::2]:80,connect-timeout=1",
    );
    assert_ne!(after.stdout.trim(), "ping", "still reached after DEL");
    let del = cni(
        &sb,
        "DEL",
        &attach_env("ctr-v6b", &ns2),
        &dual(json!({})).to_string(),
    );
    assert_eq!(del.code, 0, "{del:?}");
    assert_eq!(sb.berth_ok(&["ps", "-q"]), "");
    assert_no_veth_or_bridge_left(&sb);
    let addrs = sb.ok("ip -6 -br addr");
    assert!(!addrs.contains("fd00:30"), "{addrs}");
}

#[test]
fn ipam_ranges_gateways_routes_and_static_addresses() {
    let sb = Sandbox::new();
    let mut c = conf("1.1.0", json!({}));
    c.as_object_mut().unwrap().remove("subnet");
    c["ipam"] = json!({
        "ranges": [
            [{"subnet": "10.30.0.0/24", "gateway": "10.30.0.254",
              "rangeStart": "10.30.0.100", "rangeEnd": "10.30.0.101"}],
            [{"subnet": "fd00:30::/64", "rangeStart": "fd00:30::100"}],
        ],
        "routes": [
            {"dst": "10.50.0.0/16"},
            {"dst": "10.60.0.0/16", "gw": "10.30.0.9"},
            {"dst": "fd50::/48"},
            {"dst": "0.0.0.0/0"},
        ],
    });
    let ns: Vec<String> = (1..=5).map(|i| netns(&sb, &format!("ns{i}"))).collect();
    let r = add(&sb, "ctr-1", &ns[0], &c);
    assert_eq!(r["ips"][0]["address"], "10.30.0.100/24", "{r}");
    assert_eq!(r["ips"][0]["gateway"], "10.30.0.254", "{r}");
    assert_eq!(r["ips"][1]["address"], "fd00:30::100/64", "{r}");
    let routes: Vec<String> = r["routes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["dst"].as_str().unwrap(),
                r["gw"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        routes,
        [
            "0.0.0.0/0 10.30.0.254",
            "::/0 fd00:30::1",
            "10.50.0.0/16 10.30.0.254",
            "10.60.0.0/16 10.30.0.9",
            "fd50::/48 fd00:30::1"
        ],
        "{r}"
    );
    // The kernel has them: the gateway on the bridge, the routes in the container.
    let br = sb.ok("ip -br addr show br-cni");
    assert!(br.contains("10.30.0.254/24"), "{br}");
    let inside = in_ns(&sb, &ns[0], "ip route; ip -6 route").stdout;
    for want in [
        "default via 10.30.0.254 dev eth0",
        "10.50.0.0/16 via 10.30.0.254 dev eth0",
        "10.60.0.0/16 via 10.30.0.9 dev eth0",
        "fd50::/48 via fd00:30::1 dev eth0",
    ] {
        assert!(inside.contains(want), "{want:?} missing: {inside}");
    }
    // CHECK compares the routes too.
    let mut checked = c.clone();
    checked["prevResult"] = r.clone();
    let env1 = attach_env("ctr-1", &ns[0]);
    let ok = cni(&sb, "CHECK", &env1, &checked.to_string());
    assert_eq!((ok.code, ok.stdout.as_str()), (0, ""), "{ok:?}");
    sb.ok(&format!(
        "nsenter --net={} ip route del 10.60.0.0/16",
        ns[0]
    ));
    let bad = cni(&sb, "CHECK", &env1, &checked.to_string());
    assert_error(&bad, 100, "route to 10.60.0.0/16 via 10.30.0.9");
    // Dynamic addresses stay inside the range; a full range is a conflict that changes
    // nothing; static addresses (args.cni.ips, CNI_ARGS IP) may lie outside it.
    let r = add(&sb, "ctr-2", &ns[1], &c);
    assert_eq!(r["ips"][0]["address"], "10.30.0.101/24", "{r}");
    let before = sb.state();
    let full = cni(&sb, "ADD", &attach_env("ctr-3", &ns[2]), &c.to_string());
    assert_error(
        &full,
        101,
        "no free address left in 10.30.0.100-10.30.0.101",
    );
    assert_eq!(sb.state(), before, "a refused ADD changed state");
    let mut with_args = c.clone();
    with_args["args"] = json!({"cni": {"ips": ["10.30.0.7"]}});
    let r = add(&sb, "ctr-3", &ns[2], &with_args);
    assert_eq!(r["ips"][0]["address"], "10.30.0.7/24", "{r}");
    let mut env = attach_env("ctr-4", &ns[3]);
    env.push(("CNI_ARGS", "IgnoreUnknown=1;IP=10.30.0.8,fd00:30::8"));
    let out = cni(&sb, "ADD", &env, &c.to_string());
    assert_eq!(out.code, 0, "{out:?}");
    let r = out.json();
    assert_eq!(r["ips"][0]["address"], "10.30.0.8/24", "{r}");
    assert_eq!(r["ips"][1]["address"], "fd00:30::8/64", "{r}");
    // DEL frees the range's address (the next ADD gets it) and the routes go with eth0.
    let del = cni(&sb, "DEL", &attach_env("ctr-1", &ns[0]), &c.to_string());
    assert_eq!(del.code, 0, "{del:?}");
    let inside = in_ns(&sb, &ns[0], "ip route; ip -6 route").stdout;
    assert!(!inside.contains("10.50.0.0"), "{inside}");
    let r = add(&sb, "ctr-5", &ns[4], &c);
    assert_eq!(r["ips"][0]["address"], "10.30.0.100/24", "{r}");
}
