//! TCP: each accepted connection is spliced to the container until both sides are done.

use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// How long the relay waits for the container to accept.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Accepts on `l` until the task is aborted; the connections it spliced go with it.
pub(super) async fn serve(l: TcpListener, target: SocketAddr) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            r = l.accept() => match r {
                Ok((c, _)) => {
                    conns.spawn(splice(c, target));
                }
                Err(e) => {
                    // EMFILE and the like: back off instead of spinning.
                    tracing::warn!("relay accept on {:?}: {e}", l.local_addr().ok());
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

/// Copies both ways, passing each half-close on. When the container does not accept, the
/// client's connection is reset (the nearest a relay gets to "refused").
async fn splice(mut client: TcpStream, target: SocketAddr) {
    let mut up = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
        Ok(Ok(s)) => s,
        r => {
            let why = match r {
                Ok(Err(e)) => e.to_string(),
                _ => format!("no answer in {CONNECT_TIMEOUT:?}"),
            };
            tracing::debug!("relay to {target}: {why}");
            let _ = client.set_zero_linger();
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = up.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut client, &mut up).await {
        tracing::debug!("relay to {target}: {e}");
    }
}
