//! `topology`, `diagnose` and `events` on an overlay network across two hosts (the
//! multi-host harness of tests/src/cluster.rs): the VNI, VXLAN device and the other host's
//! peer; a healthy cross-host pair; a neighbour or FDB entry deleted behind the agent's
//! back (it reprograms only on a change in the store or a reload from a command here, so
//! the entry stays deleted while the test looks).

use berth_tests::cluster::{eventually, Cluster};
use berth_tests::Sandbox;
use serde_json::Value;
use std::time::Duration;

fn diagnose(h: &Sandbox, src: &str, dst: &str) -> (i32, Value) {
    let out = h.berth(&["diagnose", "--format", "json", src, dst]);
    (out.code, out.json())
}

fn check<'a>(report: &'a Value, starts: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"].as_str().unwrap().contains(starts))
        .unwrap_or_else(|| panic!("no check {starts:?} in {report}"))
}

fn events(h: &Sandbox) -> Vec<String> {
    h.ok("berth events --format json --since 0 --until 0s")
        .lines()
        .map(|l| {
            let e: Value = serde_json::from_str(l).unwrap();
            format!(
                "{} {} {}",
                e["Type"].as_str().unwrap(),
                e["Action"].as_str().unwrap(),
                e["Actor"]["Name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn overlay_topology_diagnose_and_events_across_two_hosts() {
    let c = Cluster::new(2);
    let (h1, h2) = (c.host(1), c.host(2));
    h1.berth_ok(&["network", "create", "-d", "overlay", "ov"]);
    h1.echo_server("a1", &["--network", "ov"], 7000);
    h1.echo_server("a1b", &["--network", "ov"], 7000);
    h2.echo_server("b2", &["--network", "ov"], 7000);
    let b2 = h2.ip("b2", "ov");
    let b2_mac = h2.inspect("b2")["Networks"]["ov"]["MacAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(h1.wait_reach("a1", &b2, 7000), "a1 -> b2 over the overlay");
    let net: Value = h1.berth_ok(&["network", "inspect", "ov"]).parse().unwrap();
    let id = net[0]["Id"].as_str().unwrap().to_string();
    let vx = format!("vx-{}", &id[..12]);

    // Topology on host 1: the VNI, the VXLAN device as the kernel has it, host 2's peer.
    let t: Value = h1
        .berth_ok(&["topology", "--format", "json"])
        .parse()
        .unwrap();
    let ov = t["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ov")
        .expect("ov in the topology");
    assert_eq!(ov["driver"], "overlay");
    assert_eq!(ov["vni"], net[0]["VNI"]);
    let link: Value = h1.ok(&format!("ip -j link show {vx}")).parse().unwrap();
    assert_eq!(ov["vxlan"]["name"], vx.as_str());
    assert_eq!(ov["vxlan"]["present"], true);
    assert_eq!(ov["vxlan"]["up"], true);
    assert_eq!(ov["vxlan"]["mtu"], link[0]["mtu"]);
    let peers = ov["peers"].as_array().unwrap();
    assert_eq!(peers.len(), 1, "one other host: {peers:?}");
    assert_eq!(peers[0]["vtep"], "10.100.0.2");
    assert_eq!(peers[0]["host"], "host2");
    assert_eq!(peers[0]["flood"], true);
    let eps = peers[0]["endpoints"].as_array().unwrap();
    assert_eq!(eps.len(), 1, "{eps:?}");
    assert_eq!(eps[0]["container"], "b2");
    assert_eq!(eps[0]["ip"], b2.as_str());
    assert_eq!(eps[0]["mac"], b2_mac.as_str());
    assert_eq!(eps[0]["programmed"], true);
    assert_eq!(t["hosts"][0]["name"], "host1");
    assert_eq!(t["hosts"][0]["local"], true);
    assert_eq!(t["hosts"][0]["vtep"], "10.100.0.1");
    assert_eq!(t["hosts"][1]["name"], "host2");
    assert_eq!(t["hosts"][1]["local"], false);
    assert_eq!(t["hosts"].as_array().unwrap().len(), 2);
    let text = h1.berth_ok(&["topology"]);
    assert!(
        text.contains(&format!("vxlan {vx} up mtu 1450"))
            && text.contains(&format!("peer host2 vtep 10.100.0.2, b2 {b2} {b2_mac}")),
        "{text}"
    );
    let dot = h1.berth_ok(&["topology", "--format", "dot"]);
    assert!(
        dot.contains("host host2 (vtep 10.100.0.2)")
            && dot.contains(&format!("\"remote:10.100.0.2:{b2_mac}\"")),
        "{dot}"
    );

    // Healthy: across hosts by name and by address, and between two local containers.
    let (rc, r) = diagnose(h1, "a1", "b2:7000");
    assert_eq!(r["verdict"]["code"], "reachable", "{r}");
    assert_eq!(rc, 0);
    assert_eq!(check(&r, "FDB entry")["ok"], true);
    assert_eq!(check(&r, "TCP connect")["ok"], true);
    let (rc, r) = diagnose(h1, "a1", &format!("{b2}:7000"));
    assert_eq!((rc, r["verdict"]["code"].as_str()), (0, Some("reachable")));
    let (rc, r) = diagnose(h1, "a1", "a1b:7000");
    assert_eq!(
        (rc, r["verdict"]["code"].as_str()),
        (0, Some("reachable")),
        "{r}"
    );
    // The checks made for bridge networks hold for overlay endpoints too.
    for (src, dst) in [("a1", "host"), ("host", "a1b:7000")] {
        let (rc, r) = diagnose(h1, src, dst);
        assert_eq!(
            (rc, r["verdict"]["code"].as_str()),
            (0, Some("reachable")),
            "{r}"
        );
    }

    // The neighbour entry of b2 gone: ARP for it goes unanswered.
    h1.ok(&format!("ip neigh del {b2} dev {vx}"));
    h1.ok("berth exec a1 ip neigh flush dev eth0");
    let (rc, r) = diagnose(h1, "a1", "b2:7000");
    assert_eq!(r["verdict"]["code"], "not-programmed", "{r}");
    assert_eq!(rc, 1);
    let cause = r["verdict"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("neighbour entry") && cause.contains(&b2) && cause.contains(&vx),
        "{cause}"
    );
    assert!(r["verdict"]["fix"].as_str().unwrap().contains("agent"));
    assert!(!h1.can_reach("a1", &b2, 7000), "traffic fails without it");
    h1.ok(&format!(
        "ip neigh replace {b2} lladdr {b2_mac} dev {vx} nud permanent"
    ));
    assert!(h1.wait_reach("a1", &b2, 7000));
    assert_eq!(diagnose(h1, "a1", "b2:7000").0, 0);

    // The FDB entry alone gone: frames still reach host 2 by flooding, and diagnose says so.
    let fdb_del = format!("bridge fdb del {b2_mac} dev {vx} dst 10.100.0.2 self");
    h1.ok(&fdb_del);
    let (rc, r) = diagnose(h1, "a1", "b2:7000");
    assert_eq!(rc, 0, "{r}");
    assert!(check(&r, "FDB entry")["detail"]
        .as_str()
        .unwrap()
        .contains("flooding"));
    // And with the flood entry gone too, frames for b2 are dropped.
    h1.ok(&format!(
        "bridge fdb del 00:00:00:00:00:00 dev {vx} dst 10.100.0.2 self"
    ));
    let (rc, r) = diagnose(h1, "a1", "b2:7000");
    assert_eq!(r["verdict"]["code"], "not-programmed", "{r}");
    assert_eq!(rc, 1);
    let cause = r["verdict"]["cause"].as_str().unwrap();
    assert!(
        cause.contains("FDB entry") && cause.contains(&b2_mac) && cause.contains("10.100.0.2"),
        "{cause}"
    );
    assert!(!h1.can_reach("a1", &b2, 7000), "traffic fails without them");
    let t: Value = h1
        .berth_ok(&["topology", "--format", "json"])
        .parse()
        .unwrap();
    let ov = &t["networks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "ov")
        .unwrap();
    assert_eq!(ov["peers"][0]["flood"], false, "{ov}");
    assert_eq!(ov["peers"][0]["endpoints"][0]["programmed"], false, "{ov}");

    // A change here makes the agent reprogram the device (the fix diagnose names).
    h1.berth_ok(&["rm", "-f", "a1b"]);
    assert!(eventually(Duration::from_secs(10), || h1.can_reach("a1", &b2, 7000)));
    assert_eq!(diagnose(h1, "a1", "b2:7000").0, 0);

    // A remote container as SRC is refused with where to run it.
    let out = h1.berth(&["diagnose", "b2", "a1"]);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("host2"), "{}", out.stderr);

    // Events: the overlay's creation, connects and removal.
    h1.berth_ok(&["rm", "-f", "a1"]);
    h2.berth_ok(&["rm", "-f", "b2"]);
    h1.berth_ok(&["network", "rm", "ov"]);
    let evs = events(h1);
    for want in [
        "network create ov",
        "network connect ov",
        "network disconnect ov",
        "network remove ov",
    ] {
        assert!(evs.iter().any(|e| e == want), "{want:?} in {evs:?}");
    }
    let pos = |w: &str| evs.iter().position(|e| e == w).unwrap();
    assert!(pos("network create ov") < pos("network connect ov"));
    assert!(pos("network disconnect ov") < pos("network remove ov"));
}
