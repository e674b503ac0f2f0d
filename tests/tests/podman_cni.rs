//! Real podman with its CNI backend and berth conflists: names and addresses, published
//! ports, isolation between networks, `network reload`, cleanup on `rm -f`.

use berth_tests::podman::{host_reaches, leftovers, Backend, Podman};
use berth_tests::{shell_quote, Sandbox};
use serde_json::{json, Value};

/// Writes a berth conflist for network `name` on `subnet` into podman's network directory.
fn conflist(p: &Podman, name: &str, subnet: &str) {
    let list = json!({
        "cniVersion": "1.0.0",
        "name": name,
        "plugins": [{
            "type": "berth",
            "bridge": format!("cni-{name}"),
            "subnet": subnet,
            "capabilities": {"portMappings": true, "ips": true, "mac": true, "aliases": true},
        }],
    });
    p.sb.ok(&format!(
        "printf %s {} > {}/networks/{name}.conflist",
        shell_quote(&list.to_string()),
        p.dir.display()
    ));
}

#[test]
fn podman_cni_backend_with_berth_conflists() {
    let sb = Sandbox::new();
    let p = Podman::new(&sb, Backend::Cni);
    conflist(&p, "c1", "10.41.0.0/24");
    conflist(&p, "c2", "10.42.0.0/24");
    let ls = p.ok("network ls --format '{{.Name}}'");
    assert!(ls.contains("c1") && ls.contains("c2"), "{ls}");
    p.echo_server("a", "--network c1 -p 8081:80");
    p.echo_server("b", "--network c1");
    p.echo_server("c", "--network c2");
    let (ip_a, ip_c) = (p.ip("a", "c1"), p.ip("c", "c2"));
    assert!(ip_a.starts_with("10.41.0."), "{ip_a}");
    assert!(p.wait_reaches("b", &ip_a), "b cannot reach a at {ip_a}");
    assert!(
        p.wait_reaches("b", "a"),
        "b cannot reach a by name: {:?} {}",
        p.sh("exec b cat /etc/resolv.conf"),
        sb.berth_ok(&["ps", "--format", "json"])
    );
    assert!(
        host_reaches(&sb, 8081),
        "-p 8081:80 not reachable on 127.0.0.1"
    );
    assert!(!p.reaches("c", &ip_a), "c2 reached c1");
    assert!(!p.reaches("b", &ip_c), "c1 reached c2");
    let net: Value = serde_json::from_str(&sb.berth_ok(&["network", "inspect", "c1"])).unwrap();
    assert_eq!(net[0]["Containers"].as_object().unwrap().len(), 2, "{net}");
    assert_eq!(net[0]["Labels"]["berth.door"], "cni");
    p.ok("network reload --all");
    // Reload is CNI DEL + ADD: as with the reference host-local IPAM, the addresses come
    // from the allocator again (berth's goes on after the last one given out).
    let ip_a = p.ip("a", "c1");
    assert!(p.wait_reaches("b", &ip_a), "after reload: b cannot reach a");
    assert!(p.wait_reaches("b", "a"), "after reload: no name");
    assert!(host_reaches(&sb, 8081), "after reload: port gone");
    assert!(!p.reaches("c", &ip_a), "after reload: c2 reached c1");
    p.ok("rm -f -t 0 a b c");
    assert_eq!(leftovers(&sb), "");
    assert_eq!(sb.berth_ok(&["ps", "-a", "-q"]), "");
}
