//! Tests of [`crate::nftables`] and [`crate::conntrack`] against the real
//! kernel. Like `privileged_tests`, they need root and never touch the
//! host's namespaces: each test re-runs itself inside `unshare -n -m
//! --propagation private` and only there runs `nft` and its netlink code.
//! They need the `nft` program (to declare tables and read them back).

use std::fs;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::conntrack::{self, Mapping};
use crate::netlink::Netlink;
use crate::nftables::{encode, Batch, Change, Element, Family, Monitor, Nftables};
use crate::privileged_tests::sandboxed;

macro_rules! test_name {
    ($f:ident) => {
        concat!("privileged_nft_tests::", stringify!($f))
    };
}

/// Runs `nft -f` on `script` (inside the sandbox only).
fn nft_script(dir: &Path, script: &str) {
    let path = dir.join("ruleset.nft");
    fs::write(&path, script).unwrap();
    let out = Command::new("nft")
        .arg("-f")
        .arg(&path)
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "nft -f failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `nft ARGS` (inside the sandbox only) and returns its output.
fn nft(args: &str) -> String {
    let out = Command::new("nft")
        .args(args.split(' '))
        .output()
        .expect("run nft");
    assert!(
        out.status.success(),
        "nft {args}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The `elements = { ... }` of `nft list set|map`: the elements with
/// whitespace collapsed, sorted (hash sets list in any order), joined by
/// ", "; "" when the set is empty.
fn listed(kind: &str, name: &str) -> String {
    let text = nft(&format!("list {kind} inet t {name}"));
    let Some(start) = text.find("elements = {") else {
        return String::new();
    };
    let rest = &text[start + "elements = {".len()..];
    let body = &rest[..rest.find('}').unwrap()];
    let body = body.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut items: Vec<&str> = body.split(',').map(str::trim).collect();
    items.sort_unstable();
    items.join(", ")
}

const TABLE: &str = "table inet t {
    set s_if { type ifname; }
    set s_pair { type ifname . ifname; }
    set s_v4 { type ipv4_addr; flags interval; }
    set s_v6 { type ipv6_addr; flags interval; }
    map m_any { type inet_proto . inet_service : ipv4_addr . inet_service; }
    map m_addr { type ipv4_addr . inet_proto . inet_service : ipv4_addr . inet_service; }
    map m6 { type inet_proto . inet_service : ipv6_addr . inet_service; }
    map m_range { type inet_proto . inet_service : ipv4_addr; flags interval; }
    chain c { type filter hook forward priority 0; ct state established accept; iifname @s_if accept; }
}
";

fn v4(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const TCP: u8 = libc::IPPROTO_TCP as u8;
const UDP: u8 = libc::IPPROTO_UDP as u8;

/// For each berth set type: add over netlink, compare with what `nft list`
/// shows, re-add (no error), destroy, destroy again (no error).
#[test]
fn elements_of_every_berth_set_type() {
    sandboxed(test_name!(elements_of_every_berth_set_type), |dir| {
        nft_script(dir, TABLE);
        let mut nft_nl = Nftables::open().unwrap();
        let br = |n| encode::ifname(n).unwrap();
        let svc = |p, port| encode::concat(&[&encode::proto(p), &encode::port(port)]);
        let cases: Vec<(&str, &str, Vec<Element>, &str)> = vec![
            (
                "set",
                "s_if",
                vec![Element::key(br("br0")), Element::key(br("berth1"))],
                r#""berth1", "br0""#,
            ),
            (
                "set",
                "s_pair",
                vec![Element::key(encode::concat(&[&br("br0"), &br("br0")]))],
                r#""br0" . "br0""#,
            ),
            (
                "set",
                "s_v4",
                [
                    encode::prefix("172.18.0.0/16".parse().unwrap()),
                    encode::prefix("10.0.0.1/32".parse().unwrap()),
                ]
                .concat(),
                "10.0.0.1, 172.18.0.0/16",
            ),
            (
                "set",
                "s_v6",
                encode::prefix("fd00:1::/64".parse().unwrap()),
                "fd00:1::/64",
            ),
            (
                // a subnet without its gateway, as `bridged4` holds it
                "set",
                "s_v4",
                [
                    encode::range(ip("10.91.0.0"), ip("10.91.0.0")).unwrap(),
                    encode::range(ip("10.91.0.2"), ip("10.91.255.255")).unwrap(),
                ]
                .concat(),
                "10.91.0.0, 10.91.0.2-10.91.255.255",
            ),
            (
                "set",
                "s_v6",
                encode::range(ip("fd00:1::2"), ip("fd00:1::ffff:ffff:ffff:ffff")).unwrap(),
                "fd00:1::2-fd00:1::ffff:ffff:ffff:ffff",
            ),
            (
                "map",
                "m_any",
                vec![Element::map(
                    svc(TCP, 8080),
                    encode::concat(&[&encode::ipv4(v4("172.17.0.2")), &encode::port(80)]),
                )],
                "tcp . 8080 : 172.17.0.2 . 80",
            ),
            (
                "map",
                "m_addr",
                vec![Element::map(
                    encode::concat(&[
                        &encode::ipv4(v4("127.0.0.1")),
                        &encode::proto(TCP),
                        &encode::port(8080),
                    ]),
                    encode::concat(&[&encode::ipv4(v4("172.17.0.2")), &encode::port(80)]),
                )],
                "127.0.0.1 . tcp . 8080 : 172.17.0.2 . 80",
            ),
            (
                "map",
                "m6",
                vec![Element::map(
                    svc(UDP, 53),
                    encode::concat(&[&encode::ipv6(v6("fd00::2")), &encode::port(53)]),
                )],
                "udp . 53 : fd00::2 . 53",
            ),
            (
                "map",
                "m_range",
                vec![
                    Element::range(svc(TCP, 8000), svc(TCP, 8010))
                        .with_data(encode::ipv4(v4("172.17.0.2"))),
                    Element::range(svc(UDP, 53), svc(UDP, 53))
                        .with_data(encode::ipv4(v4("172.17.0.3"))),
                ],
                "tcp . 8000-8010 : 172.17.0.2, udp . 53 : 172.17.0.3",
            ),
        ];
        for (kind, set, elems, text) in &cases {
            let mut batch = Batch::new();
            batch.add(Family::Inet, "t", set, elems);
            nft_nl.send(&batch).unwrap();
            assert_eq!(listed(kind, set), *text, "{set}");
            let mut dumped = nft_nl.elements(Family::Inet, "t", set).unwrap();
            let mut sent = elems.clone();
            dumped.sort_by(|a, b| a.key.cmp(&b.key));
            sent.sort_by(|a, b| a.key.cmp(&b.key));
            assert_eq!(dumped, sent, "{set}");
            // Adding the same elements again is fine.
            nft_nl.send(&batch).unwrap();
            assert_eq!(listed(kind, set), *text, "{set}");

            let mut batch = Batch::new();
            batch.destroy(Family::Inet, "t", set, elems);
            nft_nl.send(&batch).unwrap();
            assert_eq!(listed(kind, set), "", "{set}");
            assert!(nft_nl.elements(Family::Inet, "t", set).unwrap().is_empty());
            // Destroying what is not there is not an error.
            nft_nl.send(&batch).unwrap();
        }
        // A prefix that reaches the top of the address space has no end element.
        let mut batch = Batch::new();
        batch.add(
            Family::Inet,
            "t",
            "s_v4",
            &encode::prefix("240.0.0.0/4".parse().unwrap()),
        );
        nft_nl.send(&batch).unwrap();
        assert_eq!(listed("set", "s_v4"), "240.0.0.0/4");
        // Elements added by nft are destroyed by the same encoding.
        nft("add element inet t s_v4 { 172.20.0.0/16 }");
        let mut batch = Batch::new();
        batch.destroy(
            Family::Inet,
            "t",
            "s_v4",
            &encode::prefix("172.20.0.0/16".parse().unwrap()),
        );
        nft_nl.send(&batch).unwrap();
        assert_eq!(listed("set", "s_v4"), "240.0.0.0/4");
        // ... and nft deletes elements added over netlink.
        let mut batch = Batch::new();
        batch.add(
            Family::Inet,
            "t",
            "s_v4",
            &encode::prefix("172.21.0.0/16".parse().unwrap()),
        );
        nft_nl.send(&batch).unwrap();
        nft("delete element inet t s_v4 { 172.21.0.0/16 }");
        assert_eq!(listed("set", "s_v4"), "240.0.0.0/4");
    });
}

/// One batch over several sets is all or nothing, and errors are typed and
/// name the set.
#[test]
fn batches_are_atomic_and_errors_name_the_set() {
    sandboxed(
        test_name!(batches_are_atomic_and_errors_name_the_set),
        |dir| {
            nft_script(dir, TABLE);
            let mut nl = Nftables::open().unwrap();
            assert!(nl.table_exists(Family::Inet, "t").unwrap());
            assert!(!nl.table_exists(Family::Inet, "nope").unwrap());
            assert!(!nl.table_exists(Family::Ip, "t").unwrap());
            assert!(nl.set_exists(Family::Inet, "t", "s_v4").unwrap());
            assert!(nl.set_exists(Family::Inet, "t", "m_any").unwrap());
            assert!(!nl.set_exists(Family::Inet, "t", "nope").unwrap());
            assert!(!nl.set_exists(Family::Inet, "nope", "s_v4").unwrap());

            let mut batch = Batch::new();
            batch.add(
                Family::Inet,
                "t",
                "s_if",
                &[Element::key(encode::ifname("br0").unwrap())],
            );
            batch.add(
                Family::Inet,
                "t",
                "s_v4",
                &encode::prefix("10.1.0.0/16".parse().unwrap()),
            );
            batch.add(
                Family::Inet,
                "t",
                "missing",
                &[Element::key(vec![1, 2, 3, 4])],
            );
            let err = nl.send(&batch).unwrap_err();
            assert_eq!(err.errno(), Some(libc::ENOENT), "{err}");
            assert!(
                err.to_string()
                    .starts_with("add 1 element to set inet t missing: "),
                "{err}"
            );
            assert_eq!(listed("set", "s_if"), "");
            assert_eq!(listed("set", "s_v4"), "");

            // A key of the wrong length is refused (EINVAL) and nothing applies.
            let mut batch = Batch::new();
            batch.add(
                Family::Inet,
                "t",
                "s_if",
                &[Element::key(encode::ifname("br0").unwrap())],
            );
            batch.add(
                Family::Inet,
                "t",
                "m_any",
                &[Element::map(vec![6], vec![1, 2, 3, 4])],
            );
            let err = nl.send(&batch).unwrap_err();
            assert_eq!(err.errno(), Some(libc::EINVAL), "{err}");
            assert!(
                err.to_string()
                    .starts_with("add 1 element to set inet t m_any"),
                "{err}"
            );
            assert_eq!(listed("set", "s_if"), "");

            // A map key that exists with other data: EEXIST, typed.
            let key = encode::concat(&[&encode::proto(TCP), &encode::port(80)]);
            let to = |a| encode::concat(&[&encode::ipv4(v4(a)), &encode::port(80)]);
            let mut batch = Batch::new();
            batch.add(
                Family::Inet,
                "t",
                "m_any",
                &[Element::map(key.clone(), to("10.0.0.2"))],
            );
            nl.send(&batch).unwrap();
            let mut batch = Batch::new();
            batch.add(
                Family::Inet,
                "t",
                "m_any",
                &[Element::map(key, to("10.0.0.3"))],
            );
            assert!(nl.send(&batch).unwrap_err().is_exists());
            assert_eq!(listed("map", "m_any"), "tcp . 80 : 10.0.0.2 . 80");

            // An empty batch sends nothing and succeeds.
            nl.send(&Batch::new()).unwrap();
        },
    );
}

/// 1000 elements in one call: several messages in one batch.
#[test]
fn a_thousand_elements_in_one_batch() {
    sandboxed(test_name!(a_thousand_elements_in_one_batch), |dir| {
        nft_script(dir, TABLE);
        let mut nl = Nftables::open().unwrap();
        let elems: Vec<Element> = (0..1000u16)
            .map(|i| {
                Element::map(
                    encode::concat(&[
                        &encode::ipv4(v4("127.0.0.1")),
                        &encode::proto(TCP),
                        &encode::port(10000 + i),
                    ]),
                    encode::concat(&[
                        &encode::ipv4(Ipv4Addr::from(0xac11_0000 + u32::from(i))),
                        &encode::port(80),
                    ]),
                )
            })
            .collect();
        let subnets: Vec<Element> = (0..200u32)
            .flat_map(|i| {
                encode::prefix(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap())
            })
            .collect();
        let mut batch = Batch::new();
        batch.add(Family::Inet, "t", "m_addr", &elems);
        batch.add(Family::Inet, "t", "s_v4", &subnets);
        nl.send(&batch).unwrap();
        assert_eq!(
            nl.elements(Family::Inet, "t", "m_addr").unwrap().len(),
            1000
        );
        assert_eq!(nl.elements(Family::Inet, "t", "s_v4").unwrap().len(), 400);
        // A dump that overlaps the kernel's deferred resize of the set's hash table can repeat
        // or skip elements (seen under load), so `nft` reads until a listing is whole.
        let want = "127.0.0.1 . tcp . 10999 : 172.17.3.231 . 80";
        let mut text = listed("map", "m_addr");
        for _ in 0..40 {
            if text.contains(want) {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
            text = listed("map", "m_addr");
        }
        assert!(text.contains(want), "{text}");
        let mut batch = Batch::new();
        batch.destroy(Family::Inet, "t", "m_addr", &elems);
        batch.destroy(Family::Inet, "t", "s_v4", &subnets);
        nl.send(&batch).unwrap();
        assert_eq!(listed("map", "m_addr"), "");
        assert_eq!(listed("set", "s_v4"), "");
    });
}

/// Waits up to 1 s for `want`, skipping other changes.
fn expect_change(monitor: &mut Monitor, want: &Change) {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut seen = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match monitor.next(Some(left)).unwrap() {
            Some(change) if change == *want => return,
            Some(change) => seen.push(change),
            None => break,
        }
    }
    panic!("no {want:?} within 1 s; saw {seen:?}");
}

#[test]
fn monitor_reports_deletions_in_the_table() {
    sandboxed(test_name!(monitor_reports_deletions_in_the_table), |dir| {
        nft_script(dir, TABLE);
        nft_script(
            dir,
            "table inet other {\n chain x { type filter hook input priority 0; accept; }\n}\n",
        );
        let mut monitor = Monitor::open(Family::Inet, "t").unwrap();
        assert_eq!(monitor.next(Some(Duration::from_millis(50))).unwrap(), None);

        // Changes to another table are not reported.
        nft("flush chain inet other x");
        assert_eq!(
            monitor.next(Some(Duration::from_millis(200))).unwrap(),
            None
        );

        nft("flush chain inet t c");
        expect_change(&mut monitor, &Change::RuleDeleted { chain: "c".into() });

        let mut nl = Nftables::open().unwrap();
        let el = [Element::key(encode::ifname("br0").unwrap())];
        let mut batch = Batch::new();
        batch.add(Family::Inet, "t", "s_if", &el);
        nl.send(&batch).unwrap();
        expect_change(&mut monitor, &Change::Other);
        let mut batch = Batch::new();
        batch.destroy(Family::Inet, "t", "s_if", &el);
        nl.send(&batch).unwrap();
        expect_change(
            &mut monitor,
            &Change::ElementsDeleted { set: "s_if".into() },
        );

        nft("delete set inet t s_pair");
        expect_change(&mut monitor, &Change::SetDeleted("s_pair".into()));

        nft("flush ruleset");
        expect_change(&mut monitor, &Change::TableDeleted);
        assert_eq!(
            monitor.next(Some(Duration::from_millis(100))).unwrap(),
            None
        );
    });
}

/// Port mappings on loopback: DNAT in the output hook.
const CT_RULESET: &str = "table inet ctt {
    chain out {
        type nat hook output priority -100;
        ip daddr 127.0.0.1 meta l4proto { tcp, udp } th dport 8080 dnat ip to 127.0.0.1:9090
        ip daddr 127.0.0.1 udp dport 7070 dnat ip to 127.0.0.1:7071
        ip6 daddr ::1 udp dport 8080 dnat ip6 to [::1]:9090
    }
}
";

/// Loopback connections through DNATs: 127.0.0.1:8080 -> 127.0.0.1:9090
/// (TCP and UDP) and [::1]:8080 -> [::1]:9090 (UDP) are deleted; another
/// mapping's entries (7070 -> 7071) and untranslated traffic stay.
#[test]
fn conntrack_entries_of_a_mapping_are_deleted() {
    sandboxed(
        test_name!(conntrack_entries_of_a_mapping_are_deleted),
        |dir| {
            let mut nl = Netlink::open().unwrap();
            let lo = nl.link_by_name("lo").unwrap().unwrap();
            nl.set_up(lo.index).unwrap();
            nft_script(dir, CT_RULESET);
            let listener = TcpListener::bind("127.0.0.1:9090").unwrap();
            let mut client = TcpStream::connect("127.0.0.1:8080").unwrap();
            let (mut server, _) = listener.accept().unwrap();
            client.write_all(b"x").unwrap();
            let mut byte = [0u8; 1];
            server.read_exact(&mut byte).unwrap();
            let sockets: Vec<UdpSocket> = (0..3)
                .map(|_| {
                    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
                    for to in ["127.0.0.1:8080", "127.0.0.1:7070", "127.0.0.1:9090"] {
                        s.send_to(b"x", to).unwrap();
                    }
                    s
                })
                .collect();
            let s6 = UdpSocket::bind("[::1]:0").unwrap();
            s6.send_to(b"x", "[::1]:8080").unwrap();

            let localhost: IpAddr = "127.0.0.1".parse().unwrap();
            let mapping = |proto, host_port, addr: IpAddr, container_port| Mapping {
                proto,
                host_port,
                orig_dst: None,
                container_addr: addr,
                container_port,
            };
            let tcp = mapping(TCP, 8080, localhost, 9090);
            let udp = mapping(UDP, 8080, localhost, 9090);
            let udp6 = mapping(UDP, 8080, "::1".parse().unwrap(), 9090);
            let other = mapping(UDP, 7070, localhost, 7071);
            // Direct traffic to 9090 looks like a 9090 -> 9090 mapping but was
            // not translated: it is not a mapping's entry.
            let direct = mapping(UDP, 9090, localhost, 9090);
            assert_eq!(conntrack::count_matching(&tcp).unwrap(), 1);
            assert_eq!(conntrack::count_matching(&udp).unwrap(), 3);
            assert_eq!(conntrack::count_matching(&udp6).unwrap(), 1);
            assert_eq!(conntrack::count_matching(&other).unwrap(), 3);
            assert_eq!(conntrack::count_matching(&direct).unwrap(), 0);
            let bound = Mapping {
                orig_dst: Some(localhost),
                ..udp.clone()
            };
            assert_eq!(conntrack::count_matching(&bound).unwrap(), 3);
            let elsewhere = Mapping {
                orig_dst: Some("127.0.0.2".parse().unwrap()),
                ..udp.clone()
            };
            assert_eq!(conntrack::count_matching(&elsewhere).unwrap(), 0);
            let untranslated = conntrack_lines("dport=9090 ");
            assert_eq!(untranslated, 3);

            let all = [tcp.clone(), udp.clone(), udp6.clone()];
            assert_eq!(conntrack::delete_mapping_entries(&all).unwrap(), 5);
            for m in &all {
                assert_eq!(conntrack::count_matching(m).unwrap(), 0, "{m:?}");
            }
            assert_eq!(conntrack::count_matching(&other).unwrap(), 3);
            assert_eq!(conntrack_lines("dport=9090 "), untranslated);
            assert_eq!(conntrack::delete_mapping_entries(&all).unwrap(), 0);
            drop((sockets, s6, client, server));
        },
    );
}

/// Lines of /proc/net/nf_conntrack whose original tuple contains `what`
/// (the first `dport=` is the original direction's).
fn conntrack_lines(what: &str) -> usize {
    let table = fs::read_to_string("/proc/net/nf_conntrack").unwrap_or_default();
    table
        .lines()
        .filter(|l| {
            l.split("dport=")
                .nth(1)
                .is_some_and(|d| format!("dport={d}").starts_with(what))
        })
        .count()
}
