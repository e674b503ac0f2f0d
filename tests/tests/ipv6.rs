//! IPv6 networks: ULA subnets, addresses and routes in containers, published v6 ports.

use berth_tests::Sandbox;

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
    // [::1] cannot be published by NAT alone (IPv6 has no route_localnet): refused, clearly.
    let r = sb.berth(&[
        "run",
        "-d",
        "--network",
        "six",
        "-p",
        "[::1]:8081:80",
        "sleep",
        "9",
    ]);
    assert!(r.stderr.contains("IPv6 loopback"), "{}", r.stderr);
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
