//! The error contract: every failure prints exactly one line `Error: ...` on stderr naming the
//! object and value, exits 1 (clap's usage errors 2, `berth run` 125 when berth itself
//! failed), and changes nothing: links, addresses, routes, the nftables ruleset, berth's
//! networks and containers and its runtime files are the same before and after.

use berth_tests::{shell_quote, Out, Sandbox};

/// Runs `script` (a berth command line, possibly with a prefix) in the sandbox and checks the
/// error contract: exit `code`, one `Error: ` line on stderr starting lower case and
/// containing every needle, and no change to the sandbox's state.
fn fails_sh(sb: &Sandbox, script: &str, code: i32, needles: &[&str]) -> Out {
    let before = settled_state(sb);
    let out = sb.sh(script);
    let after = sb.state();
    assert_eq!(
        out.code, code,
        "`{script}` must exit {code}\nstdout: {}\nstderr: {}",
        out.stdout, out.stderr
    );
    let lines: Vec<&str> = out.stderr.lines().collect();
    assert_eq!(
        lines.len(),
        1,
        "`{script}` must print exactly one line on stderr, got:\n{}",
        out.stderr
    );
    let line = lines[0];
    let message = line
        .strip_prefix("Error: ")
        .unwrap_or_else(|| panic!("`{script}`: stderr must start with \"Error: \", got: {line}"));
    assert!(
        !message.starts_with(|c: char| c.is_ascii_uppercase()),
        "`{script}`: the message is lower case: {line}"
    );
    for needle in needles {
        assert!(
            message.contains(needle),
            "`{script}`: the error must mention {needle:?}, got: {line}"
        );
    }
    assert_unchanged(&before, &after, script);
    out
}

/// Stops the sandbox's agent (SIGTERM) and waits until it is gone.
fn stop_agent(sb: &Sandbox) {
    sb.ok(
        "p=$(cat \"$BERTH_RUN_ROOT\"/agent.pid) && kill -TERM $p && \
           for i in $(seq 50); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; exit 1",
    );
}

/// The sandbox's state once it stopped changing by itself: a bridge that just got its first
/// port reports its operstate (UNKNOWN, then UP) a moment later, which is not berth's doing.
fn settled_state(sb: &Sandbox) -> String {
    let mut last = sb.state();
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let now = sb.state();
        if now == last {
            return now;
        }
        last = now;
    }
    panic!("the sandbox state does not settle:\n{last}");
}

/// Fails with the lines that differ when `after` is not `before`.
fn assert_unchanged(before: &str, after: &str, script: &str) {
    if before == after {
        return;
    }
    let b: Vec<&str> = before.lines().collect();
    let a: Vec<&str> = after.lines().collect();
    let gone: Vec<String> = b
        .iter()
        .filter(|l| !a.contains(l))
        .map(|l| format!("- {l}"))
        .collect();
    let new: Vec<String> = a
        .iter()
        .filter(|l| !b.contains(l))
        .map(|l| format!("+ {l}"))
        .collect();
    panic!(
        "`{script}` failed but changed the host state (- gone, + new):\n{}\n{}",
        gone.join("\n"),
        new.join("\n")
    );
}

/// Runs berth with `args` and checks the error contract (see [`fails_sh`]).
fn fails(sb: &Sandbox, args: &[&str], code: i32, needles: &[&str]) -> Out {
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    fails_sh(sb, &format!("berth {}", quoted.join(" ")), code, needles)
}

/// A usage error found by the argument parser: exit 2, a message, nothing changed.
fn usage_error(sb: &Sandbox, args: &[&str], needle: &str) {
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let script = format!("berth {}", quoted.join(" "));
    let before = settled_state(sb);
    let out = sb.sh(&script);
    assert_eq!(out.code, 2, "`{script}` is a usage error: {out:?}");
    assert!(
        out.stderr.contains(needle),
        "`{script}`: stderr must mention {needle:?}: {}",
        out.stderr
    );
    assert_unchanged(&before, &sb.state(), &script);
}

