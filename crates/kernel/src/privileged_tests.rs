//! Tests against the real kernel. They need root (CAP_NET_ADMIN,
//! CAP_SYS_ADMIN) and never touch the host's namespaces: each test re-runs
//! itself inside `unshare -n -m --propagation private` (a fresh network
//! namespace and a private mount namespace) and only there does its work.
//! Without root they fail, saying so.

use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::netlink::Netlink;
use crate::{netns, process, sysctl};

const SANDBOX_ENV: &str = "BERTH_KERNEL_SANDBOXED";
const TMP_ENV: &str = "BERTH_KERNEL_TEST_DIR";

/// Runs `body` inside a fresh network + mount namespace by re-executing
/// this test binary for the single test `name` under `unshare`.
pub(crate) fn sandboxed(name: &str, body: impl FnOnce(&Path)) {
    if std::env::var_os(SANDBOX_ENV).is_some() {
        let dir = PathBuf::from(std::env::var_os(TMP_ENV).expect("sandbox sets the test dir"));
        body(&dir);
        return;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "test {name} needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) to create namespaces; \
         run `cargo test -p berth-kernel` as root"
    );
    let dir = std::env::temp_dir().join(format!(
        "berth-kernel-{}-{}",
        std::process::id(),
        name.replace("::", "-")
    ));
    fs::create_dir_all(&dir).unwrap();
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("unshare")
        .args(["--net", "--mount", "--propagation", "private"])
        .arg(exe)
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(SANDBOX_ENV, "1")
        .env(TMP_ENV, &dir)
        .output()
        .expect("run unshare (util-linux)");
    // The sandbox's mounts died with it; what is left are plain files.
    let _ = fs::remove_dir_all(&dir);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "sandboxed {name} failed ({}):\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        output.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "sandboxed {name} did not run exactly one test:\n{stdout}"
    );
}

