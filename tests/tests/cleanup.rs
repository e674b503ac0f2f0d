//! Teardown leaves nothing behind, is idempotent, and works when the namespace file is gone.

use berth_tests::Sandbox;

/// Every berth-owned trace in the sandbox, listed piece by piece.
fn leftovers(sb: &Sandbox) -> Vec<String> {
    assert!(
        sb.settle(),
        "removed containers' veth pairs are destroyed within 5 s"
    );
    let mut found = Vec::new();
    let links = sb.ok("ip -br link | awk '{print $1}' | cut -d@ -f1");
    found.extend(
        links
            .lines()
            .filter(|l| *l != "lo" && *l != "out0")
            .map(|l| format!("link {l}")),
    );
    let addrs = sb.ok("ip -br -4 addr | awk '$1 != \"lo\" {print $1, $3}'");
    found.extend(addrs.lines().map(|l| format!("address {l}")));
    // Sets and maps of `inet berth` must hold no element.
    let elements = sb.ok("nft -j list table inet berth 2>/dev/null | jq -r '.nftables[] | (.set // .map) | select(.elem) | .name' || true");
    found.extend(elements.lines().map(|l| format!("nft elements in {l}")));
    let db = sb.root().join("berth.db");
    let rows = sb.ok(&format!(
        "sqlite3 {} \"SELECT 'containers', count(*) FROM containers UNION ALL \
         SELECT 'endpoints', count(*) FROM endpoints UNION ALL \
         SELECT 'allocations', count(*) FROM allocations UNION ALL \
         SELECT 'user networks', count(*) FROM networks WHERE builtin = 0\"",
        db.display()
    ));
    found.extend(
        rows.lines()
            .filter(|l| !l.ends_with("|0"))
            .map(|l| format!("store rows {l}")),
    );
    let files = sb.ok("find \"$BERTH_RUN_ROOT/netns\" \"$BERTH_RUN_ROOT/containers\" -mindepth 1 2>/dev/null || true");
    found.extend(files.lines().map(|l| format!("file {l}")));
    let mounts = sb.ok("grep -c \"$BERTH_RUN_ROOT\" /proc/self/mounts || true");
    if mounts.trim() != "0" {
        found.push(format!("{} namespace mounts", mounts.trim()));
    }
    found
}

/// The default network's bridge, once it had a container: its link, gateway and elements.
const DEFAULT_BRIDGE_STAYS: [&str; 6] = [
    "link berth0",
    "address berth0 172.17.0.1/16",
    "nft elements in bridges",
    "nft elements in same_bridge",
    "nft elements in bridged4",
    "nft elements in masq4",
];

#[test]
fn a_user_network_has_its_bridge_from_create_to_rm() {
    let sb = Sandbox::new();
    let id = sb.berth_ok(&["network", "create", "--subnet", "10.30.0.0/24", "early"]);
    let br = format!("br-{}", &id[..12]);
    let addr = sb.ok(&format!("ip -br -4 addr show {br}"));
    assert!(
        addr.contains("10.30.0.1/24"),
        "bridge with its gateway: {addr}"
    );
    let masq = sb.ok("nft list set inet berth masq4");
    assert!(masq.contains("10.30.0.0/24"), "{masq}");
    sb.berth_ok(&["run", "--rm", "--network", "early", "true"]);
    assert!(sb.settle());
    sb.ok(&format!("ip link show {br}"));
    sb.berth_ok(&["network", "rm", "early"]);
    assert_ne!(sb.sh(&format!("ip link show {br}")).code, 0);
    let masq = sb.ok("nft list set inet berth masq4");
    assert!(!masq.contains("10.30.0.0/24"), "{masq}");
    assert_eq!(leftovers(&sb), Vec::<String>::new());
}

#[test]
fn removing_every_container_and_network_leaves_nothing() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "one"]);
    sb.berth_ok(&["network", "create", "--internal", "two"]);
    sb.berth_ok(&["network", "create", "-o", "icc=false", "three"]);
    sb.berth_ok(&["run", "-d", "--name", "a", "sleep", "100000"]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "b",
        "--network",
        "one",
        "--network",
        "two",
        "sleep",
        "100000",
    ]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "c",
        "--network",
        "three",
        "sleep",
        "100000",
    ]);
    sb.berth_ok(&["run", "--name", "d", "--network", "one", "true"]);
    sb.berth_ok(&["network", "connect", "three", "a"]);
    assert!(
        leftovers(&sb).len() >= 10,
        "the scenario builds kernel state: {:?}",
        leftovers(&sb)
    );

    sb.berth_ok(&["rm", "-f", "a", "b", "c", "d"]);
    sb.berth_ok(&["network", "rm", "one", "two", "three"]);
    // What stays is the default network's bridge, as Docker's docker0 does: networks are
    // active from their creation (the default one from its first container) until removed.
    assert_eq!(leftovers(&sb), DEFAULT_BRIDGE_STAYS);
    let nets = sb.berth_ok(&["network", "ls", "--format", "json"]);
    let nets: serde_json::Value = serde_json::from_str(&nets).unwrap();
    let names: Vec<_> = nets
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["bridge", "host", "none"]);
}

