//! The fast path (crates/firewall/src/fastpath.rs): unicast between two containers of one
//! network is forwarded from host end to host end by the netdev table, off the bridge; other
//! networks, `icc=false` and `fastpath=false` networks stay off it.

use berth_tests::Sandbox;
use serde_json::Value;

fn sleeper(sb: &Sandbox, name: &str, net_args: &[&str]) {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(net_args);
    args.extend_from_slice(&["sleep", "100000"]);
    sb.berth_ok(&args);
}

/// The netdev table as nft's JSON objects.
fn table(sb: &Sandbox) -> Vec<Value> {
    let out = sb.ok("nft -j list table netdev berth");
    let v: Value = serde_json::from_str(&out).unwrap();
    v["nftables"].as_array().unwrap().clone()
}

/// The map's elements as (MAC, host end, packets counted).
fn elements(sb: &Sandbox) -> Vec<(String, String, u64)> {
    let t = table(sb);
    let map = t.iter().find_map(|o| o.get("map")).expect("the map");
    let Some(elems) = map.get("elem").and_then(Value::as_array) else {
        return Vec::new();
    };
    elems
        .iter()
        .map(|e| {
            let key = &e[0]["elem"]["val"]["concat"];
            let mac = key[1].as_str().unwrap().to_string();
            let dev = e[1].as_str().unwrap().to_string();
            let packets = e[0]["elem"]["counter"]["packets"].as_u64().unwrap();
            (mac, dev, packets)
        })
        .collect()
}

/// The chain's devices, from nft's text (its JSON, in nft 1.0.6, leaves a device list out).
fn devices(sb: &Sandbox) -> Vec<String> {
    let text = sb.ok("nft list table netdev berth");
    let hook = text
        .lines()
        .find(|l| l.contains("hook ingress"))
        .expect("the chain");
    let names = match (hook.find("devices = {"), hook.find("device \"")) {
        (Some(i), _) => {
            let rest = &hook[i + "devices = {".len()..];
            rest[..rest.find('}').unwrap()].to_string()
        }
        (None, Some(i)) => {
            let rest = &hook[i + "device \"".len()..];
            rest[..rest.find('"').unwrap()].to_string()
        }
        (None, None) => String::new(),
    };
    names
        .split(',')
        .map(|d| d.trim().to_string())
        .filter(|d| !d.is_empty())
        .collect()
}

fn field(sb: &Sandbox, c: &str, net: &str, key: &str) -> String {
    sb.inspect(c)["Networks"][net][key]
        .as_str()
        .unwrap()
        .to_string()
}

/// Two containers of one network: each has an element leading to its host end, their TCP
/// exchange is counted by both elements (so it crossed by the fast path, not the bridge),
/// and `rm` takes a container's element and device away.
#[test]
fn traffic_between_two_containers_of_a_network_takes_the_fast_path() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "front"]);
    sb.echo_server("srv", &["--network", "front"], 7000);
    sleeper(&sb, "cli", &["--network", "front"]);
    let (srv_mac, srv_dev) = (
        field(&sb, "srv", "front", "MacAddress"),
        field(&sb, "srv", "front", "HostInterface"),
    );
    let (cli_mac, cli_dev) = (
        field(&sb, "cli", "front", "MacAddress"),
        field(&sb, "cli", "front", "HostInterface"),
    );
    let devs = devices(&sb);
    assert!(
        devs.contains(&srv_dev) && devs.contains(&cli_dev),
        "{devs:?}"
    );
    // Both host ends carry the network's interface group, the key's first half.
    let groups = sb.ok(&format!(
        "ip -j -d link show {srv_dev} | jq -r '.[0].group'; ip -j -d link show {cli_dev} | jq -r '.[0].group'"
    ));
    let groups: Vec<&str> = groups.lines().collect();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0], groups[1]);
    assert_ne!(groups[0], "default");

    let ip = sb.ip("srv", "front");
    assert!(sb.wait_reach("cli", &ip, 7000));
    let els = elements(&sb);
    assert_eq!(els.len(), 2, "{els:?}");
    for (mac, dev) in [(&srv_mac, &srv_dev), (&cli_mac, &cli_dev)] {
        let e = els
            .iter()
            .find(|e| &e.0 == mac)
            .expect("an element per container");
        assert_eq!(&e.1, dev);
        assert!(
            e.2 > 0,
            "frames to {mac} were forwarded by the fast path: {els:?}"
        );
    }

    sb.berth_ok(&["rm", "-f", "cli"]);
    let els = elements(&sb);
    assert_eq!(
        els.iter().map(|e| e.0.clone()).collect::<Vec<_>>(),
        [srv_mac]
    );
    sb.berth_ok(&["rm", "-f", "srv"]);
    assert!(elements(&sb).is_empty());
}

