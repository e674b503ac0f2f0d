//! IPv6 networks: ULA subnets, addresses and routes in containers, published v6 ports,
//! `[::1]` host ports (relayed by the agent).

use berth_tests::{Out, Sandbox};
use std::time::Duration;

/// Sends a line from the sandbox's host namespace to `addr:port` over TCP or UDP.
fn send(sb: &Sandbox, addr: &str, port: u16, proto: &str) -> Out {
    let kind = if addr.starts_with('[') { "6" } else { "" };
    let target = match proto {
        "udp" => format!("UDP{kind}:{addr}:{port}"),
        _ => format!("TCP{kind}:{addr}:{port},connect-timeout=2"),
    };
    sb.sh(&format!("echo ping | timeout 4 socat -T1 - {target}"))
}

/// Whether `addr:port` echoes a line within about 3 s (servers take a moment to listen).
fn wait_reply(sb: &Sandbox, addr: &str, port: u16, proto: &str) -> bool {
    (0..20).any(|_| {
        let ok = send(sb, addr, port, proto).stdout.trim() == "ping";
        if !ok {
            std::thread::sleep(Duration::from_millis(150));
        }
        ok
    })
}

/// The listening sockets on `port` in the sandbox (`ss -H`, TCP or UDP).
fn listeners(sb: &Sandbox, port: u16, proto: &str) -> String {
    let flag = if proto == "udp" { "-Hlunp" } else { "-Hltnp" };
    sb.ok(&format!("ss {flag} 'sport = :{port}'"))
}

#[test]
fn ipv6_network_gets_a_ula_subnet_from_the_default_pool() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "--ipv6", "six"]);
    let v = sb.berth_ok(&["network", "inspect", "six"]);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    let subnets: Vec<&str> = v[0]["Subnets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Subnet"].as_str().unwrap())
        .collect();
    assert_eq!(subnets.len(), 2, "{v}");
    assert!(subnets[1].starts_with("fd62:6572:7468:"), "{subnets:?}");
    assert!(subnets[1].ends_with("/64"));
    assert_eq!(v[0]["EnableIPv6"], true);
    // A v6 subnet without --ipv6 is refused.
    let r = sb.berth(&["network", "create", "--subnet", "fd00:1::/64", "x"]);
    assert!(r.stderr.contains("add --ipv6"), "{}", r.stderr);
}

#[test]
fn ipv4_only_links_carry_no_ipv6_and_dual_stack_links_do() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "--ipv6", "six"]);
    // On an IPv4-only network eth0 has no IPv6 address at all (no link-local, so no DAD,
    // router solicitation or multicast report), nor does the host end of its veth; lo
    // keeps ::1. On an IPv6 network the container has its ULA and a link-local address.
    let v4 = sb.berth_ok(&[
        "run",
        "--rm",
        "sh",
        "-c",
        "ip -6 -o addr show dev eth0; echo lo: $(ip -6 -o addr show dev lo | wc -l)",
    ]);
    assert_eq!(v4.trim(), "lo: 1", "{v4}");
    sb.berth_ok(&["run", "-d", "--name", "quiet", "sleep", "100000"]);
    let host_end = sb.inspect("quiet")["Networks"]["bridge"]["HostInterface"]
        .as_str()
        .unwrap()
        .to_string();
    // Give DAD/autoconf the time it would take to add a link-local address.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let host6 = sb.ok(&format!("ip -6 -o addr show dev {host_end}"));
    assert_eq!(host6, "", "host end of an IPv4-only veth: {host6}");
    let dual = sb.berth_ok(&[
        "run",
        "--rm",
        "--network",
        "six",
        "sh",
        "-c",
        "sleep 0.3; ip -6 -o addr show dev eth0",
    ]);
    assert!(dual.contains("fd62:6572:7468:"), "{dual}");
    assert!(dual.contains("fe80::"), "{dual}");
}

