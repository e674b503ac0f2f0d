//! Forwarding to upstream servers.
//!
//! Upstreams are tried in order within one overall deadline: each attempt gets an equal
//! share of the time left (so a silent first server cannot eat the whole budget), and a
//! refused connection or an answer with SERVFAIL, REFUSED or NOTIMP moves on at once. Each
//! attempt uses a fresh socket (a new random source port) and a random query id; only an
//! answer with that id and the same question is accepted. UDP answers with TC, or too big
//! for the receive buffer, are asked again over TCP from the same server; a client that came
//! over TCP is forwarded over TCP.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::time::{timeout, Instant};

use crate::log_limit::LogLimit;
use crate::metrics::Metrics;
use crate::wire::{inspect_response, rcode, set_id, u16_at, ResponseMeta};

/// UDP receive buffer; a datagram that fills it is treated as truncated.
const UDP_BUF: usize = 4096;

static UPSTREAM_LOG: LogLimit = LogLimit::new();

/// Asks `upstreams` for `query` (a client's packet, whose id the answer gets back);
/// `None` when none answered usefully in time.
pub(crate) async fn forward(
    upstreams: &[SocketAddr],
    query: &[u8],
    question: &[u8],
    tcp: bool,
    budget: Duration,
    metrics: &Metrics,
) -> Option<(Vec<u8>, ResponseMeta)> {
    let deadline = Instant::now() + budget;
    let client_id = u16_at(query, 0);
    let mut msg = query.to_vec();
    let mut last = None;
    for (i, &up) in upstreams.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let share = (deadline - now) / (upstreams.len() - i) as u32;
        set_id(&mut msg, fastrand::u16(..));
        match timeout(share, attempt(up, &msg, question, tcp)).await {
            Ok(Ok((mut resp, meta))) => {
                set_id(&mut resp, client_id);
                if matches!(meta.rcode, rcode::SERVFAIL | rcode::REFUSED | rcode::NOTIMP) {
                    metrics.upstream_failed();
                    last = Some((resp, meta));
                    continue;
                }
                return Some((resp, meta));
            }
            Ok(Err(e)) => {
                metrics.upstream_failed();
                if UPSTREAM_LOG.allow() {
                    tracing::warn!(upstream = %up, error = %e, "dns upstream failed");
                }
            }
            Err(_) => {
                metrics.upstream_failed();
                if UPSTREAM_LOG.allow() {
                    tracing::warn!(upstream = %up, timeout = ?share, "dns upstream timed out");
                }
            }
        }
    }
    last
}

async fn attempt(
    up: SocketAddr,
    msg: &[u8],
    question: &[u8],
    tcp: bool,
) -> io::Result<(Vec<u8>, ResponseMeta)> {
    if !tcp {
        if let Some(answer) = attempt_udp(up, msg, question).await? {
            return Ok(answer);
        }
    }
    attempt_tcp(up, msg, question).await
}

/// `Ok(None)`: the answer was truncated, ask over TCP.
async fn attempt_udp(
    up: SocketAddr,
    msg: &[u8],
    question: &[u8],
) -> io::Result<Option<(Vec<u8>, ResponseMeta)>> {
    let local: SocketAddr = if up.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(local).await?;
    sock.connect(up).await?;
    sock.send(msg).await?;
    let id = u16_at(msg, 0);
    let mut buf = vec![0u8; UDP_BUF];
    loop {
        let n = sock.recv(&mut buf).await?;
        if n == buf.len() {
            return Ok(None);
        }
        let resp = &buf[..n];
        if n < 2 || u16_at(resp, 0) != id {
            continue;
        }
        let Some(meta) = inspect_response(resp, question) else {
            continue;
        };
        if meta.truncated {
            return Ok(None);
        }
        return Ok(Some((resp.to_vec(), meta)));
    }
}

async fn attempt_tcp(
    up: SocketAddr,
    msg: &[u8],
    question: &[u8],
) -> io::Result<(Vec<u8>, ResponseMeta)> {
    let mut s = TcpStream::connect(up).await?;
    s.set_nodelay(true)?;
    let mut framed = Vec::with_capacity(msg.len() + 2);
    framed.extend_from_slice(&(msg.len() as u16).to_be_bytes());
    framed.extend_from_slice(msg);
    s.write_all(&framed).await?;
    let mut len = [0u8; 2];
    s.read_exact(&mut len).await?;
    let mut resp = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut resp).await?;
    if resp.len() < 2 || u16_at(&resp, 0) != u16_at(msg, 0) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "answer with a wrong id",
        ));
    }
    match inspect_response(&resp, question) {
        Some(meta) => Ok((resp, meta)),
        None => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "malformed answer or wrong question",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn silent_upstreams_fail_within_the_budget() {
        let silent1 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let silent2 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let ups = [silent1.local_addr().unwrap(), silent2.local_addr().unwrap()];
        let mut q = vec![0, 7, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        crate::wire::encode_name("x.example", &mut q).unwrap();
        q.extend_from_slice(&[0, 1, 0, 1]);
        let question = q[12..].to_vec();
        let m = Metrics::new();
        let t = std::time::Instant::now();
        let r = forward(&ups, &q, &question, false, Duration::from_millis(300), &m).await;
        let took = t.elapsed();
        assert!(r.is_none());
        assert!(took >= Duration::from_millis(290), "{took:?}");
        assert!(took < Duration::from_millis(600), "{took:?}");
        // Both were tried (each got half).
        let mut buf = [0u8; 512];
        silent1.set_nonblocking(true).unwrap();
        silent2.set_nonblocking(true).unwrap();
        assert!(silent1.recv(&mut buf).is_ok_and(|n| n == q.len()));
        assert!(silent2.recv(&mut buf).is_ok_and(|n| n == q.len()));
    }
}
