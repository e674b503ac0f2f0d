//! Real podman with berth as its netavark: names and addresses, published ports, isolation
//! between networks, `network reload`, cleanup on `rm -f`, IPv6 (addresses, routes, AAAA),
//! a later `NETAVARK_DNS_PORT` moving the running agent, and the door's error JSON.

use berth_tests::podman::{host_reaches, leftovers, Backend, Podman};
use berth_tests::{shell_quote, Sandbox};
use serde_json::{json, Value};

#[test]
fn podman_uses_berth_for_names_ports_isolation_reload_and_cleanup() {
    let sb = Sandbox::new();
    let p = Podman::new(&sb, Backend::Berth);
    p.ok("network create n1");
    p.ok("network create n2");
    p.echo_server("a", "--network n1 -p 8080:80");
    p.echo_server("b", "--network n1");
    p.echo_server("c", "--network n2");
    let (ip_a, ip_c) = (p.ip("a", "n1"), p.ip("c", "n2"));
    assert!(p.wait_reaches("b", &ip_a), "b cannot reach a at {ip_a}");
    assert!(p.wait_reaches("b", "a"), "b cannot reach a by name");
    assert!(
        host_reaches(&sb, 8080),
        "-p 8080:80 not reachable on 127.0.0.1"
    );
    assert!(!p.reaches("c", &ip_a), "n2 reached n1");
    assert!(!p.reaches("b", &ip_c), "n1 reached n2");
    // berth shows podman's containers and networks.
    let ps: Value = serde_json::from_str(&sb.berth_ok(&["ps", "--format", "json"])).unwrap();
    let mut names: Vec<&str> = ps
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["Name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b", "c"], "{ps}");
    let net: Value = serde_json::from_str(&sb.berth_ok(&["network", "inspect", "n1"])).unwrap();
    assert_eq!(net[0]["Containers"].as_object().unwrap().len(), 2, "{net}");
    assert_eq!(net[0]["Labels"]["berth.door"], "netavark");
    // berth refuses to remove what podman owns.
    let rm = sb.berth(&["rm", "-f", "a"]);
    assert_ne!(rm.code, 0);
    assert!(rm.stderr.contains("netavark"), "{rm:?}");
    // connect and disconnect go through the same door, on a running container.
    p.ok("network connect n2 b");
    assert!(
        p.wait_reaches("b", &ip_c),
        "b connected to n2 cannot reach c"
    );
    p.ok("network disconnect n2 b");
    assert!(
        !p.reaches("b", &ip_c),
        "b still reaches n2 after disconnect"
    );
    assert!(p.reaches("b", &ip_a), "b lost n1 when leaving n2");
    // A reload keeps everything working.
    p.ok("network reload --all");
    assert!(p.wait_reaches("b", &ip_a), "after reload: b cannot reach a");
    assert!(p.wait_reaches("b", "a"), "after reload: no name");
    assert!(host_reaches(&sb, 8080), "after reload: port gone");
    assert!(!p.reaches("c", &ip_a), "after reload: n2 reached n1");
    // rm -f leaves nothing behind.
    p.ok("rm -f -t 0 a b c");
    assert_eq!(leftovers(&sb), "");
    assert_eq!(sb.berth_ok(&["ps", "-a", "-q"]), "");
}

/// Runs the door directly; asserts one `{"error": ...}` object on stdout and a failure.
fn assert_door_error(sb: &Sandbox, args: &str, stdin: &str, part: &str) {
    let out = sb.sh(&format!(
        "printf %s {} | berth netavark {args}",
        shell_quote(stdin)
    ));
    assert_ne!(out.code, 0, "{args}: {out:?}");
    let v: Value = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("{args}: stdout is not one JSON object ({e}): {out:?}"));
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(msg.contains(part), "{args}: error {msg:?} lacks {part:?}");
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
}