/// A host with something on it: network `front` (10.5.0.0/16) holding the running container
/// `web` (so its bridge, veth and firewall elements exist). Returns web's address.
fn host_with_web(sb: &Sandbox) -> String {
    sb.berth_ok(&["network", "create", "--subnet", "10.5.0.0/16", "front"]);
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "web",
        "--network",
        "front",
        "sleep",
        "100000",
    ]);
    let ip = sb.ip("web", "front");
    assert_eq!(ip, "10.5.0.2");
    ip
}

/// The names of every container berth knows.
fn container_names(sb: &Sandbox) -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&sb.berth_ok(&["ps", "-a", "--format", "json"])).expect("ps json");
    v.as_array()
        .expect("ps prints an array")
        .iter()
        .map(|c| c["Name"].as_str().expect("a name").to_string())
        .collect()
}

#[test]
fn unknown_networks_and_containers_are_named() {
    let sb = Sandbox::new();
    host_with_web(&sb);

    // Unknown networks.
    fails(
        &sb,
        &["run", "--network", "nope", "sleep", "1"],
        125,
        &["network nope not found"],
    );
    fails(
        &sb,
        &["network", "rm", "nope"],
        1,
        &["network nope not found"],
    );
    fails(
        &sb,
        &["network", "inspect", "nope"],
        1,
        &["network nope not found"],
    );
    fails(
        &sb,
        &["network", "connect", "nope", "web"],
        1,
        &["network nope not found"],
    );
    fails(
        &sb,
        &["network", "disconnect", "nope", "web"],
        1,
        &["network nope not found"],
    );

    // Unknown containers.
    for args in [
        &["inspect", "ghost"][..],
        &["exec", "ghost", "true"],
        &["stop", "ghost"],
        &["rm", "ghost"],
        &["logs", "ghost"],
        &["network", "connect", "front", "ghost"],
        &["network", "disconnect", "front", "ghost"],
    ] {
        fails(&sb, args, 1, &["container ghost not found"]);
    }
    // `rm -f` of a missing container is not an error (as docker rm -f).
    sb.berth_ok(&["rm", "-f", "ghost"]);
}

#[test]
fn duplicate_names_are_refused() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    fails(
        &sb,
        &["network", "create", "front"],
        1,
        &["network front already exists"],
    );
    fails(
        &sb,
        &[
            "run",
            "-d",
            "--name",
            "web",
            "--network",
            "front",
            "sleep",
            "100000",
        ],
        125,
        &["web", "already in use"],
    );
    // Also on another network (the default bridge, not active yet).
    fails(
        &sb,
        &["run", "--rm", "--name", "web", "true"],
        125,
        &["web", "already in use"],
    );
    // A built-in network's name is taken too.
    fails(
        &sb,
        &["network", "create", "bridge"],
        1,
        &["network bridge already exists"],
    );
}

#[test]
fn overlapping_subnets_are_refused() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    sb.berth_ok(&["network", "create", "--subnet", "10.6.0.0/16", "a"]);
    fails(
        &sb,
        &["network", "create", "--subnet", "10.6.1.0/24", "b"],
        1,
        &["10.6.1.0/24", "network a", "10.6.0.0/16"],
    );
    // A wider subnet holding an existing one.
    fails(
        &sb,
        &["network", "create", "--subnet", "10.0.0.0/8", "c"],
        1,
        &["10.0.0.0/8", "overlaps"],
    );
    // The default bridge network's 172.17.0.0/16.
    fails(
        &sb,
        &["network", "create", "--subnet", "172.17.5.0/24", "d"],
        1,
        &["172.17.5.0/24", "network bridge", "172.17.0.0/16"],
    );
    fails(
        &sb,
        &["network", "create", "--subnet", "172.17.0.0/16", "e"],
        1,
        &["172.17.0.0/16", "network bridge"],
    );
    // Two subnets of the same request overlapping each other.
    fails(
        &sb,
        &[
            "network",
            "create",
            "--subnet",
            "10.8.0.0/16",
            "--subnet",
            "10.8.1.0/24",
            "f",
        ],
        1,
        &["10.8.0.0/16", "10.8.1.0/24", "overlaps"],
    );
}