#[test]
fn rm_force_twice_succeeds() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "twice", "sleep", "100000"]);
    sb.berth_ok(&["rm", "-f", "twice"]);
    let again = sb.berth(&["rm", "-f", "twice"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert_eq!(leftovers(&sb), DEFAULT_BRIDGE_STAYS);
}

#[test]
fn rm_of_a_stopped_container_needs_no_force() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "short", "sleep", "100000"]);
    sb.berth_ok(&["stop", "-t", "5", "short"]);
    let v = sb.inspect("short");
    assert_eq!(v["State"], "exited");
    assert_eq!(v["ExitCode"], 143, "SIGTERM recorded as 128+15: {v}");
    sb.berth_ok(&["rm", "short"]);
    assert_eq!(leftovers(&sb), DEFAULT_BRIDGE_STAYS);
}

#[test]
fn host_side_is_removed_when_the_namespace_file_was_deleted() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "lost"]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "orphan",
        "--network",
        "lost",
        "sleep",
        "100000",
    ]);
    let v = sb.inspect("orphan");
    let ns = v["NetNS"].as_str().unwrap().to_string();
    let veth = v["Networks"]["lost"]["HostInterface"]
        .as_str()
        .unwrap()
        .to_string();
    // Behind berth's back: unmount and delete the namespace file. The process still holds
    // the namespace, so the veth pair lives on.
    sb.ok(&format!("umount {ns} && rm {ns}"));
    sb.ok(&format!("ip link show {veth}"));
    sb.berth_ok(&["rm", "-f", "orphan"]);
    assert!(sb.settle());
    assert!(
        sb.sh(&format!("ip link show {veth}")).code != 0,
        "host veth removed"
    );
    sb.berth_ok(&["network", "rm", "lost"]);
    assert_eq!(leftovers(&sb), Vec::<String>::new());
}

#[test]
fn exec_works_after_the_process_exited_and_until_rm() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "--name", "done", "true"]);
    assert_eq!(sb.inspect("done")["State"], "exited");
    let addr = sb.berth_ok(&["exec", "done", "ip", "-4", "-br", "addr", "show", "eth0"]);
    assert!(addr.contains("172.17.0.2/16"), "{addr}");
    let hosts = sb.berth_ok(&["exec", "done", "cat", "/etc/hosts"]);
    assert!(
        hosts
            .lines()
            .any(|l| l.starts_with("172.17.0.2\t") && l.contains("done")),
        "{hosts}"
    );
    sb.berth_ok(&["rm", "done"]);
    assert_ne!(sb.berth(&["exec", "done", "true"]).code, 0);
}

#[test]
fn gc_removes_what_a_crash_left_and_nothing_else() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "keep", "sleep", "100000"]);
    // A crash between creating a veth and recording it, a stray namespace file, a bridge of
    // an active network whose elements were flushed, and someone else's link.
    sb.ok("ip link add bthdeadbeef01 type veth peer name bthdeadbeef02");
    sb.ok("mkdir -p \"$BERTH_RUN_ROOT/netns\" && touch \"$BERTH_RUN_ROOT/netns/0123stray\"");
    sb.ok("ip link add mine0 type bridge");
    sb.ok("nft flush set inet berth masq4");
    let out = sb.berth_ok(&["gc"]);
    assert!(out.contains("link bthdeadbeef0"), "{out}");
    assert!(out.contains("0123stray"), "{out}");
    assert_ne!(sb.sh("ip link show bthdeadbeef01").code, 0);
    assert_ne!(sb.sh("ip link show bthdeadbeef02").code, 0);
    sb.ok("ip link show mine0");
    sb.ok("ip link show berth0");
    let masq = sb.ok("nft list set inet berth masq4");
    assert!(
        masq.contains("172.17.0.0/16"),
        "gc restores the active network's elements: {masq}"
    );
    let keep = sb.inspect("keep");
    assert_eq!(keep["State"], "running");
    sb.ok(&format!(
        "ip link show {}",
        keep["Networks"]["bridge"]["HostInterface"]
            .as_str()
            .unwrap()
    ));
}

