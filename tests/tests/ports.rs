//! Published ports: reachable where they should be, nowhere else, and gone after `rm`.

use berth_tests::Sandbox;

/// Sends a line over TCP from the sandbox's host namespace; returns the reply.
fn tcp_from_host(sb: &Sandbox, addr: &str, port: u16) -> String {
    sb.sh(&format!(
        "echo ping | timeout 4 socat -T2 - TCP:{addr}:{port},connect-timeout=2"
    ))
    .stdout
}

fn wait_host_reply(sb: &Sandbox, addr: &str, port: u16) -> bool {
    (0..20).any(|_| {
        let ok = tcp_from_host(sb, addr, port).trim() == "ping";
        if !ok {
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        ok
    })
}

#[test]
fn tcp_port_is_reachable_on_loopback_and_from_outside_but_the_container_port_is_not() {
    let sb = Sandbox::new();
    let out = sb.outside();
    sb.echo_server("web", &["-p", "8080:80"], 80);
    assert!(wait_host_reply(&sb, "127.0.0.1", 8080), "via 127.0.0.1");
    assert_eq!(tcp_from_host(&sb, "10.99.0.1", 8080).trim(), "ping");
    let reply = out.sh("echo ping | timeout 4 socat -T2 - TCP:10.99.0.1:8080,connect-timeout=2");
    assert_eq!(reply.stdout.trim(), "ping", "from outside: {reply:?}");
    // The container's own port, unpublished, is not reachable from outside even with a route.
    out.ok("ip route add 172.17.0.0/16 via 10.99.0.1");
    let direct = out.sh("echo ping | timeout 4 socat -T2 - TCP:172.17.0.2:80,connect-timeout=2");
    assert_ne!(
        direct.stdout.trim(),
        "ping",
        "unpublished port reached directly"
    );
    // Nor is an unpublished host port.
    let other = out.sh("echo ping | timeout 4 socat -T2 - TCP:10.99.0.1:8081,connect-timeout=2");
    assert_ne!(other.code, 0);
    // berth port and inspect report the mapping.
    let port = sb.berth_ok(&["port", "web"]);
    assert_eq!(port.trim(), "80/tcp -> 0.0.0.0:8080\n80/tcp -> [::]:8080");
    let v = sb.inspect("web");
    assert_eq!(v["Ports"]["80/tcp"][0]["HostPort"], "8080", "{v}");
}

#[test]
fn udp_port_works_and_its_conntrack_entries_go_with_the_container() {
    let sb = Sandbox::new();
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "dns",
        "-p",
        "5353:53/udp",
        "socat",
        "UDP-LISTEN:53,fork,reuseaddr",
        "EXEC:cat",
    ]);
    let send = "echo ping | timeout 3 socat -T1 - UDP:127.0.0.1:5353";
    let got = (0..20).any(|_| {
        let r = sb.sh(send).stdout.trim() == "ping";
        if !r {
            std::thread::sleep(std::time::Duration::from_millis(150));
        }
        r
    });
    assert!(got, "UDP through the published port");
    let ct = "conntrack -L -p udp --orig-port-dst 5353 2>/dev/null | grep -c 5353 || true";
    assert_ne!(sb.ok(ct).trim(), "0", "the flow has a conntrack entry");
    sb.berth_ok(&["rm", "-f", "dns"]);
    assert_eq!(sb.ok(ct).trim(), "0", "rm flushed the mapping's entries");
    let maps = sb.ok("nft list map inet berth pub4");
    assert!(!maps.contains("5353"), "element gone: {maps}");
}