#[test]
fn malformed_input_is_refused_by_value() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    let create = |extra: &[&str], needles: &[&str]| {
        let mut args = vec!["network", "create"];
        args.extend_from_slice(extra);
        fails(&sb, &args, 1, needles);
    };

    // CIDRs.
    create(&["--subnet", "10.0.0.0/33", "x"], &["10.0.0.0/33", "/33"]);
    create(&["--subnet", "banana", "x"], &["invalid subnet", "banana"]);
    create(
        &["--subnet", "10.1.0.5/24", "x"],
        &["10.1.0.5/24", "host bits", "10.1.0.0/24"],
    );
    create(
        &["--subnet", "10.1.0.0", "x"],
        &["10.1.0.0", "prefix length"],
    );
    // IPs.
    create(
        &["--subnet", "10.1.0.0/24", "--gateway", "10.1.0.300", "x"],
        &["invalid address", "10.1.0.300"],
    );
    fails(
        &sb,
        &[
            "run",
            "--network",
            "front",
            "--ip",
            "nonsense",
            "sleep",
            "1",
        ],
        125,
        &["invalid address", "nonsense"],
    );
    fails(
        &sb,
        &["network", "connect", "--ip", "nonsense", "front", "web"],
        1,
        &["nonsense"],
    );
    // MTUs.
    for mtu in ["0", "abc", "70000", "67", "-1"] {
        // `--mtu=VALUE`, so that clap does not take "-1" for a flag.
        create(
            &[&format!("--mtu={mtu}"), "x"],
            &["MTU", &format!("{mtu:?}")],
        );
    }
    create(&["-o", "mtu=abc", "x"], &["MTU", "\"abc\""]);
    // Names.
    create(&["bad name"], &["invalid network name", "\"bad name\""]);
    create(
        &["--", "-leading-dash"],
        &["invalid network name", "-leading-dash"],
    );
    create(&["a/b"], &["invalid network name", "a/b"]);
    fails(
        &sb,
        &["run", "--name=bad/name", "--network", "front", "sleep", "1"],
        125,
        &["invalid container name", "bad/name"],
    );
    fails(
        &sb,
        &["run", "--name=-x", "--network", "front", "sleep", "1"],
        125,
        &["invalid container name", "-x"],
    );
    fails(
        &sb,
        &["run", "--hostname=-bad-", "--network", "front", "true"],
        125,
        &["invalid hostname", "-bad-"],
    );
    // Driver options.
    create(
        &["-o", "frobnicate=1", "x"],
        &["unknown option", "frobnicate"],
    );
    create(&["-o", "frobnicate", "x"], &["frobnicate", "KEY=VALUE"]);
    create(&["-o", "icc=maybe", "x"], &["icc", "maybe"]);
    create(
        &["-o", "bridge_name=waytoolongbridgename", "x"],
        &["invalid interface name", "waytoolongbridgename"],
    );
    create(
        &["-o", "bridge_name=a/b", "x"],
        &["invalid interface name", "a/b"],
    );
    // Bridge names already taken: by a host interface, or by a network not active yet.
    create(
        &["-o", "bridge_name=lo", "x"],
        &["interface lo", "already exists"],
    );
    sb.berth_ok(&["network", "create", "-o", "bridge_name=brcold", "cold"]);
    create(
        &["-o", "bridge_name=brcold", "x"],
        &["bridge brcold", "network cold"],
    );
    // Labels, ranges, IPv6 subnets.
    create(&["--label", "nokey", "x"], &["invalid label", "nokey"]);
    create(
        &[
            "--subnet",
            "10.30.0.0/24",
            "--ip-range",
            "10.31.0.0/24",
            "x",
        ],
        &["ip range 10.31.0.0/24", "not inside"],
    );
    create(
        &["--ip-range", "10.31.0.0/24", "x"],
        &["--ip-range", "--subnet"],
    );
    create(&["--subnet", "fd00:1::/64", "x"], &["fd00:1::/64", "IPv6"]);
    // Container settings.
    fails(
        &sb,
        &["run", "--dns", "banana", "--network", "front", "true"],
        125,
        &["invalid address", "banana"],
    );
    fails(
        &sb,
        &["run", "--alias", "bad alias", "--network", "front", "true"],
        125,
        &["invalid alias name", "\"bad alias\""],
    );
    fails(
        &sb,
        &["network", "connect", "--alias", "bad alias", "front", "web"],
        1,
        &["invalid alias name", "\"bad alias\""],
    );
}

