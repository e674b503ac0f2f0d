//! Helpers for the server tests: snapshots, a DNS client bound to a chosen loopback source
//! address (127/8 is all loopback, so 127.0.10.2 and 127.0.20.2 act as two containers), and
//! a fake upstream server. Every socket is on loopback.
#![allow(dead_code, unreachable_pub)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use berth_dns::{Config, Container, Endpoint, NetworkRecord, Server, Snapshot};
use hickory_proto::op::{Edns, Message, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, SOA};
use hickory_proto::rr::{Name, RData, Record, RecordType};

pub const ALPHA: &str = "127.0.10.2"; // on front
pub const BETA: &str = "127.0.20.2"; // on back
pub const GAMMA: &str = "127.0.20.3"; // on back, with its own --dns
pub const STRANGER: &str = "127.0.0.1"; // in no snapshot

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

pub fn container(id: &str, name: &str, eps: &[(&str, &[&str], &[&str])]) -> Container {
    Container {
        id: id.into(),
        name: name.into(),
        dns: vec![],
        endpoints: eps
            .iter()
            .map(|(net, addrs, aliases)| Endpoint {
                network: (*net).into(),
                addresses: addrs.iter().map(|a| ip(a)).collect(),
                aliases: aliases.iter().map(|a| (*a).into()).collect(),
            })
            .collect(),
    }
}

/// front 127.0.10.0/24 (+ fd00:10::/64), back 127.0.20.0/24.
/// web: front 127.0.10.10 + fd00:10::10 (alias www), back 127.0.20.10.
/// alpha (front), beta and gamma (back), db (back, alias store).
pub fn snapshot(upstream: SocketAddr, gamma_dns: SocketAddr) -> Snapshot {
    let mut gamma = container("ccccccccccccffff", "gamma", &[("back", &[GAMMA], &[])]);
    gamma.dns = vec![gamma_dns];
    Snapshot {
        domain: "berth.internal".into(),
        upstreams: vec![upstream],
        networks: vec![
            NetworkRecord {
                name: "front".into(),
                subnets: vec![
                    "127.0.10.0/24".parse().unwrap(),
                    "fd00:10::/64".parse().unwrap(),
                ],
            },
            NetworkRecord {
                name: "back".into(),
                subnets: vec!["127.0.20.0/24".parse().unwrap()],
            },
        ],
        containers: vec![
            container(
                "0123456789abcdef",
                "web",
                &[
                    ("front", &["127.0.10.10", "fd00:10::10"], &["www"]),
                    ("back", &["127.0.20.10"], &[]),
                ],
            ),
            container("aaaaaaaaaaaaffff", "alpha", &[("front", &[ALPHA], &[])]),
            container("bbbbbbbbbbbbffff", "beta", &[("back", &[BETA], &[])]),
            gamma,
            container(
                "ddddddddddddffff",
                "db",
                &[("back", &["127.0.20.20"], &["store"])],
            ),
        ],
    }
}

pub fn start(config: Config, snap: &Snapshot) -> (Server, SocketAddr) {
    let server = Server::start(config).unwrap();
    server.set_records(snap).unwrap();
    let want: SocketAddr = "127.0.0.1:0".parse().unwrap();
    server.set_listeners(&[want]).unwrap();
    let bound = server.listeners()[0].1;
    assert_ne!(bound.port(), 0);
    (server, bound)
}

pub fn message(name: &str, qtype: RecordType, edns: Option<u16>) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    let fqdn = if name.ends_with('.') {
        name.to_string()
    } else {
        format!("{name}.")
    };
    m.add_query(Query::query(Name::from_ascii(fqdn).unwrap(), qtype));
    if let Some(size) = edns {
        let mut e = Edns::new();
        e.set_max_payload(size);
        m.set_edns(e);
    }
    m
}

/// Sends `bytes` over UDP from `src` and returns the raw answer, or the error (timeout).
pub fn exchange_raw(server: SocketAddr, src: &str, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    exchange_raw_within(server, src, bytes, Duration::from_secs(3))
}

pub fn exchange_raw_within(
    server: SocketAddr,
    src: &str,
    bytes: &[u8],
    wait: Duration,
) -> std::io::Result<Vec<u8>> {
    let sock = UdpSocket::bind((ip(src), 0))?;
    sock.set_read_timeout(Some(wait))?;
    sock.connect(server)?;
    sock.send(bytes)?;
    let mut buf = vec![0u8; 65535];
    let n = sock.recv(&mut buf)?;
    buf.truncate(n);
    Ok(buf)
}

/// Asks `name`/`qtype` over UDP from `src`; checks id, QR and the echoed question.
pub fn ask(server: SocketAddr, src: &str, name: &str, qtype: RecordType) -> Message {
    ask_msg(server, src, message(name, qtype, None))
}

pub fn ask_msg(server: SocketAddr, src: &str, m: Message) -> Message {
    let raw = exchange_raw(server, src, &m.to_vec().unwrap())
        .unwrap_or_else(|e| panic!("no answer to {:?} from {src}: {e}", m.queries));
    let r = Message::from_vec(&raw).unwrap();
    assert_eq!(r.metadata.id, m.metadata.id);
    assert_eq!(r.queries, m.queries);
    assert!(r.metadata.recursion_available);
    assert_eq!(r.metadata.recursion_desired, m.metadata.recursion_desired);
    r
}