#[test]
fn a_container_whose_supervisor_died_shows_exited_and_gc_records_it() {
    let sb = Sandbox::new();
    sb.berth_ok(&["run", "-d", "--name", "victim", "sleep", "100000"]);
    let pid = sb.inspect("victim")["Pid"].as_i64().unwrap();
    // Kill the supervisor first (it would record the exit), then the process.
    sb.ok(&format!("kill -9 $(ps -o ppid= -p {pid}) {pid}"));
    sb.ok("sleep 0.2");
    assert_eq!(sb.inspect("victim")["State"], "exited");
    sb.berth_ok(&["gc"]);
    assert_eq!(
        sb.inspect("victim")["ExitCode"],
        -1,
        "unknown exit status recorded as -1"
    );
    sb.berth_ok(&["rm", "victim"]);
}

#[test]
fn sigterm_to_a_foreground_run_reaches_the_container_and_rm_still_happens() {
    let sb = Sandbox::new();
    let out = sb.ok(
        "berth run --name fg sleep 100000 & b=$!; \
         for i in $(seq 50); do berth inspect fg 2>/dev/null | grep -q '\"running\"' && break; sleep 0.1; done; \
         kill -TERM $b; wait $b; echo rc=$?",
    );
    assert_eq!(
        out.trim(),
        "rc=143",
        "berth exits with the container's status"
    );
    let v = sb.inspect("fg");
    assert_eq!(v["State"], "exited");
    assert_eq!(v["ExitCode"], 143);

    let out = sb.ok(
        "berth run --rm --name gone sleep 100000 & b=$!; \
         for i in $(seq 50); do berth inspect gone 2>/dev/null | grep -q '\"running\"' && break; sleep 0.1; done; \
         kill -INT $b; wait $b; echo rc=$?",
    );
    assert_eq!(out.trim(), "rc=130");
    assert_ne!(sb.berth(&["inspect", "gone"]).code, 0, "--rm removed it");
    sb.berth_ok(&["rm", "fg"]);
    assert_eq!(leftovers(&sb), DEFAULT_BRIDGE_STAYS);
}

#[test]
fn gc_removes_a_container_whose_run_was_killed_mid_setup() {
    let sb = Sandbox::new();
    sb.berth_ok(&["network", "create", "half"]);
    // `network create` installed the table; without it, the run installs it again.
    sb.ok("nft delete table inet berth");
    // An nft that hangs holds `berth run` in the firewall's first install, which happens
    // after the rows are written and before the namespace: the container row exists, the nft
    // batch never returns. Then kill -9 the run.
    let fake = sb.root().with_file_name("hang-nft");
    std::fs::write(&fake, "#!/bin/sh\nexec sleep 600\n").unwrap();
    sb.ok(&format!("chmod +x {}", fake.display()));
    let out = sb.ok(&format!(
        "BERTH_NFT={} berth run --name torn --network half true & b=$!; \
         for i in $(seq 100); do n=$(pgrep -P $b) && break; sleep 0.05; done; \
         kill -9 $b $n; wait $b; echo rc=$?; \
         berth ps -a --format json | jq -r '.[].State'; {{ ls \"$BERTH_RUN_ROOT\"/netns 2>/dev/null || true; }} | wc -l",
        fake.display()
    ));
    assert_eq!(
        out, "rc=137\ncreated\n0\n",
        "a half-built container remains"
    );
    let gc = sb.berth_ok(&["gc"]);
    assert!(gc.contains("container torn: removed"), "{gc}");
    sb.berth_ok(&["network", "rm", "half"]);
    assert_eq!(leftovers(&sb), Vec::<String>::new());
}

#[test]
fn stop_and_rm_end_what_a_detached_container_started() {
    let sb = Sandbox::new();
    let pidfile = sb.root().with_file_name("child.pid");
    for (verb, name) in [("stop", "fam1"), ("rm", "fam2")] {
        sb.berth_ok(&[
            "run",
            "-d",
            "--name",
            name,
            "sh",
            "-c",
            &format!("sleep 100000 & echo $! > {}; wait", pidfile.display()),
        ]);
        let child = sb.ok(&format!(
            "for i in $(seq 50); do [ -s {0} ] && break; sleep 0.05; done; cat {0}",
            pidfile.display()
        ));
        let child = child.trim().to_string();
        sb.ok(&format!("kill -0 {child}"));
        match verb {
            "stop" => sb.berth_ok(&["stop", "-t", "5", name]),
            _ => sb.berth_ok(&["rm", "-f", name]),
        };
        // Gone, or a zombie waiting for the machine's init to reap it.
        let state = sb.ok(&format!(
            "awk '{{print $3}}' /proc/{child}/stat 2>/dev/null || true"
        ));
        assert!(
            matches!(state.trim(), "" | "Z"),
            "{verb}: the container's child {child} is still alive (state {state})"
        );
        std::fs::remove_file(&pidfile).unwrap();
    }
}