#[test]
fn addresses_outside_the_subnet_or_taken_are_refused() {
    let sb = Sandbox::new();
    let web = host_with_web(&sb);
    sb.berth_ok(&["network", "create", "--subnet", "10.9.0.0/24", "back"]);

    fails(
        &sb,
        &[
            "run",
            "--network",
            "front",
            "--ip",
            "10.200.0.5",
            "sleep",
            "1",
        ],
        125,
        &["10.200.0.5", "front", "10.5.0.0/16"],
    );
    fails(
        &sb,
        &["run", "--network", "front", "--ip", &web, "sleep", "1"],
        125,
        &[&web, "already in use", "front"],
    );
    fails(
        &sb,
        &[
            "run",
            "--network",
            "front",
            "--ip",
            "10.5.0.1",
            "sleep",
            "1",
        ],
        125,
        &["10.5.0.1", "gateway"],
    );
    fails(
        &sb,
        &[
            "run",
            "--network",
            "front",
            "--ip",
            "10.5.255.255",
            "sleep",
            "1",
        ],
        125,
        &["10.5.255.255", "broadcast"],
    );
    // The same through `network connect` (web is on front; a second container joins back).
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "back",
        "sleep",
        "100000",
    ]);
    let db = sb.ip("db", "back");
    fails(
        &sb,
        &["network", "connect", "--ip", &db, "back", "web"],
        1,
        &[&db, "already in use", "back"],
    );
    fails(
        &sb,
        &["network", "connect", "--ip", "10.5.0.9", "back", "web"],
        1,
        &["10.5.0.9", "back", "10.9.0.0/24"],
    );
    fails(
        &sb,
        &["network", "connect", "front", "web"],
        1,
        &["web", "already connected", "front"],
    );
    fails(
        &sb,
        &["network", "disconnect", "back", "web"],
        1,
        &["web", "not connected", "back"],
    );

    // A gateway outside its subnet, or on a reserved address of it.
    fails(
        &sb,
        &[
            "network",
            "create",
            "--subnet",
            "10.6.0.0/24",
            "--gateway",
            "10.7.0.1",
            "g",
        ],
        1,
        &["gateway 10.7.0.1", "10.6.0.0/24"],
    );
    fails(
        &sb,
        &[
            "network",
            "create",
            "--subnet",
            "10.6.0.0/24",
            "--gateway",
            "10.6.0.255",
            "g",
        ],
        1,
        &["10.6.0.255", "broadcast"],
    );
    fails(
        &sb,
        &["network", "create", "--gateway", "10.6.0.1", "g"],
        1,
        &["--gateway", "--subnet"],
    );
}

#[test]
fn networks_in_use_and_built_in_networks_are_not_removed() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    fails(
        &sb,
        &["network", "rm", "front"],
        1,
        &["network front", "web"],
    );
    for builtin in ["bridge", "host", "none"] {
        fails(
            &sb,
            &["network", "rm", builtin],
            1,
            &[&format!("network {builtin}"), "built-in"],
        );
    }
    // A running container is not removed without -f.
    fails(&sb, &["rm", "web"], 1, &["container web", "running"]);
    // web is still there after all of that.
    assert_eq!(container_names(&sb), ["web"]);
}

