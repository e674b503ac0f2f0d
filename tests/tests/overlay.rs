//! Overlay networks across hosts: the multi-host harness (tests/src/cluster.rs), one etcd,
//! hosts as namespaces on an underlay bridge.

use berth_tests::cluster::{eventually, Cluster, STORE};
use berth_tests::Sandbox;
use std::time::Duration;

fn overlay(h: &Sandbox, name: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&h.berth_ok(&["network", "inspect", name])).expect("JSON");
    v[0].clone()
}

/// The VXLAN device of network `name` on host `h`.
fn vxlan(h: &Sandbox, name: &str) -> String {
    let id = overlay(h, name)["Id"].as_str().unwrap().to_string();
    format!("vx-{}", &id[..12])
}

/// The permanent neighbour entries (IP addresses) of the overlay's VXLAN device on `h`.
fn neighbours(h: &Sandbox, name: &str) -> String {
    h.ok(&format!(
        "ip neigh show dev {} nud permanent",
        vxlan(h, name)
    ))
}

fn resolves(h: &Sandbox, container: &str, name: &str) -> Option<String> {
    let out = h.sh(&format!(
        "berth exec {container} dig +short +time=1 +tries=2 {name}"
    ));
    let ip = out.stdout.trim().to_string();
    (out.code == 0 && !ip.is_empty()).then_some(ip)
}

#[test]
fn three_hosts_reach_each_other_by_ip_and_name_and_overlays_are_isolated() {
    let c = Cluster::new(3);
    let (h1, h2, h3) = (c.host(1), c.host(2), c.host(3));
    h1.berth_ok(&["network", "create", "-d", "overlay", "front"]);
    h2.berth_ok(&["network", "create", "-d", "overlay", "back"]);
    // Listed on every host, with one VNI and subnet.
    let f1 = overlay(h1, "front");
    let f3 = overlay(h3, "front");
    assert_eq!(f1["Driver"], "overlay");
    assert_eq!(f1["Scope"], "global");
    assert_eq!(f1["VNI"], f3["VNI"]);
    assert_eq!(f1["Subnets"], f3["Subnets"]);
    assert_eq!(f1["Subnets"][0]["Subnet"], "10.0.0.0/24");
    assert_ne!(overlay(h3, "back")["VNI"], f1["VNI"]);
    assert_eq!(overlay(h3, "back")["Subnets"][0]["Subnet"], "10.0.1.0/24");
    let ls = h3.berth_ok(&["network", "ls"]);
    assert!(ls.contains("front") && ls.contains("back"), "{ls}");

    h1.echo_server("a1", &["--network", "front"], 7000);
    h2.echo_server("a2", &["--network", "front"], 7000);
    h3.echo_server("a3", &["--network", "front"], 7000);
    h3.echo_server("b3", &["--network", "back"], 7000);
    let ips: Vec<String> = [(h1, "a1"), (h2, "a2"), (h3, "a3")]
        .iter()
        .map(|(h, n)| h.ip(n, "front"))
        .collect();
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        3,
        "addresses are unique across hosts: {ips:?}"
    );
    // The MTU leaves room for the VXLAN headers.
    assert!(h1
        .ok("berth exec a1 ip link show eth0")
        .contains("mtu 1450"));

    // By IP and by name, TCP and ICMP, every direction.
    assert!(h1.wait_reach("a1", &ips[1], 7000), "a1 -> a2 by IP");
    assert!(h1.wait_reach("a1", &ips[2], 7000), "a1 -> a3 by IP");
    assert!(h3.wait_reach("a3", "a1", 7000), "a3 -> a1 by name");
    assert!(h2.wait_reach("a2", "a3", 7000), "a2 -> a3 by name");
    assert_eq!(resolves(h1, "a1", "a2").as_deref(), Some(ips[1].as_str()));
    h1.ok("berth exec a1 ping -c1 -W2 a3");
    h2.ok(&format!("berth exec a2 ping -c1 -W2 {}", ips[0]));

    // Two overlays do not reach each other, not even on one host.
    let b3 = h3.ip("b3", "back");
    assert!(!h1.can_reach("a1", &b3, 7000), "front must not reach back");
    assert!(
        !h3.can_reach("b3", &ips[0], 7000),
        "back must not reach front"
    );
    assert!(
        !h3.can_reach("b3", &ips[2], 7000),
        "back must not reach front on one host"
    );
    assert_eq!(resolves(h3, "b3", "a1"), None);

    // network rm is refused while any host has endpoints, and says which.
    let out = h2.berth(&["network", "rm", "back"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("host3"), "{}", out.stderr);

    // A container removed on host 1 disappears from hosts 2 and 3.
    assert!(neighbours(h2, "front").contains(&ips[0]));
    h1.berth_ok(&["rm", "-f", "a1"]);
    for h in [h2, h3] {
        assert!(
            eventually(Duration::from_secs(5), || !neighbours(h, "front")
                .contains(&ips[0])),
            "a1's neighbour entry stays"
        );
    }
    assert!(!h2.can_reach("a2", &ips[0], 7000));
    assert!(eventually(Duration::from_secs(5), || resolves(
        h3, "a3", "a1"
    )
    .is_none()));

    // Removal once no host has endpoints: gone everywhere, from a host that never listed it.
    h3.berth_ok(&["rm", "-f", "b3"]);
    h1.ok("BERTH_ROOT=$BERTH_ROOT-new BERTH_RUN_ROOT=$BERTH_RUN_ROOT-new berth network rm back");
    assert_eq!(h3.berth(&["network", "inspect", "back"]).code, 1);
    assert!(!h1.berth_ok(&["network", "ls"]).contains("back"));
}