#[test]
fn ipv6_containers_reach_each_other_and_a_v6_published_port() {
    let sb = Sandbox::new();
    let out = sb.outside();
    sb.berth_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:77::/64",
        "six",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "six",
        "-p",
        "8080:80",
        "socat",
        "TCP6-LISTEN:80,fork,reuseaddr",
        "EXEC:cat",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "six",
        "sleep",
        "300",
    ]);
    let v = sb.inspect("srv");
    let v6 = v["Networks"]["six"]["IPv6Address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(v6, "fd00:77::2");
    assert_eq!(v["Networks"]["six"]["IPv6Gateway"], "fd00:77::1");
    // Routes: a v6 default via the gateway.
    let routes = sb.ok("berth exec cli ip -6 route show default");
    assert!(routes.contains("via fd00:77::1"), "{routes}");
    // Container to container over v6.
    let reach = |from: &str, addr: &str, port: u16| {
        (0..20).any(|_| {
            let r = sb.sh(&format!(
                "echo ping | berth exec {from} timeout 3 socat -T2 - TCP6:[{addr}]:{port},connect-timeout=2"
            ));
            let ok = r.stdout.trim() == "ping";
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(150));
            }
            ok
        })
    };
    assert!(reach("cli", &v6, 80), "cli -> srv over IPv6");
    // The published port over v6: from outside via the host's v6 address, from the host
    // via [::1], and outbound v6 from a container is masqueraded behind the host.
    let from_outside = (0..20).any(|_| {
        let r = out.sh("echo ping | timeout 4 socat -T1 - TCP6:[fd99::1]:8080,connect-timeout=1");
        let ok = r.stdout.trim() == "ping";
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        ok
    });
    assert!(from_outside, "outside -> [fd99::1]:8080");
    let r = sb.sh("echo ping | timeout 4 socat -T2 - TCP6:[fd00:77::1]:8080,connect-timeout=2");
    assert_eq!(r.stdout.trim(), "ping", "host -> its own v6 address {r:?}");
    // [::1] too, through the agent's relay (IPv6 has no route_localnet for NAT).
    assert!(wait_reply(&sb, "[::1]", 8080, "tcp"), "host -> [::1]:8080");
    let mut out = out;
    out.whoami_server6(9999);
    let seen = (0..20)
        .map(|_| {
            std::thread::sleep(std::time::Duration::from_millis(100));
            sb.sh("berth exec cli timeout 3 socat -T2 - TCP6:[fd99::2]:9999,connect-timeout=2")
                .stdout
        })
        .find(|s| !s.trim().is_empty())
        .unwrap_or_default();
    let seen: std::net::Ipv6Addr = seen
        .trim()
        .trim_matches(|c| c == '[' || c == ']')
        .parse()
        .unwrap_or_else(|_| panic!("peer address {seen:?}"));
    assert_eq!(
        seen.to_string(),
        "fd99::1",
        "outbound v6 is masqueraded behind the host"
    );
}

#[test]
fn v6_loopback_ports_are_relayed_and_go_with_the_container() {
    let sb = Sandbox::new();
    sb.berth_ok(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:78::/64",
        "six",
    ]);
    let servers = "socat TCP6-LISTEN:80,fork,reuseaddr EXEC:cat & \
                   socat UDP6-LISTEN:53,fork,reuseaddr EXEC:cat & wait";
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "six",
        "-p",
        "8080:80",
        "-p",
        "[::1]:8081:80",
        "-p",
        "[::1]:5353:53/udp",
        "sh",
        "-c",
        servers,
    ]);
    // An IPv4-only container: the relay leads [::1] to its IPv4 address.
    sb.echo_server("v4", &["-p", "[::1]:8082:80"], 80);
    assert!(wait_reply(&sb, "[::1]", 8081, "tcp"), "explicit [::1]:8081");
    assert!(
        wait_reply(&sb, "[::1]", 8080, "tcp"),
        "every address: [::1]:8080"
    );
    assert!(
        wait_reply(&sb, "[::1]", 8082, "tcp"),
        "[::1] to an IPv4 container"
    );
    assert!(wait_reply(&sb, "[::1]", 5353, "udp"), "UDP via [::1]:5353");
    // [::1]:8081 is [::1] only: not NAT'd on the host's other addresses.
    assert_ne!(send(&sb, "[fd00:78::1]", 8081, "tcp").stdout.trim(), "ping");
    assert_ne!(send(&sb, "127.0.0.1", 8081, "tcp").stdout.trim(), "ping");
    // The agent holds the [::1] sockets; the maps hold no ::1 element.
    for (port, proto) in [(8080, "tcp"), (8081, "tcp"), (5353, "udp")] {
        let l = listeners(&sb, port, proto);
        assert!(
            l.contains("[::1]:") && l.contains("berth"),
            "{port}/{proto}: {l}"
        );
    }
    let maps = sb.ok("nft list map inet berth pub6_addr");
    assert!(!maps.contains("::1 "), "{maps}");
    // berth port and inspect show the mappings.
    let port = sb.berth_ok(&["port", "srv"]);
    for line in [
        "80/tcp -> 0.0.0.0:8080",
        "80/tcp -> [::]:8080",
        "80/tcp -> [::1]:8081",
        "53/udp -> [::1]:5353",
    ] {
        assert!(port.lines().any(|l| l == line), "{line} in {port}");
    }
    let v = sb.inspect("srv");
    assert!(
        v["Ports"]["80/tcp"]
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"HostIp": "::1", "HostPort": "8081"})),
        "{v}"
    );
    assert_eq!(
        v["Ports"]["53/udp"],
        serde_json::json!([{"HostIp": "::1", "HostPort": "5353"}])
    );
    // After rm its [::1] listeners are gone at once; the other container's stays.
    sb.berth_ok(&["rm", "-f", "srv"]);
    for port in [8080, 8081] {
        let r = send(&sb, "[::1]", port, "tcp");
        assert!(r.stderr.contains("Connection refused"), "{port}: {r:?}");
    }
    assert_eq!(listeners(&sb, 5353, "udp").trim(), "");
    assert_eq!(send(&sb, "[::1]", 8082, "tcp").stdout.trim(), "ping");
}