#[test]
fn berth_refuses_to_run_without_root() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    let nobody = "setpriv --reuid=65534 --regid=65534 --clear-groups";
    fails_sh(
        &sb,
        &format!("{nobody} berth network create x"),
        1,
        &["root"],
    );
    fails_sh(
        &sb,
        &format!("{nobody} berth network rm front"),
        1,
        &["root"],
    );
    fails_sh(&sb, &format!("{nobody} berth rm -f web"), 1, &["root"]);
    fails_sh(
        &sb,
        &format!("{nobody} berth run --network front sleep 1"),
        125,
        &["root"],
    );
}

/// Writes an `nft` that fails every batch as a kernel without an nftables feature does;
/// returns its path.
fn fake_unsupported_nft(sb: &Sandbox) -> String {
    let fake = sb
        .root()
        .parent()
        .expect("the sandbox directory")
        .join("fake-nft")
        .display()
        .to_string();
    sb.ok(&format!(
        "printf '%s\\n' '#!/bin/sh' 'cat >/dev/null' \
         'echo \"Error: Could not process rule: Operation not supported\" >&2' 'exit 1' \
         > {f} && chmod 755 {f}",
        f = shell_quote(&fake)
    ));
    fake
}

/// `network rm` of a network with no containers (no bridge, no firewall elements) while the
/// firewall cannot be programmed: it either succeeds (there was nothing to undo) or fails
/// and leaves the network in place. It must not delete the network and then report an error.
fn rm_with_broken_firewall(sb: &Sandbox, nft: &str, args: &[&str], net: &str) {
    let quoted: Vec<String> = args.iter().map(|a| shell_quote(a)).collect();
    let script = format!("BERTH_NFT={} berth {}", shell_quote(nft), quoted.join(" "));
    let before = settled_state(sb);
    let out = sb.sh(&script);
    let after = sb.state();
    if out.code == 0 {
        let ls = sb.berth_ok(&["network", "ls"]);
        assert!(
            !ls.lines().any(|l| l.split_whitespace().nth(1) == Some(net)),
            "`{script}` succeeded but {net} is still listed:\n{ls}"
        );
        return;
    }
    assert_eq!(out.stderr.lines().count(), 1, "`{script}`: {out:?}");
    assert!(out.stderr.starts_with("Error: "), "`{script}`: {out:?}");
    assert_unchanged(&before, &after, &script);
}

#[test]
fn removing_an_idle_network_with_a_broken_firewall_is_all_or_nothing() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    let fake = fake_unsupported_nft(&sb);
    sb.berth_ok(&["network", "create", "idle1"]);
    sb.berth_ok(&["network", "create", "idle2"]);
    rm_with_broken_firewall(&sb, "/nonexistent", &["network", "rm", "idle1"], "idle1");
    rm_with_broken_firewall(&sb, &fake, &["network", "rm", "idle2"], "idle2");
    sb.berth_ok(&["network", "create", "idle3"]);
    rm_with_broken_firewall(&sb, "/nonexistent", &["network", "prune"], "idle3");
}

#[test]
fn a_failed_first_activation_leaves_ip_forwarding_as_it_was() {
    // No network yet: the first activation of a bridge (at `network create`) turns
    // forwarding on. When the firewall then cannot be programmed, the create fails and must
    // not leave forwarding on (it would route between interfaces with none of berth's rules
    // in place), nor the network or its bridge.
    let sb = Sandbox::new();
    let fake = fake_unsupported_nft(&sb);
    // berth's runtime directories exist (state() lists them), forwarding is not touched yet.
    sb.berth_ok(&["run", "--rm", "--network", "none", "true"]);
    let before = sb.ok("sysctl -n net.ipv4.ip_forward");
    assert_eq!(before.trim(), "0", "a fresh namespace does not forward");
    let create = format!("BERTH_NFT={} berth network create cold", shell_quote(&fake));
    fails_sh(&sb, &create, 1, &["kernel", "modules"]);
    let after = sb.ok("sysctl -n net.ipv4.ip_forward");
    assert_eq!(
        before.trim(),
        after.trim(),
        "`{create}` failed but changed net.ipv4.ip_forward"
    );
}

