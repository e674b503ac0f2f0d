//! From a query packet to an answer: parse, resolve against the current [`Index`], encode,
//! or hand over to forwarding (through the cache). No sockets here; the server's loops call
//! [`Shared::handle`] and, for forwarded queries, [`Shared::forward`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;

use crate::cache::{Cache, Key};
use crate::config::Config;
use crate::metrics::{qtype_index, Metrics, Outcome};
use crate::records::{Index, Resolution, Upstreams};
use crate::upstream;
use crate::wire::{parse_query, rcode, reject_reply, rtype, truncate_to, Query, Reply, CLASS_IN};

/// Largest DNS message over TCP.
const TCP_LIMIT: usize = 65535;

/// State shared by every listener task.
pub(crate) struct Shared {
    pub(crate) config: Config,
    pub(crate) records: ArcSwap<Index>,
    pub(crate) cache: Cache,
    pub(crate) metrics: Metrics,
    /// Permits for forwarded UDP queries in flight.
    pub(crate) forwards: Arc<Semaphore>,
}

/// What to do with a packet.
pub(crate) enum Action {
    /// Send `out`.
    Reply,
    /// Send nothing.
    Drop,
    /// Ask upstream servers with [`Shared::forward`], then send.
    Forward(Job),
}

/// A query to forward.
pub(crate) struct Job {
    packet: Vec<u8>,
    question_len: usize,
    upstreams: Upstreams,
    key: Key,
    qtype_index: usize,
    udp_limit: usize,
    started: Instant,
}

impl Job {
    fn question(&self) -> &[u8] {
        &self.packet[12..12 + self.question_len]
    }
}

/// `ns.DOMAIN.`, `hostmaster.DOMAIN.`, serial, refresh, retry, expire, minimum.
fn soa_rdata<'a>(index: &'a Index, tail: &'a mut [u8; 20], ttl: u32) -> [&'a [u8]; 2] {
    for (i, v) in [index.serial(), 3600, 600, 86400, ttl]
        .into_iter()
        .enumerate()
    {
        tail[i * 4..i * 4 + 4].copy_from_slice(&v.to_be_bytes());
    }
    [index.soa_names(), &tail[..]]
}

impl Shared {
    pub(crate) fn new(config: Config, index: Index) -> Shared {
        Shared {
            cache: Cache::new(
                config.cache_entries,
                config.cache_bytes,
                config.cache_max_ttl,
            ),
            forwards: Arc::new(Semaphore::new(config.max_forwards)),
            records: ArcSwap::from_pointee(index),
            metrics: Metrics::new(),
            config,
        }
    }