#[test]
fn ranges_host_bound_mappings_and_ephemeral_ports() {
    let sb = Sandbox::new();
    let out = sb.outside();
    let servers =
        "for p in 9000 9001 9002 9003; do socat TCP-LISTEN:$p,fork,reuseaddr EXEC:cat & done; wait";
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "multi",
        "-p",
        "9000-9002:9000-9002",
        "-p",
        "127.0.0.1:7000:9000",
        "-p",
        "10.99.0.1:7001:9000",
        "-p",
        "9003",
        "sh",
        "-c",
        servers,
    ]);
    assert!(wait_host_reply(&sb, "127.0.0.1", 9000));
    assert_eq!(tcp_from_host(&sb, "127.0.0.1", 9002).trim(), "ping");
    // 127.0.0.1:7000 answers on loopback only.
    assert_eq!(tcp_from_host(&sb, "127.0.0.1", 7000).trim(), "ping");
    assert_ne!(tcp_from_host(&sb, "10.99.0.1", 7000).trim(), "ping");
    // 10.99.0.1:7001 answers there (from outside too) and not on 127.0.0.1.
    assert_eq!(tcp_from_host(&sb, "10.99.0.1", 7001).trim(), "ping");
    let r = out.sh("echo ping | timeout 4 socat -T2 - TCP:10.99.0.1:7001,connect-timeout=2");
    assert_eq!(r.stdout.trim(), "ping");
    assert_ne!(tcp_from_host(&sb, "127.0.0.1", 7001).trim(), "ping");
    // A container port alone got a host port from the ephemeral range.
    let port = sb.berth_ok(&["port", "multi", "9003"]);
    let hp: u16 = port
        .lines()
        .next()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let (lo, hi) = {
        let r = sb.ok("cat /proc/sys/net/ipv4/ip_local_port_range");
        let v: Vec<u16> = r.split_whitespace().map(|n| n.parse().unwrap()).collect();
        (v[0], v[1])
    };
    assert!((lo..=hi).contains(&hp), "{hp} in {lo}-{hi}");
    assert_eq!(tcp_from_host(&sb, "127.0.0.1", hp).trim(), "ping");
}

#[test]
fn hairpin_from_a_sibling_and_from_itself() {
    let sb = Sandbox::new();
    let _out = sb.outside();
    sb.echo_server("web", &["-p", "8080:80"], 80);
    sb.berth_ok(&["run", "-d", "--name", "client", "sleep", "300"]);
    assert!(
        sb.wait_reach("client", "10.99.0.1", 8080),
        "sibling via a host address"
    );
    assert!(
        sb.can_reach("client", "172.17.0.1", 8080),
        "sibling via the gateway"
    );
    assert!(
        sb.can_reach("web", "10.99.0.1", 8080),
        "itself via a host address"
    );
}

#[test]
fn a_taken_port_is_refused_and_changes_nothing() {
    let sb = Sandbox::new();
    sb.echo_server("a", &["-p", "8080:80"], 80);
    let before = sb.state();
    for spec in ["8080:81", "127.0.0.1:8080:80", "8079-8081:80-82"] {
        let r = sb.berth(&["run", "-d", "--name", "b", "-p", spec, "sleep", "30"]);
        assert_eq!(r.code, 125, "{spec}: {r:?}");
        assert!(
            r.stderr.contains("already published by container a"),
            "{}",
            r.stderr
        );
        assert_eq!(sb.state(), before, "{spec} changed something");
    }
    // Another protocol or a non-overlapping address is fine.
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "u",
        "-p",
        "8080:80/udp",
        "sleep",
        "30",
    ]);
    // A host process listening on the port: refused (DNAT would take its traffic).
    sb.spawn("exec socat TCP-LISTEN:8090,reuseaddr,fork EXEC:cat");
    sb.ok("for i in $(seq 50); do ss -ltn | grep -q :8090 && exit 0; sleep 0.1; done; exit 1");
    let r = sb.berth(&["run", "-d", "--name", "c", "-p", "8090:80", "sleep", "30"]);
    assert_eq!(r.code, 125);
    assert!(
        r.stderr.contains("in use by a process on the host"),
        "{}",
        r.stderr
    );
    // Bad values are usage errors of the value, with the reason.
    let r = sb.berth(&["run", "-d", "-p", "80/icmp", "sleep", "1"]);
    assert!(r.stderr.contains("unknown protocol"), "{}", r.stderr);
}

#[test]
fn sctp_mappings_are_elements_like_the_others() {
    let sb = Sandbox::new();
    sb.berth_ok(&[
        "create",
        "--name",
        "s",
        "-p",
        "3868:3868/sctp",
        "sleep",
        "30",
    ]);
    let map = sb.ok("nft list map inet berth pub4");
    // Every port element carries a counter (schema_4), shown between key and value.
    assert!(
        map.contains("sctp . 3868 counter packets 0 bytes 0 : 172.17.0.2 . 3868"),
        "{map}"
    );
    sb.berth_ok(&["rm", "s"]);
    assert!(!sb.ok("nft list map inet berth pub4").contains("3868"));
}

