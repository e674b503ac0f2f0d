//! Reachability on bridge networks: one network, two networks, connect and disconnect,
//! internal networks, outbound masquerade, icc=false.

use berth_tests::Sandbox;

fn sleeper(sb: &Sandbox, name: &str, net_args: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(net_args);
    args.extend_from_slice(&["sleep", "100000"]);
    sb.berth_ok(&args);
}

#[test]
fn one_network_connects_two_networks_isolate_and_connect_disconnect_switch() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "front"]);
    sb.berth_ok(&["network", "create", "back"]);
    sb.echo_server("server", &["--network", "front"], 7000);
    sleeper(&sb, "peer", &["--network", "front"]);
    sleeper(&sb, "stranger", &["--network", "back"]);
    let server = sb.ip("server", "front");

    assert!(
        sb.wait_reach("peer", &server, 7000),
        "same network must connect"
    );
    assert!(
        !sb.can_reach("stranger", &server, 7000),
        "different networks must not connect"
    );

    sb.berth_ok(&["network", "connect", "front", "stranger"]);
    let v = sb.inspect("stranger");
    assert_eq!(v["Networks"]["front"]["Interface"], "eth1");
    assert!(sb.can_reach("stranger", &server, 7000), "after connect");

    sb.berth_ok(&["network", "disconnect", "front", "stranger"]);
    assert!(sb.inspect("stranger")["Networks"]["front"].is_null());
    assert!(!sb.can_reach("stranger", &server, 7000), "after disconnect");
}

#[test]
fn internal_networks_stay_inside_and_normal_ones_leave_masqueraded() {
    let sb = Sandbox::new();
    let mut outside = sb.outside();
    outside.whoami_server(9000);
    sb.berth_ok(&["network", "create", "--internal", "vault"]);
    sb.echo_server("keeper", &["--network", "vault"], 7001);
    sleeper(&sb, "inner", &["--network", "vault"]);
    sleeper(&sb, "normal", &[]);

    let keeper = sb.ip("keeper", "vault");
    assert!(
        sb.wait_reach("inner", &keeper, 7001),
        "internal peers reach each other"
    );

    let ask = |who: &str| {
        sb.sh(&format!(
            "berth exec {who} timeout 3 socat -T2 - TCP:10.99.0.2:9000,connect-timeout=2 </dev/null"
        ))
    };
    // The outside server answers with the source address it saw.
    let mut seen = String::new();
    for _ in 0..20 {
        seen = ask("normal").stdout.trim().to_string();
        if !seen.is_empty() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
    }
    assert_eq!(
        seen, "10.99.0.1",
        "outbound traffic leaves with the host's address"
    );
    let inner = ask("inner");
    assert_ne!(
        inner.code, 0,
        "internal container must not reach outside: {inner:?}"
    );
    assert!(inner.stdout.trim().is_empty());
}

#[test]
fn icc_false_blocks_peers_but_not_the_gateway() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "-o", "icc=false", "lonely"]);
    sb.echo_server("a", &["--network", "lonely"], 7002);
    sleeper(&sb, "b", &["--network", "lonely"]);
    let a = sb.ip("a", "lonely");
    let gateway = sb.inspect("b")["Networks"]["lonely"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    // The server is up (seen from the host) but its peer cannot reach it.
    let host = sb.sh(&format!(
        "for i in $(seq 20); do echo hi | timeout 3 socat -T2 - TCP:{a}:7002 && exit 0; sleep 0.15; done; exit 1"
    ));
    assert_eq!(
        host.stdout.trim(),
        "hi",
        "host reaches the server: {host:?}"
    );
    assert!(
        !sb.can_reach("b", &a, 7002),
        "icc=false must block container to container"
    );
    sb.ok(&format!("berth exec b ping -c1 -W2 {gateway}"));
}

#[test]
fn host_mode_shares_the_callers_namespace() {
    let sb = Sandbox::new();
    let mine = sb.ok("readlink /proc/self/ns/net");
    let theirs = sb.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "host",
        "readlink",
        "/proc/self/ns/net",
    ]);
    assert_eq!(mine.trim(), theirs);
    assert!(mine.starts_with("net:["));
}

#[test]
fn none_mode_has_only_loopback_and_it_is_up() {
    let sb = Sandbox::new();
    let mine = sb.ok("readlink /proc/self/ns/net");
    let out = sb.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "none",
        "sh",
        "-c",
        "readlink /proc/self/ns/net; ip -br link",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_ne!(lines[0], mine.trim(), "a namespace of its own");
    assert!(lines[1].starts_with("lo "), "{out}");
    assert!(lines[1].contains("UP"), "lo is up: {out}");
}

/// Containers on one bridge talk as on a switch: their flows get no conntrack entry (the
/// kernel's bridge netfilter would otherwise track every one), over IPv4 and IPv6. What is
/// translated stays tracked: a sibling reached through a published port (hairpin), whose
/// replies go to the gateway and are translated back.
#[test]
fn traffic_between_containers_of_a_bridge_is_untracked_but_translated_traffic_is_tracked() {
    let sb = Sandbox::new();
    let _out = sb.outside();
    sb.berth_ok(&["network", "create", "--ipv6", "dual"]);
    // An IPv6 socket, which takes IPv4 connections too.
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "dual",
        "-p",
        "8080:80",
        "socat",
        "TCP6-LISTEN:80,fork,reuseaddr",
        "EXEC:cat",
    ]);
    sleeper(&sb, "client", &["--network", "dual"]);
    let web = sb.ip("web", "dual");
    let web6 = sb.inspect("web")["Networks"]["dual"]["IPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    let entries = |filter: &str| {
        sb.ok(&format!(
            "conntrack -L {filter} 2>/dev/null | grep -c . || true"
        ))
        .trim()
        .to_string()
    };
    assert!(sb.wait_reach("client", &web, 80), "IPv4, direct");
    assert!(
        sb.can_reach("client", &format!("[{web6}]"), 80),
        "IPv6, direct"
    );
    assert_eq!(
        entries(&format!("-p tcp --orig-dst {web} --orig-port-dst 80")),
        "0"
    );
    assert_eq!(
        entries(&format!(
            "-f ipv6 -p tcp --orig-dst {web6} --orig-port-dst 80"
        )),
        "0"
    );
    assert!(
        sb.can_reach("client", "10.99.0.1", 8080),
        "hairpin via a host address"
    );
    assert_ne!(
        entries("-p tcp --orig-dst 10.99.0.1 --orig-port-dst 8080"),
        "0",
        "the translated flow is tracked"
    );
    // Isolation does not rest on conntrack: a container of another network still cannot
    // reach these (untracked) addresses.
    sleeper(&sb, "stranger", &[]);
    assert!(!sb.can_reach("stranger", &web, 80));
}