/// Asks over TCP on an existing connection.
pub fn ask_tcp(conn: &mut TcpStream, name: &str, qtype: RecordType) -> Message {
    let m = message(name, qtype, None);
    let bytes = m.to_vec().unwrap();
    let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
    framed.extend_from_slice(&bytes);
    conn.write_all(&framed).unwrap();
    let mut len = [0u8; 2];
    conn.read_exact(&mut len).unwrap();
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    conn.read_exact(&mut buf).unwrap();
    let r = Message::from_vec(&buf).unwrap();
    assert_eq!(r.metadata.id, m.metadata.id);
    r
}

pub fn tcp_from(src: &str, server: SocketAddr) -> TcpStream {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(ip(src), 0).into()).unwrap();
    s.connect_timeout(&server.into(), Duration::from_secs(3))
        .unwrap();
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The addresses of the A/AAAA answers, sorted.
pub fn addrs(m: &Message) -> Vec<IpAddr> {
    let mut v: Vec<IpAddr> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(IpAddr::V4(a.0)),
            RData::AAAA(a) => Some(IpAddr::V6(a.0)),
            _ => None,
        })
        .collect();
    v.sort();
    v
}

pub fn rcode(m: &Message) -> ResponseCode {
    m.metadata.response_code
}

pub fn soa(m: &Message) -> Option<(&Name, &SOA, u32)> {
    m.authorities.iter().find_map(|r| match &r.data {
        RData::SOA(s) => Some((&r.name, s, r.ttl)),
        _ => None,
    })
}

/// A fake upstream on 127.0.0.1 (UDP and TCP on one port). It answers `NAME A` with
/// `192.0.2.7` (TTL 60), NXDOMAIN (SOA minimum 30) for names starting with `missing`, and
/// for names starting with `big` a truncated UDP answer (the full one over TCP). When
/// silent it answers nothing.
pub struct Upstream {
    pub addr: SocketAddr,
    pub udp_queries: Arc<AtomicUsize>,
    pub tcp_queries: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

pub const UPSTREAM_ANSWER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 7);

fn upstream_answer(query: &[u8], tcp: bool) -> Option<Vec<u8>> {
    let q = Message::from_vec(query).ok()?;
    let question = q.queries.first()?.clone();
    let mut r = Message::response(q.metadata.id, q.metadata.op_code);
    r.metadata.recursion_desired = q.metadata.recursion_desired;
    r.metadata.recursion_available = true;
    r.add_query(question.clone());
    let name = question.name.to_ascii().to_ascii_lowercase();
    if name.starts_with("missing") {
        r.metadata.response_code = ResponseCode::NXDomain;
        let soa = SOA::new(
            Name::from_str("ns.example.").unwrap(),
            Name::from_str("h.example.").unwrap(),
            1,
            3600,
            600,
            86400,
            30,
        );
        r.add_authority(Record::from_rdata(
            Name::from_str("example.").unwrap(),
            300,
            RData::SOA(soa),
        ));
    } else if name.starts_with("big") && !tcp {
        r.metadata.truncation = true;
    } else if question.query_type == RecordType::A {
        let count = if name.starts_with("big") { 3 } else { 1 };
        for i in 0..count {
            let a = Ipv4Addr::from(u32::from(UPSTREAM_ANSWER) + i);
            r.add_answer(Record::from_rdata(
                question.name.clone(),
                60,
                RData::A(A(a)),
            ));
        }
    }
    r.to_vec().ok()
}

impl Upstream {
    pub fn start(silent: bool) -> Upstream {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let tcp = TcpListener::bind(addr).unwrap();
        tcp.set_nonblocking(true).unwrap();
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let udp_queries = Arc::new(AtomicUsize::new(0));
        let tcp_queries = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (count, stop) = (udp_queries.clone(), stop.clone());
            thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while !stop.load(Ordering::Relaxed) {
                    let Ok((n, peer)) = udp.recv_from(&mut buf) else {
                        continue;
                    };
                    count.fetch_add(1, Ordering::SeqCst);
                    if silent {
                        continue;
                    }
                    if let Some(r) = upstream_answer(&buf[..n], false) {
                        let _ = udp.send_to(&r, peer);
                    }
                }
            });
        }
        {
            let (count, stop) = (tcp_queries.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut s, _)) = tcp.accept() else {
                        thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    s.set_nonblocking(false).unwrap();
                    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                    let mut len = [0u8; 2];
                    if s.read_exact(&mut len).is_err() {
                        continue;
                    }
                    let mut q = vec![0u8; usize::from(u16::from_be_bytes(len))];
                    if s.read_exact(&mut q).is_err() {
                        continue;
                    }
                    count.fetch_add(1, Ordering::SeqCst);
                    if silent {
                        continue;
                    }
                    if let Some(r) = upstream_answer(&q, true) {
                        let mut framed = (r.len() as u16).to_be_bytes().to_vec();
                        framed.extend_from_slice(&r);
                        let _ = s.write_all(&framed);
                    }
                }
            });
        }
        Upstream {
            addr,
            udp_queries,
            tcp_queries,
            stop,
        }
    }

    pub fn udp(&self) -> usize {
        self.udp_queries.load(Ordering::SeqCst)
    }

    pub fn tcp(&self) -> usize {
        self.tcp_queries.load(Ordering::SeqCst)
    }
}