/// A TCP SYN to 127.0.0.1:PORT, sent as a raw Ethernet frame from the outside namespace to
/// the host's MAC on the shared link (the CVE-2020-8558 trick), then counted in conntrack.
fn inject_syn(out: &berth_tests::Outside, host_mac: &str, dst: &str, port: u16) {
    let script = format!(
        r#"python3 - <<'PY'
import socket, struct
def csum(b):
    if len(b) % 2: b += b'\0'
    s = sum(struct.unpack('!%dH' % (len(b)//2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
src, dst = socket.inet_aton('10.99.0.2'), socket.inet_aton('{dst}')
tcp = struct.pack('!HHIIBBHHH', 40000, {port}, 1, 0, 5 << 4, 0x02, 64240, 0, 0)
tcp = tcp[:16] + struct.pack('!H', csum(src + dst + struct.pack('!BBH', 0, 6, len(tcp)) + tcp)) + tcp[18:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(tcp), 1, 0, 64, 6, 0, src, dst)
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(('o0', 0))
mac = bytes.fromhex('{mac}')
me = s.getsockname()[4]
for _ in range(3):
    s.send(mac + me + b'\x08\x00' + ip + tcp)
PY"#,
        mac = host_mac.replace(':', "")
    );
    out.ok(&script);
}

#[test]
fn loopback_addresses_from_another_interface_are_dropped() {
    let sb = Sandbox::new();
    let out = sb.outside();
    sb.echo_server("web", &["-p", "127.0.0.1:8080:80", "-p", "8081:80"], 80);
    assert!(wait_host_reply(&sb, "127.0.0.1", 8080));
    let mac = sb
        .ok("ip -br link show out0 | awk '{print $3}'")
        .trim()
        .to_string();
    let count = |port: u16, dst: &str| {
        sb.ok(&format!(
            "conntrack -L -p tcp --orig-port-dst {port} --orig-dst {dst} 2>/dev/null | grep -c 'sport=40000' || true"
        ))
        .trim()
        .to_string()
    };
    // Control: the same crafted frame to the host's own address is seen by conntrack.
    inject_syn(&out, &mac, "10.99.0.1", 8081);
    assert_ne!(
        count(8081, "10.99.0.1"),
        "0",
        "the injected frame reaches the host"
    );
    inject_syn(&out, &mac, "127.0.0.1", 8080);
    assert_eq!(
        count(8080, "127.0.0.1"),
        "0",
        "127.0.0.1 from out0 got past the guard"
    );
}

#[test]
fn create_then_start_and_firewall_reload_after_a_flush() {
    let sb = Sandbox::new();
    // Without the agent, which would repair the flushed table by itself (tests/agent.rs).
    let id = sb.ok(
        "BERTH_NO_AGENT=1 berth create --name web -p 8080:80 socat TCP-LISTEN:80,fork,reuseaddr EXEC:cat",
    );
    assert_eq!(id.trim().len(), 64);
    assert_eq!(sb.inspect("web")["State"], "created");
    sb.ok("BERTH_NO_AGENT=1 berth start web");
    assert!(wait_host_reply(&sb, "127.0.0.1", 8080));
    // Someone flushes every table: the port stops working until berth restores it.
    sb.ok("nft flush ruleset");
    assert_ne!(tcp_from_host(&sb, "127.0.0.1", 8080).trim(), "ping");
    let out = sb.berth_ok(&["firewall", "reload"]);
    assert!(out.contains("firewall reloaded"), "{out}");
    assert!(wait_host_reply(&sb, "127.0.0.1", 8080), "after reload");
    // The next change after a flush repairs the table by itself, too.
    sb.ok("nft flush ruleset");
    sb.ok("BERTH_NO_AGENT=1 berth run -d --name other -p 8081:80 sleep 30");
    assert!(
        wait_host_reply(&sb, "127.0.0.1", 8080),
        "repaired by the next run"
    );
}