#[test]
fn a_missing_nft_binary_says_to_install_nftables() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    // A network whose bridge is active (front) and one that is not yet (cold).
    sb.berth_ok(&["network", "create", "cold"]);
    // nft is needed only to (re)install berth's table: here someone deleted it (with the
    // agent, which would restore it at once, stopped).
    stop_agent(&sb);
    sb.ok("nft delete table inet berth");
    let missing = "BERTH_NFT=/nonexistent";
    fails_sh(
        &sb,
        &format!("{missing} berth run --network front sleep 1"),
        125,
        &["nft", "install", "nftables"],
    );
    fails_sh(
        &sb,
        &format!("{missing} berth run -d --network cold sleep 100000"),
        125,
        &["nft", "install", "nftables"],
    );
    fails_sh(
        &sb,
        &format!("{missing} berth network connect cold web"),
        1,
        &["nft", "install", "nftables"],
    );
    // Once the table is there, setup and teardown need no nft at all (netlink only).
    sb.berth_ok(&["firewall", "reload"]);
    let out = sb.ok(&format!(
        "{missing} berth run --rm --network cold -p 8080:80 true && echo ok"
    ));
    assert_eq!(out.trim(), "ok");
}

#[test]
fn a_missing_kernel_feature_is_reported_and_undone() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    let fake = fake_unsupported_nft(&sb);
    let net = sb.berth_ok(&["network", "create", "--subnet", "10.20.0.0/24", "cold"]);
    let bridge = format!("br-{}", &net[..12]);
    // nft runs only to (re)install berth's table: here someone deleted it (with the agent,
    // which would restore it at once, stopped).
    stop_agent(&sb);
    sb.ok("nft delete table inet berth");

    let run = format!(
        "BERTH_NFT={} berth run -d --name probe --network cold sleep 100000",
        shell_quote(&fake)
    );
    let before = sb.ok("ip -br link | awk '{print $1}'; ip -br addr");
    fails_sh(&sb, &run, 125, &["kernel", "modules", "nftables"]);
    // The parts spelled out: links and addresses as they were (the network's bridge is
    // there since `network create`), no container row, no namespace file.
    let links = sb.ok("ip -br link | awk '{print $1}'; ip -br addr");
    assert_eq!(before, links, "the failed run changed links or addresses");
    assert!(links.contains(&bridge), "{links}");
    assert_eq!(container_names(&sb), ["web"]);
    let netns = sb.ok("ls -A \"$BERTH_RUN_ROOT\"/netns 2>/dev/null | wc -l");
    assert_eq!(netns.trim(), "1", "only web's namespace file remains");
    let addrs = sb.ok("ip -br addr");
    assert!(
        !addrs.contains("10.20.0.2"),
        "no container address of cold: {addrs}"
    );

    // Foreground, with --rm, and through `network connect`.
    let run_rm = format!(
        "BERTH_NFT={} berth run --rm --network cold true",
        shell_quote(&fake)
    );
    fails_sh(&sb, &run_rm, 125, &["kernel", "modules"]);
    let connect = format!(
        "BERTH_NFT={} berth network connect cold web",
        shell_quote(&fake)
    );
    fails_sh(&sb, &connect, 1, &["kernel", "modules"]);
    assert!(sb.inspect("web")["Networks"]["cold"].is_null());

    // The real nft still works afterwards: the same run succeeds.
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "probe",
        "--network",
        "cold",
        "sleep",
        "100000",
    ]);
    assert_eq!(sb.ip("probe", "cold"), "10.20.0.2");
}