    /// Handles one query from `src`; an answer is written to `out`.
    pub(crate) fn handle(
        &self,
        src: IpAddr,
        packet: &[u8],
        tcp: bool,
        started: Instant,
        out: &mut Vec<u8>,
    ) -> Action {
        let q = match parse_query(packet) {
            Ok(q) => q,
            Err(reject) => {
                if !reject_reply(out, &reject, packet) {
                    return Action::Drop;
                }
                let rc = out[3] & 0x0F;
                self.metrics
                    .record(qtype_index(0), Outcome::Local(rc), started.elapsed());
                return Action::Reply;
            }
        };
        let limit = if tcp { TCP_LIMIT } else { q.udp_limit() };
        let qi = qtype_index(q.qtype);
        let index = self.records.load();
        let resolution = if q.qclass == CLASS_IN {
            index.resolve(src, &q.name, q.qtype)
        } else {
            Resolution::Forward(index.upstreams_for(src))
        };
        let ttl = self.config.ttl;
        let mut tail = [0u8; 20];
        let rc = match resolution {
            Resolution::Forward(upstreams) => {
                return self.start_forward(&q, packet, upstreams, limit, qi, started, out);
            }
            Resolution::Addresses(v) => {
                let mut r = Reply::new(out, &q, rcode::NOERROR, true);
                if q.qtype == rtype::A || q.qtype == rtype::ANY {
                    for a in v.v4() {
                        r.answer(rtype::A, ttl, &[&a.octets()]);
                    }
                }
                if q.qtype == rtype::AAAA || q.qtype == rtype::ANY {
                    for a in v.v6() {
                        r.answer(rtype::AAAA, ttl, &[&a.octets()]);
                    }
                }
                r.finish(q.edns, limit);
                rcode::NOERROR
            }
            Resolution::Ptr(target) => {
                let mut r = Reply::new(out, &q, rcode::NOERROR, true);
                r.answer(rtype::PTR, ttl, &[target]);
                r.finish(q.edns, limit);
                rcode::NOERROR
            }
            Resolution::Soa { zone } => {
                let mut r = Reply::new(out, &q, rcode::NOERROR, true);
                r.soa(
                    q.name.label_offset(zone),
                    ttl,
                    &soa_rdata(&index, &mut tail, ttl),
                    true,
                );
                r.finish(q.edns, limit);
                rcode::NOERROR
            }
            Resolution::NoData { zone } => {
                let mut r = Reply::new(out, &q, rcode::NOERROR, true);
                if let Some(zone) = zone.filter(|&z| z < q.name.label_count()) {
                    let owner = q.name.label_offset(zone);
                    r.soa(owner, ttl, &soa_rdata(&index, &mut tail, ttl), false);
                }
                r.finish(q.edns, limit);
                rcode::NOERROR
            }
            Resolution::NxDomain { zone } => {
                let mut r = Reply::new(out, &q, rcode::NXDOMAIN, true);
                if zone < q.name.label_count() {
                    let owner = q.name.label_offset(zone);
                    r.soa(owner, ttl, &soa_rdata(&index, &mut tail, ttl), false);
                }
                r.finish(q.edns, limit);
                rcode::NXDOMAIN
            }
        };
        self.metrics
            .record(qi, Outcome::Local(rc), started.elapsed());
        Action::Reply
    }

    #[allow(clippy::too_many_arguments)]
    fn start_forward(
        &self,
        q: &Query<'_>,
        packet: &[u8],
        upstreams: &Upstreams,
        limit: usize,
        qi: usize,
        started: Instant,
        out: &mut Vec<u8>,
    ) -> Action {
        if upstreams.is_empty() {
            servfail(q, limit, out);
            self.metrics
                .record(qi, Outcome::UpstreamFailed, started.elapsed());
            return Action::Reply;
        }
        let key = Key::new(upstreams, q);
        if self.cache.get(&key, q, started, out) {
            truncate_to(out, q.question_end(), limit);
            self.metrics.record(qi, Outcome::Cached, started.elapsed());
            return Action::Reply;
        }
        Action::Forward(Job {
            packet: packet.to_vec(),
            question_len: q.question.len(),
            upstreams: upstreams.clone(),
            key,
            qtype_index: qi,
            udp_limit: limit,
            started,
        })
    }

    /// Forwards `job` and writes the answer (or SERVFAIL) to `out`.
    pub(crate) async fn forward(&self, job: Job, tcp: bool, out: &mut Vec<u8>) {
        let answer = upstream::forward(
            &job.upstreams,
            &job.packet,
            job.question(),
            tcp,
            self.config.upstream_timeout,
            &self.metrics,
        )
        .await;
        let qend = 12 + job.question_len;
        match answer {
            Some((resp, meta)) => {
                self.cache.insert(job.key, &resp, &meta, Instant::now());
                *out = resp;
                if !tcp {
                    truncate_to(out, qend, job.udp_limit);
                }
                self.metrics
                    .record(job.qtype_index, Outcome::Forwarded, job.started.elapsed());
            }
            None => self.refuse_job(&job, out),
        }
    }

