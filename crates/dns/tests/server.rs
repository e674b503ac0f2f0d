//! The server over real sockets, on loopback only.

mod common;

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use berth_dns::{Config, Server};
use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

fn setup() -> (Server, SocketAddr, Upstream, Upstream) {
    let up = Upstream::start(false);
    let gamma_up = Upstream::start(false);
    let (server, addr) = start(Config::default(), &snapshot(up.addr, gamma_up.addr));
    (server, addr, up, gamma_up)
}

#[test]
fn answers_names_aliases_short_ids_and_qualified_names() {
    let (_s, addr, up, _) = setup();
    let web_front = vec![ip("127.0.10.10")];
    for name in [
        "web",
        "WEB",
        "www",
        "0123456789ab",
        "web.front",
        "web.berth.internal",
        "Web.Front.Berth.Internal.",
        "www.front.berth.internal",
        "0123456789ab.berth.internal",
    ] {
        let r = ask(addr, ALPHA, name, RecordType::A);
        assert_eq!(rcode(&r), ResponseCode::NoError, "{name}");
        assert!(r.metadata.authoritative, "{name}");
        assert_eq!(addrs(&r), web_front, "{name}");
        assert!(r.answers.iter().all(|a| a.ttl == 5), "{name}");
    }
    let r = ask(addr, ALPHA, "web", RecordType::AAAA);
    assert_eq!(addrs(&r), vec![ip("fd00:10::10")]);
    // A name that exists with no record of the type: NODATA with the domain's SOA.
    let r = ask(addr, ALPHA, "alpha.berth.internal", RecordType::AAAA);
    assert_eq!(rcode(&r), ResponseCode::NoError);
    assert!(r.answers.is_empty());
    let (owner, soa, ttl) = soa(&r).expect("soa in authority");
    assert_eq!(owner.to_ascii(), "berth.internal.");
    assert_eq!(soa.minimum, 5);
    assert_eq!(ttl, 5);
    assert_eq!(up.udp() + up.tcp(), 0, "berth names are never forwarded");
}

#[test]
fn nxdomain_under_the_domain_with_soa() {
    let (_s, addr, up, _) = setup();
    for name in [
        "nope.berth.internal",
        "web.nope.berth.internal",
        "db.berth.internal",
    ] {
        let r = ask(addr, ALPHA, name, RecordType::A);
        assert_eq!(rcode(&r), ResponseCode::NXDomain, "{name}");
        assert!(r.metadata.authoritative);
        let (owner, _, _) = soa(&r).expect("soa in authority");
        assert_eq!(owner.to_ascii(), "berth.internal.");
    }
    assert_eq!(up.udp(), 0);
}

#[test]
fn reverse_lookups() {
    let (_s, addr, up, _) = setup();
    let r = ask(addr, ALPHA, "10.10.0.127.in-addr.arpa", RecordType::PTR);
    assert_eq!(rcode(&r), ResponseCode::NoError);
    let targets: Vec<String> = r
        .answers
        .iter()
        .filter_map(|a| match &a.data {
            RData::PTR(p) => Some(p.0.to_ascii()),
            _ => None,
        })
        .collect();
    assert_eq!(targets, ["web.front.berth.internal."]);
    // From back, web's back address names it on back.
    let r = ask(addr, BETA, "10.20.0.127.in-addr.arpa", RecordType::PTR);
    assert!(
        matches!(&r.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "web.back.berth.internal.")
    );
    // Free address in a shared subnet: NXDOMAIN in the subnet's reverse zone.
    let r = ask(addr, ALPHA, "99.10.0.127.in-addr.arpa", RecordType::PTR);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    assert_eq!(soa(&r).unwrap().0.to_ascii(), "10.0.127.in-addr.arpa.");
    assert_eq!(up.udp(), 0);
    // An address on a network alpha is not on: not berth's business for alpha.
    let r = ask(addr, ALPHA, "20.20.0.127.in-addr.arpa", RecordType::PTR);
    assert_eq!(rcode(&r), ResponseCode::NoError);
    assert!(r.answers.is_empty(), "upstream answers no PTR");
    assert_eq!(up.udp(), 1);
}

