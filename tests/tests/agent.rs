//! The agent: container DNS (checked with `dig` inside containers), surviving kill -9,
//! firewall self-repair after `nft flush ruleset`, metrics, single instance.

use berth_tests::Sandbox;
use std::time::{Duration, Instant};

/// `dig` from inside a container: (status, answers).
fn dig(sb: &Sandbox, from: &str, args: &str) -> (String, Vec<String>) {
    let out = sb.sh(&format!(
        "berth exec {from} dig +time=3 +tries=1 {args} | grep -E 'status:|^[^;].*IN' || true"
    ));
    let status = out
        .stdout
        .split("status: ")
        .nth(1)
        .and_then(|s| s.split(',').next())
        .unwrap_or("none")
        .to_string();
    let answers = out
        .stdout
        .lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| l.split_whitespace().last().map(str::to_string))
        .collect();
    (status, answers)
}

fn agent_pid(sb: &Sandbox) -> Option<String> {
    std::fs::read_to_string(sb.run_root().join("agent.pid"))
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn two_networks(sb: &Sandbox) -> String {
    sb.berth_ok(&["network", "create", "front"]);
    sb.berth_ok(&["network", "create", "back"]);
    let id = sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "--alias",
        "www",
        "socat",
        "TCP-LISTEN:80,fork,reuseaddr",
        "EXEC:cat",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "cli",
        "--network",
        "front",
        "sleep",
        "300",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "other",
        "--network",
        "back",
        "sleep",
        "300",
    ]);
    id.trim().to_string()
}

#[test]
fn names_resolve_only_on_shared_networks() {
    let sb = Sandbox::new();
    let id = two_networks(&sb);
    let ip = sb.ip("web", "front");
    let resolv = sb.ok("berth exec cli cat /etc/resolv.conf");
    let gw = sb.inspect("cli")["Networks"]["front"]["Gateway"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(resolv.contains(&format!("nameserver {gw}")), "{resolv}");
    for name in ["web", "www", "web.front", "web.berth.internal", &id[..12]] {
        assert_eq!(
            dig(&sb, "cli", name),
            ("NOERROR".into(), vec![ip.clone()]),
            "{name}"
        );
    }
    // From a container on another network: the same names do not exist.
    for name in ["web", "www", "web.front", &id[..12]] {
        assert_eq!(dig(&sb, "other", name).0, "NXDOMAIN", "{name} from back");
    }
    assert_eq!(dig(&sb, "cli", "nope.berth.internal").0, "NXDOMAIN");
    // PTR.
    let (status, names) = dig(&sb, "cli", &format!("-x {ip}"));
    assert_eq!(status, "NOERROR");
    assert!(names.iter().any(|n| n.starts_with("web.")), "{names:?}");
}

#[test]
fn other_names_are_forwarded_and_a_dead_upstream_gives_servfail() {
    let sb = Sandbox::new();
    let mut out = sb.outside();
    out.dns_upstream();
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "--dns",
        "10.99.0.2",
        "sleep",
        "300",
    ]);
    let ok = (0..20).any(|_| {
        let r = dig(&sb, "c", "example.test");
        r == ("NOERROR".into(), vec!["192.0.2.7".into()]) || {
            std::thread::sleep(Duration::from_millis(100));
            false
        }
    });
    assert!(ok, "forwarded to the container's --dns upstream");
    // Nothing answers at 10.99.0.3: SERVFAIL within the bounded timeout.
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "d",
        "--dns",
        "10.99.0.3",
        "sleep",
        "300",
    ]);
    let t0 = Instant::now();
    let (status, _) = dig(&sb, "d", "example.test");
    assert_eq!(status, "SERVFAIL");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[test]
fn a_new_container_resolves_at_once() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "cli", "sleep", "300"]);
    sb.berth_ok(&["run", "-d", "--name", "fresh", "sleep", "300"]);
    // The first query after `run` returned already answers: no retry.
    let t0 = Instant::now();
    let (status, answers) = dig(&sb, "cli", "fresh");
    assert_eq!(
        (status.as_str(), answers.len()),
        ("NOERROR", 1),
        "{answers:?}"
    );
    eprintln!("first answer {:?} after run returned", t0.elapsed());
}

