use std::time::Duration;

/// The port berth's DNS listeners use unless the agent is configured otherwise.
pub const DEFAULT_PORT: u16 = 53;

/// Server settings fixed at start. `Config::default()` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// TTL of berth's own answers and the negative TTL (SOA MINIMUM) of its NXDOMAIN and
    /// NODATA answers. Short, because containers come and go: 5 s.
    pub ttl: u32,
    /// Time budget for forwarding one query, all upstreams included: 2 s.
    pub upstream_timeout: Duration,
    /// Entries of the cache of forwarded answers (0 disables it): 4096.
    pub cache_entries: usize,
    /// Bytes of answers the cache may hold: 2 MiB. Answers larger than a sixteenth of
    /// this are not cached.
    pub cache_bytes: usize,
    /// Longest time a forwarded answer is cached, whatever its TTL says: 3600 s.
    pub cache_max_ttl: u32,
    /// A TCP client that sends nothing for this long is disconnected: 10 s.
    pub tcp_idle_timeout: Duration,
    /// Open TCP connections per listener; more are closed on accept: 128.
    pub max_tcp_connections: usize,
    /// Forwarded UDP queries in flight; beyond this, queries get SERVFAIL at once: 1024.
    pub max_forwards: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            ttl: 5,
            upstream_timeout: Duration::from_secs(2),
            cache_entries: 4096,
            cache_bytes: 2 << 20,
            cache_max_ttl: 3600,
            tcp_idle_timeout: Duration::from_secs(10),
            max_tcp_connections: 128,
            max_forwards: 1024,
        }
    }
}