#[test]
fn policy_by_source_address() {
    let (_s, addr, up, _) = setup();
    // beta is on back only: web by its back address, db and its alias, nothing on front.
    assert_eq!(
        addrs(&ask(addr, BETA, "web", RecordType::A)),
        [ip("127.0.20.10")]
    );
    assert_eq!(
        addrs(&ask(addr, BETA, "store", RecordType::A)),
        [ip("127.0.20.20")]
    );
    let r = ask(addr, BETA, "web.front.berth.internal", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    let r = ask(addr, BETA, "alpha.berth.internal", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    // alpha does not see db.
    let r = ask(addr, ALPHA, "db.back.berth.internal", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    // An unknown source gets no berth names: under the domain, as a bare name (bare names
    // never leave the host) or as NAME.NETWORK, NXDOMAIN without asking upstream; a
    // dotted name that is not berth's goes upstream (which answers with its own address).
    let before = up.udp();
    for name in ["web.berth.internal", "web", "web.front"] {
        let r = ask(addr, STRANGER, name, RecordType::A);
        assert_eq!(rcode(&r), ResponseCode::NXDomain, "{name}");
    }
    assert_eq!(up.udp(), before);
    let r = ask(addr, STRANGER, "web.example", RecordType::A);
    assert_eq!(addrs(&r), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert_eq!(up.udp(), before + 1);
}

#[test]
fn forwards_to_the_containers_dns_else_the_defaults() {
    let (_s, addr, up, gamma_up) = setup();
    let r = ask(addr, BETA, "example.com", RecordType::A);
    assert_eq!(addrs(&r), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert!(!r.metadata.authoritative);
    assert_eq!((up.udp(), gamma_up.udp()), (1, 0));
    let r = ask(addr, GAMMA, "example.com", RecordType::A);
    assert_eq!(addrs(&r), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert_eq!(
        (up.udp(), gamma_up.udp()),
        (1, 1),
        "gamma's --dns, and no cache shared across upstream sets"
    );
    // Upstream NXDOMAIN passes through.
    let r = ask(addr, BETA, "missing.example", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
}

#[test]
fn cache_hit_avoids_a_second_upstream_query() {
    let (s, addr, up, _) = setup();
    let first = ask(addr, ALPHA, "cached.example", RecordType::A);
    assert_eq!(first.answers[0].ttl, 60);
    let second = ask(addr, BETA, "CACHED.example", RecordType::A);
    assert_eq!(addrs(&second), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert!(second.answers[0].ttl <= 60);
    assert_eq!(up.udp(), 1, "second answer came from the cache");
    assert_eq!(s.metrics().queries("A", "cached"), 1);
    assert_eq!(s.metrics().queries("A", "forwarded"), 1);
    // Negative answers too (SOA minimum 30).
    ask(addr, ALPHA, "missing1.example", RecordType::A);
    let r = ask(addr, ALPHA, "missing1.example", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    assert_eq!(up.udp(), 2);
}

#[test]
fn servfail_within_the_timeout_when_upstream_is_silent() {
    let up = Upstream::start(true);
    let config = Config {
        upstream_timeout: Duration::from_millis(300),
        ..Config::default()
    };
    let (s, addr) = start(config, &snapshot(up.addr, up.addr));
    let t = Instant::now();
    let r = ask(addr, ALPHA, "slow.example", RecordType::A);
    let took = t.elapsed();
    assert_eq!(rcode(&r), ResponseCode::ServFail);
    assert!(took >= Duration::from_millis(280), "{took:?}");
    assert!(took < Duration::from_millis(1000), "{took:?}");
    assert_eq!(up.udp(), 1);
    assert_eq!(s.metrics().queries("A", "servfail"), 1);
    // A failure is not cached: the next query asks again.
    ask(addr, ALPHA, "slow.example", RecordType::A);
    assert_eq!(up.udp(), 2);
}

#[test]
fn next_upstream_after_a_refused_one() {
    // A closed port: the connected UDP socket gets ECONNREFUSED at once.
    let closed = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let up = Upstream::start(false);
    let mut snap = snapshot(up.addr, up.addr);
    snap.upstreams = vec![closed, up.addr];
    let (_s, addr) = start(Config::default(), &snap);
    let t = Instant::now();
    let r = ask(addr, ALPHA, "example.org", RecordType::A);
    assert_eq!(addrs(&r), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
}

#[test]
fn truncated_upstream_answer_is_retried_over_tcp() {
    let (_s, addr, up, _) = setup();
    let r = ask_msg(
        addr,
        ALPHA,
        message("big.example", RecordType::A, Some(1232)),
    );
    assert_eq!(addrs(&r).len(), 3);
    assert!(!r.metadata.truncation);
    assert_eq!((up.udp(), up.tcp()), (1, 1));
}

#[test]
fn tcp_queries_local_and_forwarded() {
    let (_s, addr, up, _) = setup();
    let mut conn = tcp_from(ALPHA, addr);
    let r = ask_tcp(&mut conn, "web.berth.internal", RecordType::A);
    assert_eq!(addrs(&r), [ip("127.0.10.10")]);
    let r = ask_tcp(&mut conn, "nope.berth.internal", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    let r = ask_tcp(&mut conn, "tcp.example", RecordType::A);
    assert_eq!(addrs(&r), [IpAddr::V4(UPSTREAM_ANSWER)]);
    assert_eq!(
        (up.udp(), up.tcp()),
        (0, 1),
        "a TCP client is forwarded over TCP"
    );
    // Policy applies over TCP too.
    let mut conn = tcp_from(BETA, addr);
    let r = ask_tcp(&mut conn, "web", RecordType::A);
    assert_eq!(addrs(&r), [ip("127.0.20.10")]);
}

#[test]
fn large_answers_truncate_over_udp_and_fit_over_tcp() {
    let up = Upstream::start(false);
    let mut snap = snapshot(up.addr, up.addr);
    for i in 0..60 {
        snap.containers.push(container(
            &format!("{i:012}ffff"),
            &format!("m{i}"),
            &[("front", &[&format!("127.0.10.{}", 100 + i)], &["many"])],
        ));
    }
    let (_s, addr) = start(Config::default(), &snap);
    let r = ask(addr, ALPHA, "many", RecordType::A);
    assert!(r.metadata.truncation);
    assert!(r.answers.is_empty());
    let r = ask_msg(addr, ALPHA, message("many", RecordType::A, Some(1232)));
    assert!(!r.metadata.truncation);
    assert_eq!(r.answers.len(), 60);
    let mut conn = tcp_from(ALPHA, addr);
    let r = ask_tcp(&mut conn, "many", RecordType::A);
    assert_eq!(r.answers.len(), 60);
}

#[test]
fn records_are_replaced_at_once() {
    let up = Upstream::start(false);
    let mut snap = snapshot(up.addr, up.addr);
    let (s, addr) = start(Config::default(), &snap);
    let r = ask(addr, ALPHA, "late.berth.internal", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain);
    snap.containers.push(container(
        "eeeeeeeeeeeeffff",
        "late",
        &[("front", &["127.0.10.50"], &[])],
    ));
    let t = Instant::now();
    s.set_records(&snap).unwrap();
    let r = ask(addr, ALPHA, "late.berth.internal", RecordType::A);
    assert!(t.elapsed() < Duration::from_millis(100));
    assert_eq!(addrs(&r), [ip("127.0.10.50")]);
    // A bad snapshot is refused and the old one stays.
    snap.containers[0].endpoints[0].network = "gone".into();
    let err = s.set_records(&snap).unwrap_err();
    assert!(
        matches!(err, berth_dns::SnapshotError::UnknownNetwork { .. }),
        "{err}"
    );
    let r = ask(addr, ALPHA, "late", RecordType::A);
    assert_eq!(addrs(&r), [ip("127.0.10.50")]);
}

#[test]
fn containers_added_one_at_a_time_are_served_at_once_and_stay() {
    // `add_container` changes the index not served and swaps: each added container must be
    // in both copies, or the next swap would serve a copy without it.
    let up = Upstream::start(false);
    let mut snap = snapshot(up.addr, up.addr);
    let (s, addr) = start(Config::default(), &snap);
    for k in 0..5u8 {
        let name = format!("late{k}");
        let address = format!("127.0.10.{}", 50 + k);
        snap.containers.push(container(
            &format!("eeeeeeeeeeee{k:04}"),
            &name,
            &[("front", &[address.as_str()], &["many"])],
        ));
        s.add_container(&snap, snap.containers.last().unwrap())
            .unwrap();
        for j in 0..=k {
            let r = ask(addr, ALPHA, &format!("late{j}"), RecordType::A);
            assert_eq!(
                addrs(&r),
                [ip(&format!("127.0.10.{}", 50 + j))],
                "late{j} after late{k}"
            );
        }
        // The shared alias answers with every owner added so far, and the old names stay.
        assert_eq!(
            addrs(&ask(addr, ALPHA, "many", RecordType::A)).len(),
            usize::from(k) + 1
        );
        assert_eq!(
            addrs(&ask(addr, ALPHA, "web", RecordType::A)),
            [ip("127.0.10.10")]
        );
    }
    // A container on a network the records do not know is refused, and nothing changes.
    let stranger = container(
        "ffffffffffff0000",
        "stranger",
        &[("gone", &["127.0.10.99"], &[])],
    );
    let err = s.add_container(&snap, &stranger).unwrap_err();
    assert!(
        matches!(err, berth_dns::SnapshotError::UnknownNetwork { .. }),
        "{err}"
    );
    assert_eq!(
        rcode(&ask(addr, ALPHA, "stranger.berth.internal", RecordType::A)),
        ResponseCode::NXDomain
    );
    assert_eq!(
        addrs(&ask(addr, ALPHA, "late4", RecordType::A)),
        [ip("127.0.10.54")]
    );
    // After a whole set, adding starts again from it.
    s.set_records(&snap).unwrap();
    snap.containers.push(container(
        "eeeeeeeeeeee0009",
        "later",
        &[("front", &["127.0.10.70"], &[])],
    ));
    s.add_container(&snap, snap.containers.last().unwrap())
        .unwrap();
    assert_eq!(
        addrs(&ask(addr, ALPHA, "later", RecordType::A)),
        [ip("127.0.10.70")]
    );
    assert_eq!(
        addrs(&ask(addr, ALPHA, "late0", RecordType::A)),
        [ip("127.0.10.50")]
    );
}

#[test]
fn set_listeners_adds_and_removes_without_disturbing_the_others() {
    let up = Upstream::start(false);
    let (s, stable) = start(Config::default(), &snapshot(up.addr, up.addr));
    let stable_key: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let extra_key: SocketAddr = "127.0.0.4:0".parse().unwrap();
    let mut conn = tcp_from(ALPHA, stable);

    // A client hammers the stable listener while listeners come and go.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let hammer = {
        let (stop, answered) = (stop.clone(), answered.clone());
        thread::spawn(move || {
            let sock = UdpSocket::bind((ip(ALPHA), 0)).unwrap();
            sock.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            sock.connect(stable).unwrap();
            let mut lost = 0;
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                let m = message("web", RecordType::A, None);
                sock.send(&m.to_vec().unwrap()).unwrap();
                match sock.recv(&mut buf) {
                    Ok(n) if n > 12 && buf[..2] == m.metadata.id.to_be_bytes() => {
                        answered.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => lost += 1,
                }
            }
            lost
        })
    };

    let mut extra_bound = None;
    for round in 0..20 {
        if round % 2 == 0 {
            s.set_listeners(&[stable_key, extra_key]).unwrap();
            let l = s.listeners();
            assert_eq!(l.len(), 2);
            assert!(
                l.contains(&(stable_key, stable)),
                "stable listener kept its port"
            );
            let b = l.iter().find(|(k, _)| *k == extra_key).unwrap().1;
            let r = ask(b, ALPHA, "web", RecordType::A);
            assert_eq!(addrs(&r), [ip("127.0.10.10")]);
            extra_bound = Some(b);
        } else {
            s.set_listeners(&[stable_key]).unwrap();
            assert_eq!(s.listeners(), [(stable_key, stable)]);
            // The removed listener is closed: UDP is refused, and so is TCP.
            let b = extra_bound.unwrap();
            let err = exchange_raw(
                b,
                ALPHA,
                &message("web", RecordType::A, None).to_vec().unwrap(),
            )
            .unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
            let err = std::net::TcpStream::connect(b).unwrap_err();
            assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
        }
    }
    thread::sleep(Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    let lost = hammer.join().unwrap();
    assert_eq!(lost, 0, "queries lost on the unchanged listener");
    assert!(answered.load(Ordering::Relaxed) > 20);
    // The TCP connection opened before all this still works.
    let r = ask_tcp(&mut conn, "web", RecordType::A);
    assert_eq!(addrs(&r), [ip("127.0.10.10")]);
}

#[test]
fn listens_on_an_address_that_does_not_exist_yet() {
    // IP_FREEBIND: 192.0.2.1 (TEST-NET-1) is on no interface; binding must still work.
    // Nothing is sent to it.
    let s = Server::start(Config::default()).unwrap();
    let a: SocketAddr = "192.0.2.1:0".parse().unwrap();
    s.set_listeners(&[a]).unwrap();
    assert_eq!(s.listeners().len(), 1);
    // An address that can never be bound is reported, and the others still apply.
    let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
    let busy_addr = busy.local_addr().unwrap();
    let ok: SocketAddr = "127.0.0.1:0".parse().unwrap();
    match s.set_listeners(&[a, busy_addr, ok]) {
        Err(berth_dns::Error::Listen(failed)) => {
            assert_eq!(failed.len(), 1);
            assert_eq!(failed[0].0, busy_addr);
        }
        other => panic!("expected a listen error, got {other:?}"),
    }
    assert_eq!(s.listeners().len(), 2);
    s.shutdown();
}

#[test]
fn malformed_packets() {
    let (_s, addr, _, _) = setup();
    // Too short, or a response: no answer at all.
    let quiet = Duration::from_millis(500);
    let err = exchange_raw_within(addr, ALPHA, &[1, 2, 3], quiet).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    let mut response = message("web", RecordType::A, None).to_vec().unwrap();
    response[2] |= 0x80;
    let err = exchange_raw_within(addr, ALPHA, &response, quiet).unwrap_err();
    assert!(matches!(
        err.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    ));
    // Two questions: FORMERR.
    let mut m = message("web", RecordType::A, None);
    m.add_query(m.queries[0].clone());
    let raw = exchange_raw(addr, ALPHA, &m.to_vec().unwrap()).unwrap();
    assert_eq!(raw[..2], m.metadata.id.to_be_bytes());
    assert_eq!(raw[3] & 0x0F, 1);
    // EDNS is answered with EDNS.
    let r = ask_msg(addr, ALPHA, message("web", RecordType::A, Some(4096)));
    assert_eq!(r.edns.as_ref().map(|e| e.max_payload()), Some(1232));
}

#[test]
fn shutdown_closes_listeners() {
    let (s, addr, _, _) = setup();
    assert_eq!(
        addrs(&ask(addr, ALPHA, "web", RecordType::A)),
        [ip("127.0.10.10")]
    );
    s.shutdown();
    let err = exchange_raw(
        addr,
        ALPHA,
        &message("web", RecordType::A, None).to_vec().unwrap(),
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused);
}

#[test]
fn a_thousand_containers_are_indexed_fast_and_resolvable() {
    let up = Upstream::start(false);
    let mut snap = snapshot(up.addr, up.addr);
    for i in 0..1000u32 {
        let a = format!("127.0.{}.{}", 100 + i / 250, 2 + i % 250);
        let b = format!("127.0.20.{}", 30 + i % 200);
        snap.containers.push(container(
            &format!("{i:016x}aaaa"),
            &format!("c{i}"),
            &[
                ("front", &[&a], &[&format!("alias{i}")]),
                ("back", &[&b], &[]),
            ],
        ));
    }
    let (s, addr) = start(Config::default(), &snap);
    let t = Instant::now();
    s.set_records(&snap).unwrap();
    let took = t.elapsed();
    // A bound against pathological (e.g. quadratic) indexing, not a performance claim: this
    // is an unoptimised build on a shared machine; bench/dns measures the real figures.
    assert!(took < Duration::from_secs(2), "set_records took {took:?}");
    let r = ask(addr, ALPHA, "alias999.front.berth.internal", RecordType::A);
    assert_eq!(addrs(&r), [ip("127.0.103.251")]);
}

#[test]
fn ipv6_listener_and_requester() {
    let up = Upstream::start(false);
    let mut snap = snapshot(up.addr, up.addr);
    snap.containers.push(container(
        "6666666666666666",
        "six",
        &[("front", &["::1"], &[])],
    ));
    let s = Server::start(Config::default()).unwrap();
    s.set_records(&snap).unwrap();
    s.set_listeners(&["[::1]:0".parse().unwrap()]).unwrap();
    let addr = s.listeners()[0].1;
    let r = ask(addr, "::1", "web.front.berth.internal", RecordType::AAAA);
    assert_eq!(addrs(&r), [ip("fd00:10::10")]);
    let r = ask(addr, "::1", "db", RecordType::A);
    assert_eq!(rcode(&r), ResponseCode::NXDomain, "six is not on back");
    let v6: u128 = "fd00:10::10".parse::<std::net::Ipv6Addr>().unwrap().into();
    let rev: String = (0..32)
        .map(|i| format!("{:x}.", (v6 >> (4 * i)) & 0xF))
        .collect();
    let r = ask(addr, "::1", &format!("{rev}ip6.arpa"), RecordType::PTR);
    assert!(
        matches!(&r.answers[0].data, RData::PTR(p) if p.0.to_ascii() == "web.front.berth.internal."),
        "{:?}",
        r.answers
    );
}

/// A burst from one socket is answered in batches (several queries per receive, answers of
/// one size sent as one segmented send): every query still gets its own answer, once.
#[test]
fn a_burst_from_one_socket_gets_every_answer_once() {
    let (_s, addr, _up, _) = setup();
    let sock = UdpSocket::bind((ip(ALPHA), 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let names = [
        "web",
        "web.front.berth.internal",
        "nope.berth.internal",
        "www",
    ];
    let mut sent = Vec::new();
    // 100 in flight, as dnsperf keeps: well within the default socket buffers.
    for i in 0..100u16 {
        let name = names[usize::from(i) % names.len()];
        let mut m = message(name, RecordType::A, (i % 3 == 0).then_some(1232));
        m.metadata.id = i;
        sock.send_to(&m.to_vec().unwrap(), addr).unwrap();
        sent.push(name);
        if i % 7 == 0 {
            // Not a query (too short): no answer, and it must not disturb the others.
            sock.send_to(&[1, 2, 3], addr).unwrap();
        }
    }
    let mut seen = vec![false; sent.len()];
    let mut buf = vec![0u8; 4096];
    for _ in 0..sent.len() {
        let n = sock.recv(&mut buf).unwrap();
        let r = hickory_proto::op::Message::from_vec(&buf[..n]).unwrap();
        let id = usize::from(r.metadata.id);
        assert!(!seen[id], "answer {id} twice");
        seen[id] = true;
        let name = sent[id];
        assert_eq!(r.queries[0].name().to_ascii().trim_end_matches('.'), name);
        if name.starts_with("nope") {
            assert_eq!(rcode(&r), ResponseCode::NXDomain);
        } else {
            assert_eq!(addrs(&r), [ip("127.0.10.10")], "{name}");
        }
    }
}
