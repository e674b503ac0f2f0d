//! UDP: each client address gets a socket of its own, connected to the container, so
//! replies find their way back; a flow ends after `idle` without a datagram either way.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// Flows at once per port; datagrams from further clients are dropped.
const MAX_FLOWS: usize = 1024;

/// The largest datagram relayed.
const BUF: usize = 65536;

struct Flow {
    sock: Arc<UdpSocket>,
    /// Milliseconds since `epoch` of the last datagram either way.
    last: Arc<AtomicU64>,
}

/// Relays datagrams arriving on `listener` until the task is aborted.
pub(super) async fn serve(listener: UdpSocket, target: SocketAddr, idle: Duration) {
    let listener = Arc::new(listener);
    let epoch = Instant::now();
    let mut flows: HashMap<SocketAddr, Flow> = HashMap::new();
    let mut replies: JoinSet<SocketAddr> = JoinSet::new();
    let mut buf = vec![0u8; BUF];
    loop {
        tokio::select! {
            r = listener.recv_from(&mut buf) => {
                let (n, client) = match r {
                    Ok(v) => v,
                    Err(e) => {
                        tracing::debug!("relay recv: {e}");
                        continue;
                    }
                };
                if !flows.contains_key(&client) {
                    if flows.len() >= MAX_FLOWS {
                        continue;
                    }
                    match open(target).await {
                        Ok(sock) => {
                            let flow = Flow { sock: Arc::new(sock), last: Arc::default() };
                            replies.spawn(back(
                                Arc::clone(&flow.sock),
                                Arc::clone(&listener),
                                client,
                                Arc::clone(&flow.last),
                                epoch,
                                idle,
                            ));
                            flows.insert(client, flow);
                        }
                        Err(e) => {
                            tracing::debug!("relay to {target}: {e}");
                            continue;
                        }
                    }
                }
                let flow = &flows[&client];
                flow.last.store(since(epoch), Ordering::Relaxed);
                let _ = flow.sock.send(&buf[..n]).await;
            }
            Some(done) = replies.join_next(), if !replies.is_empty() => {
                if let Ok(client) = done {
                    flows.remove(&client);
                }
            }
        }
    }
}

fn since(epoch: Instant) -> u64 {
    epoch.elapsed().as_millis() as u64
}

async fn open(target: SocketAddr) -> std::io::Result<UdpSocket> {
    let any: SocketAddr = match target {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let s = UdpSocket::bind(any).await?;
    s.connect(target).await?;
    Ok(s)
}

/// Sends the container's replies to `client` until the flow has been idle for `idle`;
/// returns the client, whose flow then goes.
async fn back(
    sock: Arc<UdpSocket>,
    listener: Arc<UdpSocket>,
    client: SocketAddr,
    last: Arc<AtomicU64>,
    epoch: Instant,
    idle: Duration,
) -> SocketAddr {
    let mut buf = vec![0u8; BUF];
    loop {
        let quiet =
            Duration::from_millis(since(epoch).saturating_sub(last.load(Ordering::Relaxed)));
        let Some(left) = idle.checked_sub(quiet).filter(|d| !d.is_zero()) else {
            return client;
        };
        match tokio::time::timeout(left, sock.recv(&mut buf)).await {
            Ok(Ok(n)) => {
                last.store(since(epoch), Ordering::Relaxed);
                let _ = listener.send_to(&buf[..n], client).await;
            }
            // ICMP port unreachable from the container, and the like: keep the flow.
            Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(10)).await,
            Err(_) => {}
        }
    }
}