fn options(driver: &str, ports: Value) -> String {
    json!({
        "container_id": "f".repeat(64),
        "container_name": "x",
        "networks": {"n9": {"interface_name": "eth0"}},
        "network_info": {"n9": {
            "name": "n9", "id": "9".repeat(64), "driver": driver,
            "network_interface": "podman9",
            "subnets": [{"subnet": "10.99.9.0/24", "gateway": "10.99.9.1"}],
            "ipv6_enabled": false, "internal": false, "dns_enabled": true,
            "ipam_options": {"driver": "host-local"}
        }},
        "port_mappings": ports,
    })
    .to_string()
}

#[test]
fn netavark_door_errors_are_json_only_and_change_nothing() {
    let sb = Sandbox::new();
    let ns = sb.root().parent().unwrap().join("ns").display().to_string();
    sb.ok(&format!(
        "touch {ns} && unshare --net={ns} true && mkdir -p \"$BERTH_RUN_ROOT\""
    ));
    let before = sb.state();
    let good = options("bridge", json!([]));
    assert_door_error(
        &sb,
        &format!("setup {ns}"),
        "{nope",
        "invalid network options JSON",
    );
    assert_door_error(&sb, "setup /nonexistent/ns", &good, "/nonexistent/ns");
    assert_door_error(
        &sb,
        &format!("setup {ns}"),
        &options("macvlan", json!([])),
        "macvlan",
    );
    let bad_port = json!([{"host_ip": "", "container_port": 80, "host_port": 0, "range": 1, "protocol": "tcp"}]);
    assert_door_error(
        &sb,
        &format!("setup {ns}"),
        &options("bridge", bad_port),
        "port",
    );
    let bad_proto = json!([{"host_ip": "", "container_port": 80, "host_port": 8080, "range": 1, "protocol": "icmp"}]);
    assert_door_error(
        &sb,
        &format!("setup {ns}"),
        &options("bridge", bad_proto),
        "icmp",
    );
    assert_door_error(
        &sb,
        &format!("--rootless true setup {ns}"),
        &good,
        "rootless",
    );
    assert_door_error(&sb, "setup", &good, "namespace path");
    assert_door_error(&sb, "frobnicate", "", "frobnicate");
    assert_eq!(sb.state(), before, "a failed setup changed state");
    // version answers like netavark 1.4.
    let v: Value = serde_json::from_str(&sb.berth_ok(&["netavark", "version"])).unwrap();
    assert_eq!(v["version"], "1.4.0", "{v}");
    // Teardown of what was never set up succeeds and prints nothing.
    let out = sb.sh(&format!(
        "printf %s {} | berth netavark teardown {ns}",
        shell_quote(&good)
    ));
    assert_eq!((out.code, out.stdout.as_str()), (0, ""), "{out:?}");
}

#[test]
fn podman_ipv6_network_through_berth() {
    let sb = Sandbox::new();
    let p = Podman::new(&sb, Backend::Berth);
    p.ok("network create --ipv6 --subnet 10.89.6.0/24 --subnet fd00:89:6::/64 n6");
    p.echo_server("a", "--network n6");
    p.echo_server("b", "--network n6");
    let a6 =
        p.ok("inspect a --format '{{(index .NetworkSettings.Networks \"n6\").GlobalIPv6Address}}'");
    assert!(
        a6.starts_with("fd00:89:6::"),
        "a has no IPv6 address: {a6:?}"
    );
    let gw6 = p.ok("inspect a --format '{{(index .NetworkSettings.Networks \"n6\").IPv6Gateway}}'");
    assert_eq!(gw6, "fd00:89:6::1");
    // The kernel has it: the address on eth0 and a v6 default route via the gateway.
    let addrs = p.ok("exec a ip -6 addr show eth0");
    assert!(addrs.contains(&format!("{a6}/64")), "{addrs}");
    let routes = p.ok("exec a ip -6 route show default");
    assert!(routes.contains("via fd00:89:6::1"), "{routes}");
    // b reaches a over IPv6 by address, and by name through an AAAA answer.
    assert!(p.wait_reaches("b", &a6), "b cannot reach a at {a6}");
    let aaaa = p.sh("exec b nslookup -type=AAAA a");
    assert!(aaaa.stdout.contains(&a6), "no AAAA for a: {aaaa:?}");
    // The agent answers on the IPv6 gateway too (podman lists it as a nameserver).
    let resolv = p.ok("exec b cat /etc/resolv.conf");
    assert!(resolv.contains("nameserver fd00:89:6::1"), "{resolv}");
    let via6 = p.sh("exec b nslookup -type=AAAA a fd00:89:6::1");
    assert!(
        via6.stdout.contains(&a6),
        "no AAAA from [fd00:89:6::1]: {via6:?}"
    );
    // A subnet podman picks itself (a random ULA /64) goes through as well.
    p.ok("network create --ipv6 n6auto");
    let auto = p.ok(&format!(
        "run --rm --network n6auto {} ip -6 -o addr show eth0 scope global",
        berth_tests::podman::IMAGE
    ));
    assert!(auto.contains(" fd"), "no ULA address on n6auto: {auto}");
    // rm -f leaves nothing: no link, address or firewall element.
    p.ok("rm -f -t 0 a b");
    assert_eq!(leftovers(&sb), "");
    assert_eq!(sb.berth_ok(&["ps", "-a", "-q"]), "");
}