#[test]
fn a_host_listener_on_v6_loopback_is_refused_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.echo_server("a", &["-p", "8091:80"], 80);
    sb.berth_ok(&["network", "create", "--ipv6", "six"]);
    sb.spawn("exec socat TCP6-LISTEN:8090,bind=[::1],reuseaddr,fork EXEC:cat");
    sb.ok("for i in $(seq 50); do ss -ltn | grep -q '\\[::1\\]:8090' && exit 0; sleep 0.1; done; exit 1");
    let before = sb.state();
    for spec in ["[::1]:8090:80", "8090:80", "[::]:8090:80"] {
        let r = sb.berth(&[
            "run",
            "-d",
            "--name",
            "b",
            "--network",
            "six",
            "-p",
            spec,
            "sleep",
            "30",
        ]);
        assert_eq!(r.code, 125, "{spec}: {r:?}");
        assert!(
            r.stderr.contains("in use by a process on the host"),
            "{spec}: {}",
            r.stderr
        );
        assert_eq!(sb.state(), before, "{spec} changed something");
    }
    // The host process keeps its port.
    assert_eq!(send(&sb, "[::1]", 8090, "tcp").stdout.trim(), "ping");
    // [::1] of a port a container publishes on every address is taken too.
    let r = sb.berth(&[
        "run",
        "-d",
        "--name",
        "b",
        "-p",
        "[::1]:8091:80",
        "sleep",
        "30",
    ]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("already published by container a"),
        "{}",
        r.stderr
    );
    // Without the agent nothing would relay [::1]: refused with the reason.
    let r = sb.sh("BERTH_NO_AGENT=1 berth run -d --name b -p '[::1]:8092:80' sleep 30");
    assert_eq!(r.code, 125, "{r:?}");
    assert!(r.stderr.contains("BERTH_NO_AGENT"), "{}", r.stderr);
    assert_eq!(sb.state(), before);
}

#[test]
fn a_host_without_v6_loopback_relays_nothing_and_says_why_for_explicit_ones() {
    let sb = Sandbox::new();
    sb.ok("ip -6 addr del ::1/128 dev lo");
    // Every address: the kernel's part works, and the agent has no [::1] to warn about.
    let r = sb.sh("berth run -d --name web -p 8080:80 socat TCP-LISTEN:80,fork,reuseaddr EXEC:cat");
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stderr.contains("relay"), "{}", r.stderr);
    assert!(wait_reply(&sb, "127.0.0.1", 8080, "tcp"));
    assert_eq!(listeners(&sb, 8080, "tcp").trim(), "");
    // An explicit [::1] is not an address of this host.
    let r = sb.berth(&["run", "-d", "-p", "[::1]:8081:80", "sleep", "30"]);
    assert_eq!(r.code, 125, "{r:?}");
    assert!(
        r.stderr.contains("not an address of this host"),
        "{}",
        r.stderr
    );
}