#[test]
fn a_failing_container_command_exits_with_its_own_status() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    let before = settled_state(&sb);
    let out = sb.berth(&["run", "--rm", "--network", "front", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "the command's own status: {out:?}");
    assert!(
        !out.stderr.contains("Error"),
        "the command failing is not berth failing: {out:?}"
    );
    assert_unchanged(
        &before,
        &sb.state(),
        "run --rm sh -c 'exit 7' (must leave nothing)",
    );

    // Without --rm the exit code is recorded; the default network works the same way.
    let out = sb.berth(&["run", "--name", "seven", "sh", "-c", "exit 7"]);
    assert_eq!(out.code, 7, "{out:?}");
    assert_eq!(sb.inspect("seven")["ExitCode"], 7);
    assert_eq!(sb.inspect("seven")["State"], "exited");
    let out = sb.berth(&[
        "run",
        "--rm",
        "--network",
        "front",
        "sh",
        "-c",
        "kill -9 $$",
    ]);
    assert_eq!(out.code, 128 + 9, "killed by SIGKILL: {out:?}");
    // exec passes the status through too.
    let out = sb.berth(&["exec", "web", "sh", "-c", "exit 5"]);
    assert_eq!(out.code, 5, "{out:?}");
    // A command that does not exist: 127, as a shell (and Docker) says.
    fails(
        &sb,
        &["exec", "web", "no-such-command"],
        127,
        &["no-such-command", "web"],
    );
}

#[test]
fn running_a_command_that_does_not_exist_exits_127_and_leaves_nothing() {
    // Docker's contract: 125 when the engine failed, 126 when the command cannot be
    // invoked, 127 when it cannot be found; `berth exec` already says 127.
    let sb = Sandbox::new();
    host_with_web(&sb);
    for args in [
        &["run", "--network", "front", "no-such-command"][..],
        &["run", "--rm", "--network", "front", "no-such-command"],
        &["run", "-d", "--network", "front", "no-such-command"],
    ] {
        fails(&sb, args, 127, &["no-such-command"]);
    }
}

#[test]
fn host_and_none_modes_do_not_mix_and_other_drivers_are_refused() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    fails(
        &sb,
        &[
            "run",
            "--network",
            "host",
            "--network",
            "front",
            "sleep",
            "1",
        ],
        125,
        &["network host", "cannot be combined"],
    );
    fails(
        &sb,
        &[
            "run",
            "--network",
            "front",
            "--network",
            "none",
            "sleep",
            "1",
        ],
        125,
        &["network none", "cannot be combined"],
    );
    fails(
        &sb,
        &["run", "--network", "none", "--ip", "1.2.3.4", "sleep", "1"],
        125,
        &["--ip", "none"],
    );
    fails(
        &sb,
        &["run", "--network", "host", "--ip", "1.2.3.4", "sleep", "1"],
        125,
        &["--ip", "host"],
    );
    fails(
        &sb,
        &["run", "--network", "front", "--network", "front", "true"],
        125,
        &["network front", "twice"],
    );
    fails(
        &sb,
        &["network", "connect", "host", "web"],
        1,
        &["network host", "host driver"],
    );
    sb.berth_ok(&[
        "run",
        "-d",
        "--name",
        "hosted",
        "--network",
        "host",
        "sleep",
        "100000",
    ]);
    fails(
        &sb,
        &["network", "connect", "front", "hosted"],
        1,
        &["container hosted", "host networking"],
    );
    fails(
        &sb,
        &["network", "create", "-d", "overlay", "x"],
        1,
        &["overlay networks need a cluster store", "--store etcd://"],
    );
    fails(
        &sb,
        &["network", "create", "-d", "host", "x"],
        1,
        &["\"host\"", "built-in network host"],
    );
    fails(
        &sb,
        &["network", "create", "-d", "none", "x"],
        1,
        &["\"none\"", "built-in network none"],
    );
    fails(
        &sb,
        &["network", "create", "-d", "macvlan", "x"],
        1,
        &["unknown driver", "\"macvlan\""],
    );
}

#[test]
fn usage_errors_exit_2_and_change_nothing() {
    let sb = Sandbox::new();
    host_with_web(&sb);
    usage_error(&sb, &["network", "create"], "Usage");
    usage_error(&sb, &["run", "--network", "front"], "Usage");
    usage_error(&sb, &["run", "--name"], "--name");
    usage_error(&sb, &["stop", "--time", "soon", "web"], "soon");
    usage_error(&sb, &["network", "frobnicate"], "frobnicate");
    usage_error(&sb, &["ps", "--format", "yaml"], "yaml");
}
