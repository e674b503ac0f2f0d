//! `berth diagnose`: for each verdict, a test builds that fault for real, checks that the
//! traffic really fails (where it can be tried), and that diagnose names the cause with
//! exit 1; a healthy pair gives exit 0.

use berth_tests::{Out, Sandbox};

/// `front` with `web` (echo server on 80) and `cli`; returns web's address.
fn pair(sb: &Sandbox) -> String {
    pair_on(sb, &[])
}

/// [`pair`] on a network created with `opts`.
fn pair_on(sb: &Sandbox, opts: &[&str]) -> String {
    let mut create = vec!["network", "create"];
    create.extend_from_slice(opts);
    create.push("front");
    sb.berth_ok(&create);
    sb.echo_server("web", &["--network", "front"], 80);
    sleeper(sb, "cli", &["--network", "front"]);
    let web = sb.ip("web", "front");
    assert!(sb.wait_reach("cli", &web, 80), "healthy pair must connect");
    web
}

fn sleeper(sb: &Sandbox, name: &str, net_args: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(net_args);
    args.extend_from_slice(&["sleep", "100000"]);
    sb.berth_ok(&args);
}

/// Runs `berth diagnose --format json ARGS`; returns the exit code and the report.
fn diagnose(sb: &Sandbox, src: &str, dst: &str) -> (i32, serde_json::Value, Out) {
    let out = sb.berth(&["diagnose", "--format", "json", src, dst]);
    let v = out.json();
    (out.code, v, out)
}

/// Asserts the verdict code, exit 1, and that the cause mentions every word of `names`.
fn expect(sb: &Sandbox, src: &str, dst: &str, code: &str, names: &[&str]) -> serde_json::Value {
    let (rc, v, out) = diagnose(sb, src, dst);
    assert_eq!(v["verdict"]["code"], code, "{}", out.stdout);
    assert_eq!(rc, 1, "an unreachable destination exits 1: {}", out.stdout);
    assert_eq!(v["reachable"], false);
    let cause = v["verdict"]["cause"].as_str().unwrap_or_default();
    for n in names {
        assert!(cause.contains(n), "cause {cause:?} should name {n:?}");
    }
    assert!(
        !v["verdict"]["fix"].as_str().unwrap_or_default().is_empty(),
        "a verdict comes with a fix: {}",
        out.stdout
    );
    let failed: Vec<_> = v["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .filter(|c| c["ok"] == false)
        .collect();
    assert_eq!(
        failed.len(),
        1,
        "the walk stops at its first failed check: {}",
        out.stdout
    );
    v
}

#[test]
fn a_healthy_pair_is_reachable_with_exit_0_and_every_check_passed() {
    let sb = Sandbox::new();
    pair(&sb);
    let (rc, v, out) = diagnose(&sb, "cli", "web:80");
    assert_eq!(rc, 0, "{}", out.stdout);
    assert_eq!(v["verdict"]["code"], "reachable");
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == true));
    assert!(
        v["checks"].as_array().unwrap().len() > 10,
        "the walk shows its steps"
    );
    // The table form ends in the verdict line.
    let t = sb.berth(&["diagnose", "cli", "web:80"]);
    assert_eq!(t.code, 0);
    assert!(t.stdout.contains("[ok  ] TCP connect to"), "{}", t.stdout);
    assert!(t.stdout.contains("verdict: reachable"), "{}", t.stdout);
}

#[test]
fn the_host_and_the_outside_through_a_published_port_are_reachable_too() {
    let sb = Sandbox::new();
    let outside = sb.outside();
    sb.berth_ok(&["network", "create", "front"]);
    sb.echo_server("web", &["--network", "front", "-p", "8080:80"], 80);
    let web = sb.ip("web", "front");
    assert!(sb.wait_reach_whoami_host(&web));
    let real = outside.sh("echo hi | timeout 3 socat -T2 - TCP:10.99.0.1:8080,connect-timeout=2");
    assert_eq!(
        real.stdout.trim(),
        "hi",
        "published port works from outside: {real:?}"
    );
    for (src, dst) in [
        ("host", "web:80"),
        ("10.99.0.2", "10.99.0.1:8080"),
        ("web", "host"),
    ] {
        let (rc, v, out) = diagnose(&sb, src, dst);
        assert_eq!(
            (rc, v["verdict"]["code"].as_str()),
            (0, Some("reachable")),
            "{src} -> {dst}: {}",
            out.stdout
        );
    }
}

#[test]
fn nothing_listening_is_probed_from_inside_the_source() {
    let sb = Sandbox::new();
    let web = pair(&sb);
    assert!(!sb.can_reach("cli", &web, 81));
    let v = expect(
        &sb,
        "cli",
        "web:81",
        "nothing-listening",
        &[&format!("{web}:81")],
    );
    assert!(v["checks"].as_array().unwrap().last().unwrap()["name"]
        .as_str()
        .unwrap()
        .contains("from cli"));
}

