//! The agent's own metrics and the `/metrics` endpoint (Prometheus text format).

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Gauges set at each reload, and counters/histograms the doors and the repairer feed.
#[derive(Clone)]
pub(crate) struct AgentMetrics {
    pub(crate) networks: Gauge,
    pub(crate) endpoints: Gauge,
    pub(crate) published_ports: Gauge,
    pub(crate) relayed_ports: Gauge,
    pub(crate) operations: Family<Vec<(String, String)>, Counter>,
    pub(crate) latency: Family<Vec<(String, String)>, Histogram>,
    pub(crate) firewall_repairs: Counter,
    /// Endpoints of other hosts on overlay networks, as last read from the cluster store.
    pub(crate) overlay_peers: Gauge,
    /// 1 while the agent holds a session with the cluster store, else 0.
    pub(crate) cluster_connected: Gauge,
}

impl AgentMetrics {
    pub(crate) fn new(registry: &mut Registry) -> AgentMetrics {
        let m = AgentMetrics {
            networks: Gauge::default(),
            endpoints: Gauge::default(),
            published_ports: Gauge::default(),
            relayed_ports: Gauge::default(),
            operations: Family::default(),
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.0005, 2.0, 14))
            }),
            firewall_repairs: Counter::default(),
            overlay_peers: Gauge::default(),
            cluster_connected: Gauge::default(),
        };
        registry.register(
            "berth_overlay_peers",
            "Endpoints of other hosts on overlay networks",
            m.overlay_peers.clone(),
        );
        registry.register(
            "berth_cluster_connected",
            "Whether the agent holds a session with the cluster store",
            m.cluster_connected.clone(),
        );
        registry.register(
            "berth_networks",
            "Networks in the store",
            m.networks.clone(),
        );
        registry.register(
            "berth_endpoints",
            "Container endpoints",
            m.endpoints.clone(),
        );
        registry.register(
            "berth_published_ports",
            "Published host ports",
            m.published_ports.clone(),
        );
        registry.register(
            "berth_relayed_ports",
            "[::1] host ports the agent relays in userspace",
            m.relayed_ports.clone(),
        );
        registry.register(
            "berth_operations",
            "Container network setups and teardowns",
            m.operations.clone(),
        );
        registry.register(
            "berth_operation_seconds",
            "Time of container network setups and teardowns",
            m.latency.clone(),
        );
        registry.register(
            "berth_firewall_repairs",
            "Times the agent restored berth's nftables table",
            m.firewall_repairs.clone(),
        );
        m
    }

    /// Records a door's `setup` or `teardown` time.
    pub(crate) fn observe(&self, op: &str, took: Duration) {
        let labels = vec![("op".to_string(), op.to_string())];
        self.operations.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }
}

/// Serves `GET /metrics` on `addr` forever (one small thread; one request per connection).
pub(crate) fn serve(addr: SocketAddr, registry: Arc<Mutex<Registry>>) -> std::io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming().flatten() {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut conn = conn;
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let (status, body) = if req.starts_with("GET /metrics") {
                    let mut body = String::new();
                    let reg = registry.lock().unwrap_or_else(|e| e.into_inner());
                    let _ = encode(&mut body, &reg);
                    ("200 OK", body)
                } else {
                    ("404 Not Found", "try /metrics\n".to_string())
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })?;
    Ok(())
}