    /// Answers `job` with SERVFAIL without forwarding (failed, or too many in flight).
    pub(crate) fn refuse_job(&self, job: &Job, out: &mut Vec<u8>) {
        // The packet parsed when the job was made.
        if let Ok(q) = parse_query(&job.packet) {
            servfail(&q, job.udp_limit, out);
        }
        self.metrics.record(
            job.qtype_index,
            Outcome::UpstreamFailed,
            job.started.elapsed(),
        );
    }
}

fn servfail(q: &Query<'_>, limit: usize, out: &mut Vec<u8>) {
    let r = Reply::new(out, q, rcode::SERVFAIL, false);
    r.finish(q.edns, limit);
}

/// The source address a policy decision uses for a peer.
pub(crate) fn source(peer: SocketAddr) -> IpAddr {
    peer.ip().to_canonical()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::{Container, Endpoint, NetworkRecord, Snapshot};
    use crate::wire::{encode_name, u16_at, QR};

    fn shared() -> Shared {
        let snap = Snapshot {
            upstreams: vec!["127.0.0.1:9".parse().unwrap()],
            networks: vec![NetworkRecord {
                name: "n".into(),
                subnets: vec!["10.0.0.0/24".parse().unwrap()],
            }],
            containers: vec![Container {
                id: "0123456789abcdef".into(),
                name: "web".into(),
                dns: vec![],
                endpoints: vec![Endpoint {
                    network: "n".into(),
                    addresses: vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()],
                    aliases: vec!["www".into()],
                }],
            }],
            ..Snapshot::default()
        };
        Shared::new(Config::default(), Index::build(&snap, 1).unwrap())
    }

    fn seeds() -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (name, qtype) in [
            ("web", rtype::A),
            ("web.n.berth.internal", rtype::AAAA),
            ("2.0.0.10.in-addr.arpa", rtype::PTR),
            ("9.0.0.10.in-addr.arpa", rtype::PTR),
            ("nope.berth.internal", rtype::MX),
            ("berth.internal", rtype::SOA),
            ("example.com", rtype::A),
        ] {
            let mut b = vec![0xAB, 0xCD, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1];
            encode_name(name, &mut b).unwrap();
            b.extend_from_slice(&qtype.to_be_bytes());
            b.extend_from_slice(&CLASS_IN.to_be_bytes());
            b.extend_from_slice(&[0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0]);
            out.push(b);
        }
        out
    }

    /// Random and mutated packets never panic, and every answer is a well-formed header
    /// with the query's id.
    #[test]
    fn handler_survives_garbage() {
        let s = shared();
        let src: IpAddr = "10.0.0.2".parse().unwrap();
        let mut rng = fastrand::Rng::with_seed(7);
        let seeds = seeds();
        let mut out = Vec::new();
        let mut replies = 0;
        for i in 0..200_000 {
            let packet: Vec<u8> = if i % 2 == 0 {
                let len = rng.usize(0..80);
                (0..len).map(|_| rng.u8(..)).collect()
            } else {
                let mut p = seeds[rng.usize(..seeds.len())].clone();
                for _ in 0..rng.usize(1..4) {
                    match rng.u8(0..3) {
                        0 if !p.is_empty() => {
                            let at = rng.usize(..p.len());
                            p[at] = rng.u8(..);
                        }
                        1 => p.truncate(rng.usize(..=p.len())),
                        _ => p.push(rng.u8(..)),
                    }
                }
                p
            };
            match s.handle(src, &packet, i % 3 == 0, Instant::now(), &mut out) {
                Action::Reply => {
                    replies += 1;
                    assert!(out.len() >= 12);
                    assert_eq!(out[..2], packet[..2]);
                    assert_eq!(u16_at(&out, 2) & QR, QR);
                    assert!(i % 3 == 0 || out.len() <= 1232);
                }
                Action::Drop => assert!(packet.len() < 12 || packet[2] & 0x80 != 0),
                Action::Forward(_) => {}
            }
        }
        assert!(replies > 10_000, "{replies}");
    }
}