fn kill_agent(h: &Sandbox) {
    h.ok("kill -9 $(cat \"$BERTH_RUN_ROOT/agent.pid\")");
    assert!(eventually(Duration::from_secs(5), || h
        .sh("kill -0 $(cat \"$BERTH_RUN_ROOT/agent.pid\") 2>/dev/null")
        .code
        != 0));
}

#[test]
fn a_restarted_agent_catches_up_with_changes_it_missed() {
    let c = Cluster::new(3);
    let (h1, h2, h3) = (c.host(1), c.host(2), c.host(3));
    h1.berth_ok(&["network", "create", "-d", "overlay", "ov"]);
    h2.echo_server("old", &["--network", "ov"], 7000);
    h3.echo_server("watcher", &["--network", "ov"], 7000);
    let old = h2.ip("old", "ov");
    assert!(h3.wait_reach("watcher", "old", 7000));

    // Host 3's agent is down while host 2 changes its endpoints.
    kill_agent(h3);
    h2.echo_server("new", &["--network", "ov"], 7000);
    h2.berth_ok(&["rm", "-f", "old"]);
    let new = h2.ip("new", "ov");
    assert_ne!(new, old);
    assert!(
        neighbours(h3, "ov").contains(&old),
        "nothing changed on host 3 meanwhile"
    );

    // Restarted, it lists, reconciles and watches again.
    h3.spawn("exec berth agent --foreground");
    assert!(
        eventually(Duration::from_secs(10), || {
            let n = neighbours(h3, "ov");
            n.contains(&new) && !n.contains(&old)
        }),
        "host 3 did not converge: {}",
        neighbours(h3, "ov")
    );
    let fdb = h3.ok(&format!("bridge fdb show dev {} self", vxlan(h3, "ov")));
    assert!(fdb.contains("dst 10.100.0.2"), "{fdb}");
    assert!(
        !fdb.contains("dst 10.100.0.3"),
        "no entry for the host itself: {fdb}"
    );
    assert!(h3.wait_reach("watcher", "new", 7000));
    assert_eq!(resolves(h3, "watcher", "old"), None);
    let metrics = h3.ok("socat -T2 - TCP:127.0.0.1:9355 <<< $'GET /metrics HTTP/1.0\\r\\n\\r\\n'");
    assert!(metrics.contains("berth_overlay_peers 1\n"), "{metrics}");
    assert!(metrics.contains("berth_cluster_connected 1\n"), "{metrics}");
    // And its own endpoint is still known to the others.
    assert!(h2.wait_reach("new", "watcher", 7000));
}

