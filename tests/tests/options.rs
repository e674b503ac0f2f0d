//! Network and container options: pools, explicit subnets, MTU, bridge name, hostname,
//! aliases, DNS servers, logs and exit codes.

use berth_tests::Sandbox;

#[test]
fn pools_skip_subnets_the_host_already_routes() {
    let sb = Sandbox::new();
    // Something on the host already uses 172.18.0.0/16 (a route) and 172.19.5.0/24 (an address).
    sb.ok(
        "ip link add taken0 type bridge && ip link set taken0 up && \
           ip route add 172.18.0.0/16 dev taken0 && ip addr add 172.19.5.1/24 dev taken0",
    );
    sb.berth_ok(&["network", "create", "n1"]);
    sb.berth_ok(&["network", "create", "n2"]);
    let subnet = |n: &str| {
        let v: serde_json::Value =
            serde_json::from_str(&sb.berth_ok(&["network", "inspect", n])).unwrap();
        v[0]["Subnets"][0]["Subnet"].as_str().unwrap().to_string()
    };
    assert_eq!(subnet("n1"), "172.20.0.0/16");
    assert_eq!(subnet("n2"), "172.21.0.0/16");
}

#[test]
fn explicit_subnet_gateway_range_and_static_ip() {
    let sb = Sandbox::new();
    sb.berth_ok(&[
        "network",
        "create",
        "--subnet",
        "10.30.0.0/16",
        "--gateway",
        "10.30.0.254",
        "--ip-range",
        "10.30.7.0/24",
        "lab",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "first",
        "--network",
        "lab",
        "sleep",
        "100000",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "fixed",
        "--network",
        "lab",
        "--ip",
        "10.30.1.5",
        "sleep",
        "100000",
    ]);
    let v = sb.inspect("first");
    assert_eq!(v["Networks"]["lab"]["IPAddress"], "10.30.7.0");
    assert_eq!(v["Networks"]["lab"]["Gateway"], "10.30.0.254");
    assert_eq!(v["Networks"]["lab"]["IPPrefixLen"], 16);
    assert_eq!(sb.ip("fixed", "lab"), "10.30.1.5");
    // The kernel agrees: the bridge holds the gateway, the container its address and route.
    assert!(sb.ok("ip -4 -br addr").contains("10.30.0.254/16"));
    let route = sb.berth_ok(&["exec", "fixed", "ip", "route", "show", "default"]);
    assert!(
        route.starts_with("default via 10.30.0.254 dev eth0"),
        "{route}"
    );
    sb.ok("berth exec fixed ping -c1 -W2 10.30.7.0");
}

#[test]
fn mtu_and_bridge_name_reach_the_kernel() {
    let sb = Sandbox::new();
    sb.berth_ok(&[
        "network",
        "create",
        "--mtu",
        "1400",
        "-o",
        "bridge_name=br-small",
        "small",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "m",
        "--network",
        "small",
        "sleep",
        "100000",
    ]);
    let bridge = sb.ok("ip -j link show br-small | jq -r '.[0].mtu'");
    assert_eq!(bridge.trim(), "1400");
    let inner = sb.berth_ok(&["exec", "m", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(inner, "1400");
}

#[test]
fn hostname_aliases_dns_logs_and_exit_codes() {
    let sb = Sandbox::new();
    let out = sb.berth_ok(&[
        "run",
        "--rm",
        "--name",
        "named",
        "--hostname",
        "box1",
        "--dns",
        "192.0.2.53",
        "sh",
        "-c",
        "hostname; cat /etc/resolv.conf; grep box1 /etc/hosts",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "box1");
    // DNS goes to the agent on the gateway; --dns becomes the agent's upstream for it.
    assert_eq!(lines[1], "nameserver 172.17.0.1");
    assert!(out.contains("172.17.0.2\tbox1 named"), "{out}");
    // The host's own hostname is untouched.
    assert_ne!(sb.ok("hostname").trim(), "box1");

    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "aliased",
        "--alias",
        "db",
        "--alias",
        "primary",
        "sh",
        "-c",
        "echo to-the-log; sleep 100000",
    ]);
    let v = sb.inspect("aliased");
    assert_eq!(
        v["Networks"]["bridge"]["Aliases"],
        serde_json::json!(["db", "primary"])
    );
    let mut log = String::new();
    for _ in 0..20 {
        log = sb.berth_ok(&["logs", "aliased"]);
        if !log.is_empty() {
            break;
        }
        sb.ok("sleep 0.1");
    }
    assert_eq!(log, "to-the-log");

    let failed = sb.berth(&["run", "--name", "seven", "sh", "-c", "exit 7"]);
    assert_eq!(failed.code, 7);
    let v = sb.inspect("seven");
    assert_eq!(v["State"], "exited");
    assert_eq!(v["ExitCode"], 7);
}