#[test]
fn containers_on_different_networks_share_no_network_and_both_are_named() {
    let sb = Sandbox::new();
    let web = pair(&sb);
    sb.berth_ok(&["network", "create", "back"]);
    sleeper(&sb, "db", &["--network", "back"]);
    assert!(!sb.can_reach("db", &web, 80));
    let v = expect(
        &sb,
        "db",
        "web:80",
        "no-shared-network",
        &["db is on back", "web is on front"],
    );
    assert!(v["verdict"]["fix"]
        .as_str()
        .unwrap()
        .contains("berth network connect front db"));
}

#[test]
fn an_internal_network_keeps_traffic_in() {
    let sb = Sandbox::new();
    let mut outside = sb.outside();
    outside.whoami_server(9000);
    sb.berth_ok(&["network", "create", "--internal", "vault"]);
    sleeper(&sb, "keeper", &["--network", "vault"]);
    assert!(!sb.can_reach("keeper", "10.99.0.2", 9000));
    expect(
        &sb,
        "keeper",
        "10.99.0.2:9000",
        "internal-network",
        &["vault"],
    );
}

#[test]
fn icc_off_isolates_containers_of_one_network() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "-o", "icc=false", "quiet"]);
    sb.echo_server("a", &["--network", "quiet"], 80);
    sleeper(&sb, "b", &["--network", "quiet"]);
    assert!(!sb.can_reach("b", &sb.ip("a", "quiet"), 80));
    expect(&sb, "b", "a:80", "icc-off", &["quiet", "icc=false"]);
}

#[test]
fn an_interface_down_is_named() {
    let sb = Sandbox::new();
    let web = pair(&sb);
    sb.ok("berth exec web ip link set eth0 down");
    assert!(!sb.can_reach("cli", &web, 80));
    expect(&sb, "cli", "web:80", "interface-down", &["eth0", "web"]);
}

#[test]
fn a_missing_address_is_named() {
    let sb = Sandbox::new();
    let web = pair(&sb);
    sb.ok("berth exec web ip addr flush dev eth0");
    assert!(!sb.can_reach("cli", &web, 80));
    expect(&sb, "cli", "web:80", "missing-address", &[&web, "web"]);
}

#[test]
fn a_missing_default_route_is_named() {
    let sb = Sandbox::new();
    let mut outside = sb.outside();
    outside.whoami_server(9000);
    sb.berth_ok(&["network", "create", "front"]);
    sleeper(&sb, "cli", &["--network", "front"]);
    assert!(
        sb.wait_reach_whoami("cli"),
        "outside reachable before the fault"
    );
    sb.ok("berth exec cli ip route del default");
    assert!(!sb.wait_reach_whoami("cli"));
    let v = expect(
        &sb,
        "cli",
        "10.99.0.2:9000",
        "missing-route",
        &["10.99.0.2"],
    );
    assert!(v["verdict"]["fix"]
        .as_str()
        .unwrap()
        .contains("ip route add default via"));
}

#[test]
fn a_veth_off_its_bridge_is_not_programmed() {
    let sb = Sandbox::new();
    let web = pair(&sb);
    let host_if = sb.inspect("web")["Networks"]["front"]["HostInterface"]
        .as_str()
        .expect("inspect names the host interface")
        .to_string();
    sb.ok(&format!("ip link set {host_if} nomaster"));
    // The fast path would carry frames to a MAC cli has already resolved; a new ARP
    // request (broadcast, by the bridge) finds nobody.
    sb.ok("berth exec cli ip neigh flush dev eth0");
    assert!(!sb.can_reach("cli", &web, 80));
    expect(
        &sb,
        "cli",
        "web:80",
        "not-programmed",
        &[&host_if, "not a port of bridge"],
    );
}

#[test]
fn a_wrong_neighbour_entry_is_not_programmed() {
    let sb = Sandbox::new();
    let web = pair(&sb);
    sb.ok(&format!(
        "berth exec cli ip neigh replace {web} lladdr 02:00:00:00:00:99 dev eth0 nud permanent"
    ));
    assert!(!sb.can_reach("cli", &web, 80));
    expect(
        &sb,
        "cli",
        "web:80",
        "not-programmed",
        &["02:00:00:00:00:99", &web],
    );
}

#[test]
fn berths_own_rule_dropping_outside_traffic_to_an_unpublished_port_is_named() {
    let sb = Sandbox::new();
    let outside = sb.outside();
    let web = pair(&sb);
    let from_outside = outside.sh(&format!(
        "echo hi | timeout 3 socat -T2 - TCP:{web}:80,connect-timeout=2"
    ));
    assert_ne!(from_outside.code, 0, "berth must drop it: {from_outside:?}");
    let v = expect(
        &sb,
        "10.99.0.2",
        "web:80",
        "berth-rule",
        &["oifname @bridges drop", "inet berth"],
    );
    assert!(v["verdict"]["fix"].as_str().unwrap().contains("-p 80:80"));
}