#[test]
fn a_name_freed_by_rm_answers_only_for_its_new_owner() {
    // A setup adds its own container to the names DNS serves without re-reading the store
    // (`reload-names`); after a removal it must re-read them, or the old owner of a reused
    // name would answer beside the new one until the deferred reload.
    let sb = Sandbox::new();
    let run_at = |name: &str, ip: &str| {
        sb.berth_ok(&["run", "-d", "--name", name, "--ip", ip, "sleep", "300"]);
    };
    let answers = |name: &str, ip: &str| {
        assert_eq!(
            dig(&sb, "cli", name),
            ("NOERROR".into(), vec![ip.to_string()]),
            "{name}"
        );
    };
    sb.berth_ok(&["run", "-d", "--name", "cli", "sleep", "300"]);
    run_at("web", "172.17.0.50");
    answers("web", "172.17.0.50");
    sb.berth_ok(&["rm", "-f", "web"]);
    run_at("web", "172.17.0.60");
    answers("web", "172.17.0.60");
    // And one more setup after it (on the records `reload-names` keeps): both names answer.
    run_at("db", "172.17.0.70");
    answers("db", "172.17.0.70");
    answers("web", "172.17.0.60");
}

#[test]
fn kill_9_of_the_agent_leaves_traffic_alone_and_the_next_command_restarts_it() {
    let sb = Sandbox::new();
    two_networks(&sb);
    let ip = sb.ip("web", "front");
    let pid = agent_pid(&sb).expect("the agent runs");
    // A TCP connection that lives across the kill.
    let conn = format!(
        "(for i in 1 2 3 4 5 6; do echo line$i; sleep 0.3; done) | \
         berth exec cli timeout 10 socat -T5 - TCP:{ip}:80"
    );
    let killer = {
        let pid = pid.clone();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(500));
            std::process::Command::new("kill")
                .args(["-9", &pid])
                .status()
                .unwrap();
        })
    };
    let echoed = sb.ok(&conn);
    killer.join().unwrap();
    assert_eq!(echoed.lines().count(), 6, "{echoed}");
    // Gone (or a zombie nobody reaped yet).
    let state = sb.ok(&format!("ps -o stat= -p {pid} || true"));
    assert!(state.trim().is_empty() || state.starts_with('Z'), "{state}");
    // The next command brings it back; DNS answers within a second of that.
    sb.berth_ok(&["run", "--rm", "--network", "front", "true"]);
    let t0 = Instant::now();
    let mut answered = false;
    while t0.elapsed() < Duration::from_secs(1) && !answered {
        answered = dig(&sb, "cli", "web") == ("NOERROR".into(), vec![ip.clone()]);
    }
    assert!(answered, "DNS answers again within 1 s of the restart");
    assert_ne!(agent_pid(&sb).unwrap(), pid);
}

#[test]
fn v6_loopback_ports_stop_with_the_agent_and_come_back_with_it() {
    let sb = Sandbox::new();
    sb.echo_server("web", &["-p", "8080:80"], 80);
    let reply = |addr: &str| {
        sb.sh(&format!(
            "echo ping | timeout 3 socat -T1 - TCP:{addr}:8080,connect-timeout=1"
        ))
        .stdout
        .trim()
            == "ping"
    };
    assert!((0..20).any(|_| reply("[::1]") || {
        std::thread::sleep(Duration::from_millis(150));
        false
    }));
    let pid = agent_pid(&sb).expect("the agent runs");
    sb.ok(&format!(
        "kill -9 {pid}; for i in $(seq 50); do ss -Hltn 'sport = :8080' | grep -q '::1' || exit 0; sleep 0.1; done; exit 1"
    ));
    // [::1] was the agent's; 127.0.0.1 is the kernel's and carries on.
    assert!(!reply("[::1]"), "[::1]:8080 without the agent");
    assert!(reply("127.0.0.1"), "127.0.0.1:8080 without the agent");
    // The next command restarts the agent, which rebinds every [::1] port from the store.
    sb.berth_ok(&["run", "--rm", "true"]);
    assert!(reply("[::1]"), "[::1]:8080 after the restart");
    assert_ne!(agent_pid(&sb).unwrap(), pid);
}