/// Setups take host-end names the chain already lists, so that they leave the chain alone
/// (each change of it makes the next nf_tables socket to close wait for an RCU grace
/// period); the list gains names in blocks of 64 and loses retired ones in blocks, so it
/// stays within two blocks of the containers there are.
#[test]
fn host_end_names_come_listed_and_the_list_stays_bounded() {
    let sb = Sandbox::new();
    sleeper(&sb, "first", &[]);
    let listed = devices(&sb);
    assert!(
        listed.len() > 64,
        "a block of spare names: {}",
        listed.len()
    );
    sb.ok("for i in $(seq 1 5); do berth create --name c$i -- true >/dev/null; done");
    assert_eq!(devices(&sb), listed, "setups did not change the chain");
    for i in 1..=5 {
        let dev = field(&sb, &format!("c{i}"), "bridge", "HostInterface");
        assert!(listed.contains(&dev), "c{i}'s {dev} was listed ahead");
    }
    sb.ok("for i in $(seq 6 70); do berth create --name c$i -- true >/dev/null; done");
    let listed = devices(&sb);
    for i in [6, 40, 70] {
        let dev = field(&sb, &format!("c{i}"), "bridge", "HostInterface");
        assert!(listed.contains(&dev), "c{i}'s {dev}");
    }
    assert!(listed.len() <= 71 + 2 * 64, "{}", listed.len());
    sb.ok(
        "for i in $(seq 1 70); do berth rm -f c$i >/dev/null; done; berth rm -f first >/dev/null",
    );
    assert!(elements(&sb).is_empty());
    let left = devices(&sb).len();
    assert!(
        left <= 2 * 64,
        "retired names went off the chain: {left} left"
    );
    // The names still listed lead nowhere: a new container works as the first did.
    sb.echo_server("srv", &[], 7000);
    sleeper(&sb, "cli", &[]);
    assert!(sb.wait_reach("cli", &sb.ip("srv", "bridge"), 7000));
    let srv_mac = field(&sb, "srv", "bridge", "MacAddress");
    assert!(elements(&sb).iter().any(|e| e.0 == srv_mac && e.2 > 0));
}

/// A frame a container sends to the MAC of another network's container (a static neighbour
/// entry, as a hostile container could make) reaches nobody: the key holds the network.
/// Keyed by MAC alone, the UDP datagram would arrive.
#[test]
fn the_fast_path_does_not_cross_networks() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "front"]);
    sb.berth_ok(&["network", "create", "back"]);
    // Containers share the host's files: what the receiver gets goes to the sandbox's dir.
    let got = sb.dir().join("got");
    let recv = format!("socat -u UDP-RECV:9000 OPEN:{},creat,append", got.display());
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "target",
        "--network",
        "back",
        "sh",
        "-c",
        &recv,
    ]);
    sleeper(&sb, "attacker", &["--network", "front"]);
    let ip = sb.ip("target", "back");
    let mac = field(&sb, "target", "back", "MacAddress");
    sb.ok(&format!(
        "berth exec attacker ip route add {ip}/32 dev eth0 && \
         berth exec attacker ip neigh replace {ip} lladdr {mac} dev eth0 nud permanent"
    ));
    std::thread::sleep(std::time::Duration::from_millis(300));
    for _ in 0..5 {
        sb.ok(&format!(
            "echo intruder | berth exec attacker socat -u - UDP-SENDTO:{ip}:9000"
        ));
    }
    // A datagram sent in the target's own network arrives (the receiver works).
    sleeper(&sb, "neighbour", &["--network", "back"]);
    sb.ok(&format!(
        "sleep 0.3; echo neighbour | berth exec neighbour socat -u - UDP-SENDTO:{ip}:9000; sleep 0.3"
    ));
    let got = std::fs::read_to_string(&got).unwrap_or_default();
    assert_eq!(got.trim(), "neighbour");
    let els = elements(&sb);
    let target = els.iter().find(|e| e.0 == mac).unwrap();
    assert!(target.2 > 0, "the neighbour's datagram took the fast path");
}