/// A persistent network namespace at `name` beside the sandbox's berth root, as a runtime
/// makes one for its container; returns its path.
fn netns_file(sb: &Sandbox, name: &str) -> String {
    let p = sb.root().parent().unwrap().join(name).display().to_string();
    sb.ok(&format!("touch {p} && unshare --net={p} true"));
    p
}

/// `NetworkOptions` for container `name` (id: 64 × `id`) on n9.
fn options_for(id: char, name: &str) -> String {
    let mut v: Value = serde_json::from_str(&options("bridge", json!([]))).unwrap();
    v["container_id"] = id.to_string().repeat(64).into();
    v["container_name"] = name.into();
    v.to_string()
}

#[test]
fn a_later_netavark_dns_port_moves_the_running_agent() {
    let sb = Sandbox::new();
    let ns = |n: &str| netns_file(&sb, n);
    let setup = |port: Option<u16>, netns: &str, opts: &str| {
        let env = port
            .map(|p| format!("NETAVARK_DNS_PORT={p} "))
            .unwrap_or_default();
        sb.sh(&format!(
            "printf %s {} | {env}berth netavark setup {netns}",
            shell_quote(opts)
        ))
    };
    let (ns1, ns2, ns3) = (ns("ns1"), ns("ns2"), ns("ns3"));
    // What the agent answers for `name` on the gateway at `port`, asked from the first
    // container (names are answered to the network's own containers).
    let answers = |port: u16, name: &str| {
        sb.sh(&format!(
            "nsenter --net={ns1} dig +short +time=1 +tries=1 -p {port} @10.99.9.1 {name}"
        ))
        .stdout
        .trim()
        .to_string()
    };
    let out = setup(Some(5301), &ns1, &options_for('a', "one"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(answers(5301, "one"), "10.99.9.2");
    let pid = sb.ok("cat \"$BERTH_RUN_ROOT/agent.pid\"");
    // A later setup with another port: the running agent moves there.
    let out = setup(Some(5302), &ns2, &options_for('b', "two"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(answers(5302, "two"), "10.99.9.3");
    assert_eq!(answers(5302, "one"), "10.99.9.2");
    let old = answers(5301, "one");
    assert!(
        !old.contains("10.99.9.2"),
        "still answers on the old port: {old}"
    );
    assert_eq!(
        sb.ok("cat \"$BERTH_RUN_ROOT/agent.pid\""),
        pid,
        "agent restarted"
    );
    // A setup without NETAVARK_DNS_PORT leaves the port as it is.
    let out = setup(None, &ns3, &options_for('c', "three"));
    assert_eq!(out.code, 0, "{out:?}");
    assert_eq!(answers(5302, "three"), "10.99.9.4");
    // A port the agent cannot take (held by another socket): the setup still succeeds,
    // with a warning, and DNS stays where it was.
    sb.spawn("exec socat UDP4-RECVFROM:5303,bind=10.99.9.1,fork /dev/null");
    let held = (0..30).any(|_| {
        let ss = sb.ok("ss -Hlun 'sport = :5303'");
        std::thread::sleep(std::time::Duration::from_millis(100));
        !ss.trim().is_empty()
    });
    assert!(held, "socat did not bind 10.99.9.1:5303");
    let ns4 = ns("ns4");
    let out = setup(Some(5303), &ns4, &options_for('d', "four"));
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stderr.contains("5303"), "no warning: {out:?}");
    assert_eq!(answers(5302, "four"), "10.99.9.5");
    // A bad value is refused before anything changes.
    let before = sb.state();
    let out = sb.sh(&format!(
        "printf %s {} | NETAVARK_DNS_PORT=nope berth netavark setup {ns4}",
        shell_quote(&options_for('e', "five"))
    ));
    assert_ne!(out.code, 0);
    assert!(out.stdout.contains("NETAVARK_DNS_PORT"), "{out:?}");
    assert_eq!(sb.state(), before, "a refused setup changed state");
}

#[test]
fn a_setup_without_names_or_ports_does_not_wait_for_the_agent_reload_but_gets_it() {
    let sb = Sandbox::new();
    let (first, netns) = (netns_file(&sb, "nsf"), netns_file(&sb, "nsq"));
    // A first setup (DNS on) starts the agent, which reads the store as it starts.
    let out = sb.sh(&format!(
        "printf %s {} | berth netavark setup {first}",
        shell_quote(&options_for('f', "first"))
    ));
    assert_eq!(out.code, 0, "{out:?}");
    // podman's default network: DNS off, no ports. The running agent answers
    // `reload-soon` first and reloads after.
    let mut v: Value = serde_json::from_str(&options_for('q', "quiet")).unwrap();
    v["network_info"]["n9"]["dns_enabled"] = false.into();
    let out = sb.sh(&format!(
        "printf %s {} | berth netavark setup {netns}",
        shell_quote(&v.to_string())
    ));
    assert_eq!(out.code, 0, "{out:?}");
    let status: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(status["n9"]["dns_server_ips"], json!([]), "{status}");
    assert!(out.stderr.is_empty(), "{out:?}");
    // The reload still happens: the agent's DNS on the gateway learns the name.
    let answer = berth_tests::eventually(
        || {
            sb.sh(&format!(
                "nsenter --net={netns} dig +short +time=1 +tries=1 @10.99.9.1 quiet"
            ))
            .stdout
            .trim()
            .to_string()
        },
        |a| a == "10.99.9.3",
    );
    assert_eq!(answer, "10.99.9.3");
    let metrics = sb.ok("socat -T2 - TCP:127.0.0.1:9355 <<< $'GET /metrics HTTP/1.0\\r\\n\\r\\n'");
    assert!(
        metrics.contains(r#"berth_operations_total{op="setup"} 2"#),
        "the setup's timing did not reach the agent: {metrics}"
    );
}

#[test]
fn a_setup_with_ports_has_its_relays_listening_on_return_and_its_teardown_closes_them() {
    let sb = Sandbox::new();
    let (first, netns) = (netns_file(&sb, "nsf"), netns_file(&sb, "nsp"));
    let door = |verb: &str, netns: &str, opts: &str| {
        let out = sb.sh(&format!(
            "printf %s {} | berth netavark {verb} {netns}",
            shell_quote(opts)
        ));
        assert_eq!(out.code, 0, "{verb}: {out:?}");
        out
    };
    // A first setup (DNS on) starts the agent.
    door("setup", &first, &options_for('f', "first"));
    // DNS off, one published port: the door binds [::1]:18080 itself and passes the socket
    // to the agent (`adopt-ports`, not waited for), which relays it and reloads the rest
    // (DNS) later.
    let mut v: Value = serde_json::from_str(&options_for('p', "ported")).unwrap();
    v["network_info"]["n9"]["dns_enabled"] = false.into();
    v["port_mappings"] = json!([{"host_ip": "", "container_port": 80, "host_port": 18080,
                                 "range": 1, "protocol": "tcp"}]);
    let opts = v.to_string();
    let out = door("setup", &netns, &opts);
    assert!(out.stderr.is_empty(), "{out:?}");
    // Listening when the setup returns, not a moment later.
    let ss = sb.ok("ss -Hltn 'sport = :18080'");
    assert!(
        ss.contains("[::1]:18080"),
        "no [::1] relay at setup's end: {ss:?}"
    );
    sb.spawn(&format!(
        "exec nsenter --net={netns} socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo relayed'"
    ));
    let reply = berth_tests::eventually(
        || sb.sh("socat -T2 - TCP6:[::1]:18080 </dev/null").stdout,
        |r| r.contains("relayed"),
    );
    assert!(
        reply.contains("relayed"),
        "[::1]:18080 -> container: {reply:?}"
    );
    // The deferred reload still comes: the agent's DNS learns the name.
    let answer = berth_tests::eventually(
        || {
            sb.sh(&format!(
                "nsenter --net={netns} dig +short +time=1 +tries=1 @10.99.9.1 ported"
            ))
            .stdout
            .trim()
            .to_string()
        },
        |a| a == "10.99.9.3",
    );
    assert_eq!(answer, "10.99.9.3");
    // The teardown hands the links to the agent, which closes the relay before answering.
    door("teardown", &netns, &opts);
    let ss = sb.ok("ss -Hltn 'sport = :18080'");
    assert_eq!(ss.trim(), "", "[::1]:18080 still relayed after teardown");
    let metrics = sb.ok("socat -T2 - TCP:127.0.0.1:9355 <<< $'GET /metrics HTTP/1.0\\r\\n\\r\\n'");
    assert!(
        metrics.contains(r#"berth_operations_total{op="setup"} 2"#),
        "the setup's timing did not reach the agent: {metrics}"
    );
}

/// Valid frames in berth's WAL (`mxFrame` of the WAL index header, offset 16).
fn wal_frames(sb: &Sandbox) -> u32 {
    let shm = std::fs::read(sb.root().join("berth.db-shm")).unwrap_or_default();
    shm.get(16..20)
        .map_or(0, |b| u32::from_ne_bytes(b.try_into().unwrap()))
}

#[test]
fn with_the_agent_running_its_checkpointer_keeps_the_wal_short() {
    let sb = Sandbox::new();
    let netns = netns_file(&sb, "nsw");
    let opts = shell_quote(&options_for('w', "walker"));
    let round = || {
        sb.ok(&format!(
            "printf %s {opts} | berth netavark setup {netns} >/dev/null && \
             printf %s {opts} | berth netavark teardown {netns}"
        ));
    };
    // The first setup starts the agent; from then on the doors leave checkpoints to it
    // (store::Checkpoints::Elsewhere: that they do is crates/store/tests/wal.rs's test).
    // Its checkpointer copies the WAL back past 64 frames (looking every 200 ms), and the
    // next write then starts the WAL over: long before the 1000 frames at which the doors
    // would checkpoint themselves, were the agent not doing it.
    // Two rounds first: the very first setup, before the agent's socket exists,
    // checkpoints itself.
    round();
    round();
    let (mut most, mut restarted) = (wal_frames(&sb), false);
    for _ in 0..80 {
        round();
        let frames = wal_frames(&sb);
        if frames < most {
            restarted = frames <= 64;
            break;
        }
        most = frames;
    }
    assert!(most > 0, "no WAL index at {}", sb.root().display());
    assert!(
        restarted,
        "the WAL never started over (it reached {most} frames)"
    );
    assert!(
        most < 900,
        "the WAL reached {most} frames before it started over"
    );
    assert!(sb.settle());
}