/// The test's name as libtest knows it ("privileged_tests::foo").
macro_rules! test_name {
    ($f:ident) => {
        concat!("privileged_tests::", stringify!($f))
    };
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn current_inode() -> u64 {
    netns::inode_of(Path::new("/proc/thread-self/ns/net")).unwrap()
}

#[test]
fn netlink_bridge_veth_addresses_routes() {
    sandboxed(test_name!(netlink_bridge_veth_addresses_routes), |dir| {
        let mut nl = Netlink::open().unwrap();
        let lo = nl
            .links()
            .unwrap()
            .into_iter()
            .find(|l| l.name == "lo")
            .unwrap();
        nl.set_up(lo.index).unwrap();

        // Bridge; a second create keeps EEXIST typed.
        let br = nl.create_bridge("berth-t0", Some(1400)).unwrap();
        let err = nl.create_bridge("berth-t0", None).unwrap_err();
        assert!(err.is_exists(), "{err}");
        assert!(
            err.to_string()
                .starts_with("create bridge berth-t0: file exists"),
            "{err}"
        );
        let link = nl.link_by_name("berth-t0").unwrap().unwrap();
        assert_eq!(
            (link.index, link.kind.as_deref(), link.mtu),
            (br, Some("bridge"), 1400)
        );
        assert!(!link.up);
        // Born without multicast snooping (see `bridge_message`).
        let out = Command::new("ip")
            .args(["-j", "-d", "link", "show", "dev", "berth-t0"])
            .output()
            .unwrap();
        let json = String::from_utf8_lossy(&out.stdout);
        assert!(json.contains("\"mcast_snooping\":0"), "{json}");

        // Container namespace at a temp path; creating it twice fails typed.
        let ns_path = dir.join("c1");
        netns::create(&ns_path).unwrap();
        assert!(netns::create(&ns_path).unwrap_err().is_exists());
        let ns = netns::open(&ns_path).unwrap();
        assert_ne!(netns::inode(&ns).unwrap(), current_inode());

        // veth whose peer is born inside the container namespace as eth0.
        let mac = [0x02, 0x42, 0x0a, 0x58, 0x00, 0x02];
        let host = nl
            .create_veth("bth-t1", "eth0", &ns, Some(1400), Some(mac))
            .unwrap();
        assert!(nl.link_by_name("eth0").unwrap().is_none());
        let host_link = nl.link_by_index(host).unwrap().unwrap();
        assert_eq!(host_link.name, "bth-t1");
        assert_eq!(host_link.kind.as_deref(), Some("veth"));
        assert_eq!(host_link.mtu, 1400);
        assert!(host_link.netnsid.is_some(), "{host_link:?}");
        let err = nl
            .create_veth("bth-t1", "eth1", &ns, None, None)
            .unwrap_err();
        assert!(err.is_exists(), "{err}");

        let mut cnl = Netlink::open_in(&ns).unwrap();
        let eth0 = cnl.link_by_name("eth0").unwrap().unwrap();
        assert_eq!(eth0.mac, Some(mac));
        assert_eq!(eth0.mtu, 1400);
        assert_eq!(eth0.kind.as_deref(), Some("veth"));

        // Port setup.
        nl.set_master(host, br).unwrap();
        nl.set_mtu(host, 1300).unwrap();
        nl.set_up(host).unwrap();
        nl.set_up(br).unwrap();
        let bridge_mac = [0x02, 0x42, 0x0a, 0x58, 0x00, 0x01];
        nl.set_mac(br, bridge_mac).unwrap();
        let host_link = nl.link_by_index(host).unwrap().unwrap();
        assert_eq!(host_link.master, Some(br));
        assert_eq!(host_link.mtu, 1300);
        assert!(host_link.up);
        assert_eq!(host_link.port_isolated, Some(false));
        assert_eq!(nl.link_by_index(br).unwrap().unwrap().mac, Some(bridge_mac));
        let err = nl.set_up(999_999).unwrap_err();
        assert!(err.is_not_found(), "{err}");

        // A veth made as a port of the bridge in one request, down; the index it returns
        // (echoed by the kernel) is the link's.
        let port = nl
            .create_veth_port("bth-t2", "eth1", &ns, None, None, br, 0)
            .unwrap();
        let port_link = nl.link_by_index(port).unwrap().unwrap();
        assert_eq!(port_link.name, "bth-t2");
        assert_eq!(nl.link_by_name("bth-t2").unwrap().unwrap().index, port);
        assert_eq!(port_link.master, Some(br));
        assert!(!port_link.up, "{port_link:?}");
        assert!(cnl.link_by_name("eth1").unwrap().is_some());
        let err = nl
            .create_veth_port("bth-t2", "eth2", &ns, None, None, br, 0)
            .unwrap_err();
        assert!(err.is_exists(), "{err}");
        nl.delete_link(port).unwrap();

        // Port isolation, read back through netlink and through `bridge`.
        nl.set_port_isolated(host, true).unwrap();
        let host_link = nl.link_by_index(host).unwrap().unwrap();
        assert_eq!(host_link.port_isolated, Some(true));
        let out = Command::new("bridge")
            .args(["-j", "-d", "link", "show", "dev", "bth-t1"])
            .output()
            .unwrap();
        let json = String::from_utf8_lossy(&out.stdout);
        assert!(json.contains("\"isolated\":true"), "{json}");
        nl.set_port_isolated(host, false).unwrap();
        assert_eq!(
            nl.link_by_index(host).unwrap().unwrap().port_isolated,
            Some(false)
        );

        // Addresses.
        nl.add_address(br, ip("10.88.0.1"), 16).unwrap();
        nl.add_address(br, ip("fd00:88::1"), 64).unwrap();
        let err = nl.add_address(br, ip("10.88.0.1"), 16).unwrap_err();
        assert!(err.is_exists(), "{err}");
        let addrs = nl.addresses().unwrap();
        for (addr, len) in [("10.88.0.1", 16), ("fd00:88::1", 64), ("127.0.0.1", 8)] {
            assert!(
                addrs
                    .iter()
                    .any(|a| a.addr == ip(addr) && a.prefix_len == len),
                "{addr}/{len} missing in {addrs:?}"
            );
        }
        assert!(addrs
            .iter()
            .any(|a| a.index == br && a.addr == ip("10.88.0.1")));

        // Inside the container: address, lo up, default route via the bridge.
        let lo = cnl.link_by_name("lo").unwrap().unwrap();
        assert!(!lo.up);
        cnl.set_up(lo.index).unwrap();
        cnl.set_up(eth0.index).unwrap();
        cnl.add_address(eth0.index, ip("10.88.0.2"), 16).unwrap();
        cnl.add_route("0.0.0.0/0".parse().unwrap(), Some(ip("10.88.0.1")), None)
            .unwrap();
        let err = cnl
            .add_route("0.0.0.0/0".parse().unwrap(), Some(ip("10.88.0.1")), None)
            .unwrap_err();
        assert!(err.is_exists(), "{err}");
        cnl.add_route("fd00:99::/64".parse().unwrap(), None, Some(eth0.index))
            .unwrap();
        let routes = cnl.routes().unwrap();
        let default = routes
            .iter()
            .find(|r| r.dst == "0.0.0.0/0".parse().unwrap())
            .unwrap_or_else(|| panic!("no default route in {routes:?}"));
        assert_eq!(default.gateway, Some(ip("10.88.0.1")));
        assert_eq!(default.oif, Some(eth0.index));
        assert_eq!(default.table, crate::netlink::TABLE_MAIN);
        assert!(routes
            .iter()
            .any(|r| r.dst == "10.88.0.0/16".parse().unwrap() && r.oif == Some(eth0.index)));
        assert!(routes
            .iter()
            .any(|r| r.dst == "fd00:99::/64".parse().unwrap() && r.gateway.is_none()));
        assert!(routes
            .iter()
            .all(|r| r.table != crate::netlink::TABLE_LOCAL));
        // The host namespace got none of that.
        assert!(!nl.routes().unwrap().iter().any(|r| r.gateway.is_some()));

        // Deletion: typed not-found, idempotent by name, peer goes too.
        assert!(nl.delete_link(999_999).unwrap_err().is_not_found());
        assert!(nl.delete_link_by_name("bth-t1").unwrap());
        assert!(!nl.delete_link_by_name("bth-t1").unwrap());
        assert!(cnl.link_by_name("eth0").unwrap().is_none());
        nl.delete_link(br).unwrap();
        assert!(nl.link_by_name("berth-t0").unwrap().is_none());

        drop(cnl);
        drop(ns);
        netns::remove(&ns_path).unwrap();
        assert!(!ns_path.exists());
        netns::remove(&ns_path).unwrap();
    });
}

#[test]
fn netns_open_in_makes_the_socket_there_and_comes_back() {
    sandboxed(
        test_name!(netns_open_in_makes_the_socket_there_and_comes_back),
        |dir| {
            let ns_path = dir.join("c3");
            netns::create(&ns_path).unwrap();
            let ns = netns::open(&ns_path).unwrap();
            let before = current_inode();
            assert_ne!(before, netns::inode(&ns).unwrap());

            // The socket is bound to the namespace: it sees only that namespace's lo, not
            // the bridge made out here, while this thread is back where it was.
            Netlink::open()
                .unwrap()
                .create_bridge("outer0", None)
                .unwrap();
            let mut inner = Netlink::open_in(&ns).unwrap();
            assert_eq!(current_inode(), before);
            let links = inner.links().unwrap();
            assert_eq!(links.len(), 1, "{links:?}");
            assert_eq!(links[0].name, "lo");
            let outer = Netlink::open().unwrap().links().unwrap();
            assert!(outer.iter().any(|l| l.name == "outer0"), "{outer:?}");

            // A panic while inside is resumed here, with the thread back home.
            let panicked = std::panic::catch_unwind(|| netns::open_in(&ns, || panic!("inside")));
            panicked.unwrap_err();
            assert_eq!(current_inode(), before);

            // A file that is not a namespace is refused before anything moves.
            let status = fs::File::open("/proc/self/status").unwrap();
            assert!(netns::open_in(&status, || ()).is_err());
            assert_eq!(current_inode(), before);

            drop((inner, ns));
            netns::remove(&ns_path).unwrap();
        },
    );
}

/// The port's STP state as `bridge link` reports it ("forwarding", "disabled", ...).
fn port_state(name: &str) -> String {
    let out = output(Command::new("bridge").args(["link", "show", "dev", name]));
    let mut words = out.split_whitespace();
    words.find(|w| *w == "state");
    words.next().unwrap_or_default().to_string()
}

#[test]
fn a_disabled_port_stays_on_its_bridge_and_forwards_nothing_until_its_carrier_returns() {
    sandboxed(
        test_name!(
            a_disabled_port_stays_on_its_bridge_and_forwards_nothing_until_its_carrier_returns
        ),
        |dir| {
            let ns_path = dir.join("c4");
            netns::create(&ns_path).unwrap();
            let ns = netns::open(&ns_path).unwrap();
            let mut nl = Netlink::open().unwrap();
            let br = nl.create_bridge("berth-t4", None).unwrap();
            nl.set_up(br).unwrap();
            let host = nl
                .create_veth_port("bth-t4", "eth0", &ns, None, None, br, 0)
                .unwrap();
            let mut inner = Netlink::open_in(&ns).unwrap();
            let peer = inner.link_by_name("eth0").unwrap().unwrap().index;
            inner.set_up(peer).unwrap();
            nl.set_up(host).unwrap();
            let forwarding = || {
                (0..200).any(|_| {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    port_state("bth-t4") == "forwarding"
                })
            };
            assert!(forwarding(), "state {}", port_state("bth-t4"));

            assert!(nl.disable_port_by_name("bth-t4").unwrap());
            assert_eq!(port_state("bth-t4"), "disabled");
            let link = nl.link_by_index(host).unwrap().unwrap();
            assert_eq!(link.master, Some(br), "still a port of its bridge");
            assert!(!nl.disable_port_by_name("bth-gone").unwrap());

            // The kernel's own rule, which the agent's prompt deletion has to beat: a
            // carrier coming back enables the port again.
            inner.set_down(peer).unwrap();
            inner.set_up(peer).unwrap();
            assert!(forwarding(), "state {}", port_state("bth-t4"));

            nl.delete_link(host).unwrap();
            drop((inner, ns));
            netns::remove(&ns_path).unwrap();
        },
    );
}

#[test]
fn netns_run_in_returns_to_the_original_namespace() {
    sandboxed(
        test_name!(netns_run_in_returns_to_the_original_namespace),
        |dir| {
            let ns_path = dir.join("c2");
            netns::create(&ns_path).unwrap();
            let ns = netns::open(&ns_path).unwrap();
            let target = netns::inode(&ns).unwrap();
            assert_eq!(target, netns::inode_of(&ns_path).unwrap());
            let before = current_inode();
            assert_ne!(before, target);

            let seen = netns::run_in(&ns, current_inode).unwrap();
            assert_eq!(seen, target);
            assert_eq!(current_inode(), before);
            assert_eq!(netns::inode(&netns::current().unwrap()).unwrap(), before);

            // A panic inside is resumed here; this thread never moved.
            let panicked = std::panic::catch_unwind(|| netns::run_in(&ns, || panic!("inside")));
            panicked.unwrap_err();
            assert_eq!(current_inode(), before);

            // An error inside the closure comes back as a value.
            let links = netns::run_in(&ns, || Netlink::open().and_then(|mut nl| nl.links()))
                .unwrap()
                .unwrap();
            assert_eq!(links.len(), 1, "{links:?}");
            assert_eq!(links[0].name, "lo");

            // A file that is not a namespace is refused by setns.
            let status = fs::File::open("/proc/self/status").unwrap();
            assert!(netns::run_in(&status, || ()).is_err());

            drop(ns);
            netns::remove(&ns_path).unwrap();
            netns::remove(&ns_path).unwrap();
            // Removing a leftover plain file (interrupted create) works too.
            fs::write(&ns_path, "").unwrap();
            netns::remove(&ns_path).unwrap();
            assert!(!ns_path.exists());
        },
    );
}

#[test]
fn sysctl_is_per_namespace() {
    sandboxed(test_name!(sysctl_is_per_namespace), |dir| {
        sysctl::write("net/ipv4/ip_forward", "1").unwrap();
        assert_eq!(sysctl::read("net/ipv4/ip_forward").unwrap(), "1");
        assert_eq!(sysctl::read("net.ipv4.ip_forward").unwrap(), "1");

        let ns_path = dir.join("c3");
        netns::create(&ns_path).unwrap();
        let ns = netns::open(&ns_path).unwrap();
        let inside = netns::run_in(&ns, || sysctl::read("net/ipv4/ip_forward"))
            .unwrap()
            .unwrap();
        assert_eq!(inside, "0");

        sysctl::write("net/ipv4/ip_forward", "0").unwrap();
        assert_eq!(sysctl::read("net/ipv4/ip_forward").unwrap(), "0");
        let err = sysctl::write("net/ipv4/no_such_key", "1").unwrap_err();
        assert!(err.is_not_found(), "{err}");
        drop(ns);
        netns::remove(&ns_path).unwrap();
    });
}

fn output(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn process_isolation_applies_in_the_child_only() {
    sandboxed(
        test_name!(process_isolation_applies_in_the_child_only),
        |dir| {
            let ns_path = dir.join("c4");
            netns::create(&ns_path).unwrap();
            let target = netns::inode_of(&ns_path).unwrap();
            let host_name = fs::read_to_string("/proc/sys/kernel/hostname").unwrap();

            // Hostname and network namespace.
            let mut cmd = Command::new("sh");
            cmd.args([
                "-c",
                "cat /proc/sys/kernel/hostname; stat -L -c %i /proc/self/ns/net",
            ]);
            process::apply(
                &mut cmd,
                process::Isolation {
                    netns: Some(netns::open(&ns_path).unwrap()),
                    new_uts: true,
                    hostname: Some("berth-c4".into()),
                    ..Default::default()
                },
            )
            .unwrap();
            let out = output(&mut cmd);
            let mut lines = out.lines();
            assert_eq!(lines.next(), Some("berth-c4"));
            assert_eq!(lines.next(), Some(target.to_string().as_str()));
            assert_eq!(
                fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
                host_name
            );

            // Bind mounts: the child sees the source, we keep the original, and
            // a symlinked destination is bound at its target.
            let src = dir.join("resolv.conf.berth");
            let dst = dir.join("resolv.conf");
            let link = dir.join("resolv.link");
            fs::write(&src, "nameserver 10.88.0.1\n").unwrap();
            fs::write(&dst, "nameserver 192.0.2.53\n").unwrap();
            std::os::unix::fs::symlink(&dst, &link).unwrap();
            for shown in [&dst, &link] {
                let mut cmd = Command::new("cat");
                cmd.arg(shown);
                process::apply(
                    &mut cmd,
                    process::Isolation {
                        new_mount_ns: true,
                        bind_files: vec![
                            (src.clone(), shown.clone()),
                            (src.clone(), dir.join("missing")),
                        ],
                        ..Default::default()
                    },
                )
                .unwrap();
                assert_eq!(output(&mut cmd), "nameserver 10.88.0.1\n");
                assert_eq!(fs::read_to_string(&dst).unwrap(), "nameserver 192.0.2.53\n");
            }
            assert!(!dir.join("missing").exists());

            // New session: the shell is its own session leader.
            let mut cmd = Command::new("sh");
            cmd.args(["-c", "echo $$; cut -d' ' -f6 /proc/$$/stat"]);
            process::apply(
                &mut cmd,
                process::Isolation {
                    new_session: true,
                    ..Default::default()
                },
            )
            .unwrap();
            let out = output(&mut cmd);
            let mut lines = out.lines();
            assert_eq!(lines.next(), lines.next(), "{out}");

            // A failing step makes spawn fail instead of running the program
            // unisolated.
            let mut cmd = Command::new("true");
            process::apply(
                &mut cmd,
                process::Isolation {
                    netns: Some(fs::File::open("/proc/self/status").unwrap()),
                    ..Default::default()
                },
            )
            .unwrap();
            let err = cmd.status().unwrap_err();
            assert_eq!(err.raw_os_error(), Some(libc::EINVAL), "{err}");

            // Liveness and signals on a real child.
            let mut child = Command::new("sleep").arg("30").spawn().unwrap();
            let pid = child.id() as i32;
            let start = process::start_time(pid).unwrap();
            assert!(process::is_alive(pid, start));
            process::kill(pid, libc::SIGTERM).unwrap();
            child.wait().unwrap();
            assert!(!process::is_alive(pid, start));
            assert!(process::kill(pid, 0).unwrap_err().is_not_found());

            netns::remove(&ns_path).unwrap();
        },
    );
}

#[test]
fn link_counters_and_neighbour_entries_follow_real_traffic() {
    sandboxed(
        test_name!(link_counters_and_neighbour_entries_follow_real_traffic),
        |dir| {
            let mut nl = Netlink::open().unwrap();
            let ns_path = dir.join("c1");
            netns::create(&ns_path).unwrap();
            let ns = netns::open(&ns_path).unwrap();
            let mac = [0x02, 0x42, 0x0a, 0x59, 0x00, 0x02];
            let host = nl
                .create_veth("bth-s1", "eth0", &ns, None, Some(mac))
                .unwrap();
            nl.add_address(host, ip("10.89.0.1"), 24).unwrap();
            nl.set_up(host).unwrap();
            let mut cnl = Netlink::open_in(&ns).unwrap();
            let eth0 = cnl.link_by_name("eth0").unwrap().unwrap();
            cnl.add_address(eth0.index, ip("10.89.0.2"), 24).unwrap();
            cnl.set_up(eth0.index).unwrap();
            let before = nl.link_by_index(host).unwrap().unwrap().stats.unwrap();

            // 20 datagrams of 1000 bytes to the namespace's address cross the veth.
            let sock = std::net::UdpSocket::bind("10.89.0.1:0").unwrap();
            for _ in 0..20 {
                sock.send_to(&[7u8; 1000], "10.89.0.2:9").unwrap();
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
            let after = nl.link_by_index(host).unwrap().unwrap().stats.unwrap();
            assert!(
                after.tx_bytes - before.tx_bytes >= 20_000,
                "{before:?} -> {after:?}"
            );
            assert!(after.tx_packets - before.tx_packets >= 20);
            let inside = cnl
                .link_by_index(eth0.index)
                .unwrap()
                .unwrap()
                .stats
                .unwrap();
            assert!(inside.rx_bytes >= 20_000, "{inside:?}");

            // The host resolved the namespace's address to eth0's MAC.
            let n = nl
                .neighbours()
                .unwrap()
                .into_iter()
                .find(|n| n.addr == ip("10.89.0.2"))
                .expect("neighbour entry for 10.89.0.2");
            assert_eq!((n.index, n.mac), (host, Some(mac)));
            assert_ne!(n.state, "FAILED");
        },
    );
}