#[test]
fn a_flushed_ruleset_is_restored_without_any_command() {
    let sb = Sandbox::new();
    let mut out = sb.outside();
    out.whoami_server(7000);
    sb.echo_server("web", &["-p", "8080:80"], 80);
    let reply = |sb: &Sandbox| {
        sb.sh("echo ping | timeout 2 socat -T1 - TCP:127.0.0.1:8080,connect-timeout=1")
            .stdout
            .trim()
            == "ping"
    };
    assert!((0..20).any(|_| reply(&sb) || {
        std::thread::sleep(Duration::from_millis(100));
        false
    }));
    sb.ok("nft flush ruleset");
    let t0 = Instant::now();
    let mut back = false;
    while !back && t0.elapsed() < Duration::from_secs(1) {
        back = sb.ok("nft list tables").contains("inet berth") && reply(&sb);
    }
    assert!(back, "published port works again within 1 s");
    let fast_back = (0..20).any(|_| {
        sb.ok("nft list tables").contains("netdev berth") || {
            std::thread::sleep(Duration::from_millis(50));
            false
        }
    });
    assert!(fast_back, "the fast path's table is back too");
    // Outbound NAT too: the outside sees the host's address.
    let seen = sb.ok("berth exec web timeout 3 socat -T2 - TCP:10.99.0.2:7000");
    assert_eq!(seen.trim(), "10.99.0.1");
    let metrics = sb.ok("socat -T2 - TCP:127.0.0.1:9355 <<< $'GET /metrics HTTP/1.0\\r\\n\\r\\n'");
    assert!(
        metrics.contains("berth_firewall_repairs_total 1"),
        "{metrics}"
    );
}

#[test]
fn one_agent_per_run_root_with_metrics_and_a_clean_stop() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "c", "-p", "8080:80", "sleep", "300"]);
    let pid = agent_pid(&sb).expect("started on demand");
    let again = sb.berth(&["agent"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already running"), "{}", again.stderr);
    let again = sb.berth(&["agent", "--foreground", "--metrics-addr", "off"]);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already running"), "{}", again.stderr);
    dig(&sb, "c", "c");
    let m = sb.ok("socat -T2 - TCP:127.0.0.1:9355 <<< $'GET /metrics HTTP/1.0\\r\\n\\r\\n'");
    for needle in [
        "berth_endpoints 1",
        "berth_published_ports 1",
        "berth_relayed_ports 1",
        "berth_operations_total{op=\"setup\"} 1",
        "berth_operation_seconds_bucket",
        "dns",
    ] {
        assert!(m.contains(needle), "{needle} in {m}");
    }
    sb.ok(&format!("kill -TERM {pid}; for i in $(seq 50); do kill -0 {pid} 2>/dev/null || exit 0; sleep 0.1; done; exit 1"));
    assert!(agent_pid(&sb).is_none(), "pid file removed");
    assert!(!sb.run_root().join("agent.sock").exists());
}

/// The fast path's table alone deleted: the agent's watcher of that table restores it, with
/// the running container's element, without any command.
#[test]
fn a_deleted_fast_path_table_is_restored_without_any_command() {
    let sb = Sandbox::new();
    sb.echo_server("web", &["-p", "8080:80"], 80);
    let mac = sb.inspect("web")["Networks"]["bridge"]["MacAddress"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sb.ok("nft list map netdev berth to_port").contains(&mac));
    sb.ok("nft delete table netdev berth");
    let t0 = Instant::now();
    let mut back = false;
    while !back && t0.elapsed() < Duration::from_secs(2) {
        back = sb
            .sh("nft list map netdev berth to_port")
            .stdout
            .contains(&mac);
    }
    assert!(back, "restored within 2 s");
}