#[test]
fn with_etcd_down_traffic_continues_and_commands_fail_clearly() {
    let mut c = Cluster::new(2);
    c.host(1)
        .berth_ok(&["network", "create", "-d", "overlay", "ov"]);
    c.host(2).echo_server("server", &["--network", "ov"], 7100);
    c.host(1).echo_server("client", &["--network", "ov"], 7000);
    let server = c.host(2).ip("server", "ov");
    assert!(c.host(1).wait_reach("client", &server, 7100));
    c.host(2).echo_server("gone", &["--network", "ov"], 7000);
    let gone = c.host(2).ip("gone", "ov");

    // One TCP connection that sends a line every 100 ms for 8 s and records the echoes.
    let log = c.host(1).dir().join("stream.log");
    c.host(1).spawn(&format!(
        "for i in $(seq 1 80); do echo line$i; sleep 0.1; done | berth exec client socat -t3 - TCP:{server}:7100 > {}",
        log.display()
    ));
    std::thread::sleep(Duration::from_secs(1));
    c.stop_etcd();
    let lines = |p: &std::path::Path| {
        std::fs::read_to_string(p)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let before = lines(&log);

    // Commands that need the cluster fail fast, naming the store; nothing changes.
    for args in [
        vec!["network", "create", "-d", "overlay", "other"],
        vec!["run", "--rm", "--network", "ov", "true"],
        vec!["network", "ls"],
    ] {
        let out = c.host(2).berth(&args);
        assert_ne!(out.code, 0, "{args:?} succeeded with etcd down");
        assert!(
            out.stderr
                .contains(&format!("cluster store {STORE} is unreachable")),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(c.host(2).berth_ok(&["ps", "-a", "-q"]).lines().count(), 2);
    // Removing a container still works locally; its cluster record waits for the store.
    let out = c.host(2).berth(&["rm", "-f", "gone"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains(STORE), "{}", out.stderr);
    assert_eq!(c.host(2).berth_ok(&["ps", "-a", "-q"]).lines().count(), 1);

    // The established connection kept going the whole time.
    assert!(
        eventually(Duration::from_secs(12), || lines(&log) == 80),
        "the stream stopped at {} of 80 lines (had {before} when etcd stopped)",
        lines(&log)
    );
    assert!(before < 80);
    let connected = |c: &Cluster| {
        c.host(1)
            .ok("socat -T2 - TCP:127.0.0.1:9355 <<< $'GET /metrics HTTP/1.0\\r\\n\\r\\n'")
            .contains("berth_cluster_connected 1\n")
    };
    assert!(
        eventually(Duration::from_secs(5), || !connected(&c)),
        "the agent still reports a session"
    );

    // etcd back: agents reconcile, new endpoints propagate.
    c.start_etcd();
    assert!(
        eventually(Duration::from_secs(10), || !c
            .etcdctl("get --prefix --keys-only /berth/v1/ipam/")
            .contains(&format!("/{gone}\n"))),
        "the record of the container removed while etcd was down stays"
    );
    assert!(eventually(Duration::from_secs(5), || !neighbours(
        c.host(1),
        "ov"
    )
    .contains(&gone)));
    assert!(
        eventually(Duration::from_secs(10), || connected(&c)),
        "the agent did not reconnect"
    );
    c.host(2).echo_server("late", &["--network", "ov"], 7200);
    let late = c.host(2).ip("late", "ov");
    assert!(c.host(1).wait_reach("client", &late, 7200));
    assert!(c.host(1).wait_reach("client", "late", 7200));
}

#[test]
fn a_dead_hosts_peers_are_removed_after_its_lease_expires() {
    let mut c = Cluster::new(3);
    c.host(1)
        .berth_ok(&["network", "create", "-d", "overlay", "ov"]);
    c.host(1).echo_server("one", &["--network", "ov"], 7000);
    c.host(3).echo_server("three", &["--network", "ov"], 7000);
    let three = c.host(3).ip("three", "ov");
    assert!(c.host(1).wait_reach("one", &three, 7000));
    let dev = vxlan(c.host(1), "ov");
    let fdb = |c: &Cluster| c.host(1).ok(&format!("bridge fdb show dev {dev} self"));
    assert!(fdb(&c).contains("dst 10.100.0.3"));

    // Host 3 dies: its agent, containers and namespace go without any cleanup.
    c.hosts.remove(2);
    let died = std::time::Instant::now();
    assert!(
        eventually(Duration::from_secs(25), || {
            !fdb(&c).contains("dst 10.100.0.3") && !neighbours(c.host(1), "ov").contains(&three)
        }),
        "host 3's peers stay: {}",
        fdb(&c)
    );
    let took = died.elapsed();
    assert!(
        took >= Duration::from_secs(5),
        "removed after {took:?}: before the lease could expire?"
    );
    assert!(c
        .etcdctl("get --prefix --keys-only /berth/v1/hosts/")
        .contains("host1"));
    assert!(!c
        .etcdctl("get --prefix --keys-only /berth/v1/")
        .contains("host3"));
    assert_eq!(resolves(c.host(1), "one", "three"), None);
}

#[test]
fn overlay_containers_publish_ports_and_leave_through_their_host() {
    let c = Cluster::new(2);
    let (h1, h2) = (c.host(1), c.host(2));
    h1.berth_ok(&[
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.77.0.0/24",
        "ov",
    ]);
    h1.echo_server("web", &["--network", "ov", "-p", "8080:7000"], 7000);
    // Published on host 1's underlay address, reached from host 2 itself (no container),
    // once the server listens (`run -d` returns before socat does).
    let hi = || h2.sh("echo hi | timeout 5 socat -T2 - TCP:10.100.0.1:8080,connect-timeout=2");
    assert!(
        eventually(Duration::from_secs(5), || hi().stdout.trim() == "hi"),
        "{:?}",
        hi()
    );
    // Outbound: masqueraded to host 1's address.
    c.underlay.spawn(
        "exec socat TCP-LISTEN:9000,bind=10.100.0.254,fork,reuseaddr SYSTEM:'echo $SOCAT_PEERADDR'",
    );
    assert!(eventually(Duration::from_secs(5), || {
        h1
        .sh("berth exec web timeout 3 socat -T2 - TCP:10.100.0.254:9000,connect-timeout=2 </dev/null")
        .stdout
        .trim()
        == "10.100.0.1"
    }));
    assert_eq!(h1.ip("web", "ov"), "10.77.0.2");
    // A taken static address is refused everywhere, and the failed run leaves nothing.
    let out = h2.berth(&[
        "run",
        "--rm",
        "--network",
        "ov",
        "--ip",
        "10.77.0.2",
        "true",
    ]);
    assert_eq!(out.code, 125, "{out:?}");
    assert!(
        out.stderr.contains("10.77.0.2 is already in use"),
        "{}",
        out.stderr
    );
    assert_eq!(h2.berth_ok(&["ps", "-a", "-q"]), "");
    assert!(!c
        .etcdctl("get --prefix --keys-only /berth/v1/ipam/")
        .contains("10.77.0.3"));
}

#[test]
fn concurrent_claims_across_hosts_never_collide() {
    let c = Cluster::new(3);
    // Two hosts create the same name at once: exactly one wins.
    let codes: Vec<i32> = std::thread::scope(|s| {
        let t: Vec<_> = [1, 2]
            .iter()
            .map(|i| {
                let h = c.host(*i);
                s.spawn(move || {
                    h.berth(&["network", "create", "-d", "overlay", "race"])
                        .code
                })
            })
            .collect();
        t.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut sorted = codes.clone();
    sorted.sort();
    assert_eq!(sorted, vec![0, 1], "{codes:?}");
    // Every host starts five containers at once: fifteen distinct addresses.
    std::thread::scope(|s| {
        for i in 1..=3 {
            let h = c.host(i);
            s.spawn(move || {
                let out = h.sh(&format!(
                    "for n in 1 2 3 4 5; do {{ berth run -d --name c{i}-$n --network race sleep 100000 >/dev/null || echo c{i}-$n failed; }} & done; wait"
                ));
                assert_eq!(out.stdout, "", "{}", out.stderr);
            });
        }
    });
    let mut ips = Vec::new();
    for i in 1..=3 {
        for n in 1..=5 {
            ips.push(c.host(i).ip(&format!("c{i}-{n}"), "race"));
        }
    }
    let mut unique = ips.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 15, "{ips:?}");
    let claims = c.etcdctl("get --prefix --keys-only /berth/v1/ipam/");
    assert_eq!(
        claims.lines().filter(|l| !l.is_empty()).count(),
        15,
        "{claims}"
    );
}

#[test]
fn gc_removes_overlay_devices_of_no_known_network() {
    let s = Sandbox::new();
    s.berth_ok(&["network", "create", "-o", "bridge_name=ov-keep", "keep"]);
    s.berth_ok(&[
        "run",
        "-d",
        "--name",
        "k",
        "--network",
        "keep",
        "sleep",
        "100000",
    ]);
    s.ok("ip link add vx-0123456789ab type vxlan id 9 dstport 4789 && ip link add ov-0123456789ab type bridge && ip link add vx-other type veth peer name vx-other-p");
    let out = s.berth_ok(&["gc"]);
    assert!(out.contains("link vx-0123456789ab: removed"), "{out}");
    assert!(out.contains("link ov-0123456789ab: removed"), "{out}");
    let links = s.ok("ip -br link");
    assert!(!links.contains("0123456789ab"), "{links}");
    assert!(
        links.contains("ov-keep"),
        "a bridge network's own bridge stays: {links}"
    );
    assert!(links.contains("vx-other"), "not a VXLAN device: {links}");
}

#[test]
fn without_a_store_overlays_are_refused_clearly() {
    let s = Sandbox::new();
    let out = s.berth(&["network", "create", "-d", "overlay", "x"]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("need a cluster store"),
        "{}",
        out.stderr
    );
    let out = s.berth(&["--store", "http://a:1", "network", "ls"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("etcd://HOST:PORT"), "{}", out.stderr);
    let _ = STORE;
}