/// `icc=false` (isolated ports) and `fastpath=false` networks keep their containers' traffic
/// on the bridge: no element, no chain device, no group. A bad value is an error that
/// creates nothing.
#[test]
fn isolated_and_opted_out_networks_stay_on_the_bridge() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "-o", "icc=false", "iso"]);
    sb.berth_ok(&["network", "create", "-o", "fastpath=false", "plain"]);
    sb.echo_server("a", &["--network", "plain"], 7000);
    sleeper(&sb, "b", &["--network", "plain"]);
    sleeper(&sb, "c", &["--network", "iso"]);
    assert!(sb.wait_reach("b", &sb.ip("a", "plain"), 7000));
    assert!(elements(&sb).is_empty());
    assert!(devices(&sb).is_empty());
    let dev = field(&sb, "a", "plain", "HostInterface");
    assert_eq!(
        sb.ok(&format!("ip -j -d link show {dev} | jq -r '.[0].group'"))
            .trim(),
        "default"
    );
    let out = sb.berth(&["network", "create", "-o", "fastpath=maybe", "bad"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("fastpath"), "{}", out.stderr);
    assert_ne!(sb.berth(&["network", "inspect", "bad"]).code, 0);
}

/// A deleted netdev table is rebuilt from the store by the next operation, with the running
/// containers' elements leading to their host ends (looked up again).
#[test]
fn a_deleted_fast_path_table_is_rebuilt_with_the_running_containers() {
    let sb = Sandbox::new();
    sb.echo_server("srv", &[], 7000);
    sleeper(&sb, "cli", &[]);
    sb.ok("nft delete table netdev berth");
    sleeper(&sb, "third", &[]);
    let els = elements(&sb);
    assert_eq!(els.len(), 3, "{els:?}");
    for c in ["srv", "cli", "third"] {
        let mac = field(&sb, c, "bridge", "MacAddress");
        let dev = field(&sb, c, "bridge", "HostInterface");
        assert!(els.iter().any(|e| e.0 == mac && e.1 == dev), "{c}: {els:?}");
    }
    let devs = devices(&sb);
    for c in ["srv", "cli", "third"] {
        let dev = field(&sb, c, "bridge", "HostInterface");
        assert!(devs.contains(&dev), "{c}: {devs:?}");
    }
    assert!(sb.wait_reach("cli", &sb.ip("srv", "bridge"), 7000));
    let srv_mac = field(&sb, "srv", "bridge", "MacAddress");
    assert!(elements(&sb).iter().any(|e| e.0 == srv_mac && e.2 > 0));
}

/// Another table's forward policy drop (Docker's iptables rules set one) stops bridged
/// traffic, which br_netfilter runs through it, but not the fast path; diagnose agrees.
#[test]
fn another_tables_forward_drop_does_not_stop_the_fast_path() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "front"]);
    sb.echo_server("web", &["--network", "front"], 80);
    sleeper(&sb, "cli", &["--network", "front"]);
    let web = sb.ip("web", "front");
    assert!(sb.wait_reach("cli", &web, 80));
    sb.ok("nft add table ip filter && nft add chain ip filter FORWARD '{ type filter hook forward priority 0; policy drop; }'");
    sb.ok("berth exec cli ip neigh flush dev eth0");
    assert!(sb.wait_reach("cli", &web, 80));
    let out = sb.berth(&["diagnose", "--format", "json", "cli", "web:80"]);
    assert_eq!(out.code, 0, "{}", out.stdout);
    assert!(out.stdout.contains("fast path"), "{}", out.stdout);
}