#[test]
fn another_tables_forward_policy_drop_is_named() {
    let sb = Sandbox::new();
    // On the bridge: the fast path skips every forward hook (fastpath.rs tests that).
    let web = pair_on(&sb, &["-o", "fastpath=false"]);
    sb.ok("nft add table ip filter && nft add chain ip filter FORWARD '{ type filter hook forward priority 0; policy drop; }'");
    assert!(
        !sb.can_reach("cli", &web, 80),
        "br_netfilter passes bridged traffic through FORWARD"
    );
    let v = expect(
        &sb,
        "cli",
        "web:80",
        "other-table",
        &["ip filter", "FORWARD", "policy drop"],
    );
    assert!(v["verdict"]["fix"]
        .as_str()
        .unwrap()
        .contains("iptables -I FORWARD"));
    // An accept for the bridge in that chain lets it through, and diagnose agrees.
    let br = sb.ok("berth network inspect front | jq -r '.[0].Options.bridge_name'");
    sb.ok(&format!(
        "nft insert rule ip filter FORWARD iifname {} accept",
        br.trim()
    ));
    assert!(sb.wait_reach("cli", &web, 80));
    assert_eq!(diagnose(&sb, "cli", "web:80").0, 0);
}

#[test]
fn a_port_published_on_another_host_address_is_named() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "front"]);
    sb.echo_server(
        "web",
        &["--network", "front", "-p", "127.0.0.1:8080:80"],
        80,
    );
    sleeper(&sb, "cli", &["--network", "front"]);
    let gw = sb.ok("berth network inspect front | jq -r '.[0].Subnets[0].Gateway'");
    assert!(!sb.can_reach("cli", gw.trim(), 8080));
    let v = expect(
        &sb,
        "cli",
        "host:8080",
        "published-other-ip",
        &["127.0.0.1", gw.trim(), "web"],
    );
    assert!(v["verdict"]["fix"].as_str().unwrap().contains("-p 8080:80"));
}

#[test]
fn a_published_port_missing_from_berths_map_is_not_programmed() {
    let sb = Sandbox::new();
    let outside = sb.outside();
    sb.berth_ok(&["network", "create", "front"]);
    sb.echo_server("web", &["--network", "front", "-p", "8080:80"], 80);
    let web = sb.ip("web", "front");
    assert!(sb.wait_reach_whoami_host(&web));
    assert_eq!(diagnose(&sb, "10.99.0.2", "10.99.0.1:8080").0, 0);
    sb.ok("nft delete element inet berth pub4 '{ tcp . 8080 }'");
    let real = outside.sh("echo hi | timeout 3 socat -T2 - TCP:10.99.0.1:8080,connect-timeout=2");
    assert_ne!(
        real.stdout.trim(),
        "hi",
        "without the element nothing is forwarded"
    );
    let v = expect(
        &sb,
        "10.99.0.2",
        "10.99.0.1:8080",
        "not-programmed",
        &["10.99.0.1:8080/tcp", "web"],
    );
    assert!(v["verdict"]["fix"]
        .as_str()
        .unwrap()
        .contains("berth firewall reload"));
    sb.berth_ok(&["firewall", "reload"]);
    assert_eq!(diagnose(&sb, "10.99.0.2", "10.99.0.1:8080").0, 0);
}

#[test]
fn bad_input_is_one_line_and_exit_1() {
    let sb = Sandbox::new();
    for (src, dst, says) in [
        ("nobody", "host", "container nobody not found"),
        ("host", "web:http", "invalid destination"),
        ("host", "10.1.2.3", "nothing of berth's lies between"),
    ] {
        let out = sb.berth(&["diagnose", src, dst]);
        assert_eq!(out.code, 1, "{out:?}");
        assert!(
            out.stderr.starts_with("Error: ") && out.stderr.contains(says),
            "{out:?}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out:?}");
    }
    let usage = sb.berth(&["diagnose", "only-one"]);
    assert_eq!(usage.code, 2);
}

trait Whoami {
    fn wait_reach_whoami(&self, from: &str) -> bool;
    fn wait_reach_whoami_host(&self, addr: &str) -> bool;
}

impl Whoami for Sandbox {
    /// Whether `from` gets an answer from the outside whoami server (a few tries).
    fn wait_reach_whoami(&self, from: &str) -> bool {
        (0..10).any(|_| {
            let out = self.sh(&format!(
                "berth exec {from} timeout 3 socat -T2 - TCP:10.99.0.2:9000,connect-timeout=2 </dev/null"
            ));
            let ok = out.code == 0 && !out.stdout.trim().is_empty();
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(150));
            }
            ok
        })
    }

    /// Whether the host (the sandbox namespace) reaches the echo server at `addr:80`.
    fn wait_reach_whoami_host(&self, addr: &str) -> bool {
        (0..20).any(|_| {
            let out = self.sh(&format!(
                "echo hi | timeout 3 socat -T2 - TCP:{addr}:80,connect-timeout=2"
            ));
            let ok = out.stdout.trim() == "hi";
            if !ok {
                std::thread::sleep(std::time::Duration::from_millis(150));
            }
            ok
        })
    }
}
