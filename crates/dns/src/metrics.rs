//! Prometheus metrics of the DNS server.
//!
//! Every counter and histogram that a query can touch is created up front and kept in
//! arrays, so the hot path is an atomic increment and one uncontended lock (the histogram),
//! never a label lookup.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::wire::{rcode, rtype};

type Labels = [(&'static str, &'static str); 2];
type PathLabel = [(&'static str, &'static str); 1];

/// Query types counted by name; everything else is `other`.
const QTYPES: [(u16, &str); 11] = [
    (rtype::A, "A"),
    (rtype::AAAA, "AAAA"),
    (rtype::PTR, "PTR"),
    (rtype::SRV, "SRV"),
    (rtype::MX, "MX"),
    (rtype::TXT, "TXT"),
    (rtype::CNAME, "CNAME"),
    (rtype::SOA, "SOA"),
    (rtype::NS, "NS"),
    (rtype::HTTPS, "HTTPS"),
    (rtype::ANY, "ANY"),
];
const QTYPE_LABELS: usize = QTYPES.len() + 1;

/// How a query ended, the `result` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Answered by berth with this rcode.
    Local(u8),
    /// Answered by an upstream server.
    Forwarded,
    /// Answered from the cache.
    Cached,
    /// Forwarding failed: every upstream failed or timed out (SERVFAIL).
    UpstreamFailed,
}

const RESULTS: [&str; 8] = [
    "noerror",
    "formerr",
    "servfail",
    "nxdomain",
    "notimp",
    "refused",
    "forwarded",
    "cached",
];

impl Outcome {
    fn index(self) -> usize {
        match self {
            Outcome::Local(rc) if usize::from(rc) <= 5 => usize::from(rc),
            Outcome::Local(_) => usize::from(rcode::FORMERR),
            Outcome::Forwarded => 6,
            Outcome::Cached => 7,
            Outcome::UpstreamFailed => usize::from(rcode::SERVFAIL),
        }
    }

    fn local(self) -> bool {
        matches!(self, Outcome::Local(_))
    }
}

/// Index of a query type's label.
pub(crate) fn qtype_index(qtype: u16) -> usize {
    QTYPES
        .iter()
        .position(|&(t, _)| t == qtype)
        .unwrap_or(QTYPES.len())
}

/// The server's metrics. Cheap to clone (all clones share the values).
///
/// - `berth_dns_queries_total{qtype, result}`: queries by type (A, AAAA, PTR, …, other)
///   and result (noerror, nxdomain, servfail, formerr, notimp, refused for berth's own
///   answers; forwarded, cached for upstream answers; servfail also when every upstream
///   failed);
/// - `berth_dns_query_duration_seconds{path}`: time from receipt to the answer being ready
///   (`local`: berth or cache, `forwarded`: upstream);
/// - `berth_dns_upstream_failures_total`: upstream attempts that failed or timed out.
#[derive(Clone, Debug)]
pub struct Metrics {
    queries: Family<Labels, Counter>,
    by_label: Vec<Counter>,
    durations: Family<PathLabel, Histogram>,
    local: Histogram,
    forwarded: Histogram,
    upstream_failures: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates the metrics, unregistered.
    pub fn new() -> Metrics {
        let queries = Family::<Labels, Counter>::default();
        let mut by_label = Vec::with_capacity(QTYPE_LABELS * RESULTS.len());
        for q in QTYPES.iter().map(|&(_, n)| n).chain(["other"]) {
            for r in RESULTS {
                by_label.push(
                    queries
                        .get_or_create(&[("qtype", q), ("result", r)])
                        .clone(),
                );
            }
        }
        // 10 µs to ~5 s.
        let histogram: fn() -> Histogram = || Histogram::new(exponential_buckets(0.00001, 2.5, 15));
        let durations = Family::new_with_constructor(histogram);
        let local = durations.get_or_create(&[("path", "local")]).clone();
        let forwarded = durations.get_or_create(&[("path", "forwarded")]).clone();
        Metrics {
            queries,
            by_label,
            durations,
            local,
            forwarded,
            upstream_failures: Counter::default(),
        }
    }

    /// Registers the metrics (clones sharing the values) in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "berth_dns_queries",
            "DNS queries by type and result",
            self.queries.clone(),
        );
        registry.register(
            "berth_dns_query_duration_seconds",
            "Time from receiving a DNS query to its answer being ready",
            self.durations.clone(),
        );
        registry.register(
            "berth_dns_upstream_failures",
            "Upstream DNS attempts that failed or timed out",
            self.upstream_failures.clone(),
        );
    }

    pub(crate) fn record(&self, qtype_index: usize, outcome: Outcome, took: Duration) {
        self.by_label[qtype_index * RESULTS.len() + outcome.index()].inc();
        let h = if outcome.local() || outcome == Outcome::Cached {
            &self.local
        } else {
            &self.forwarded
        };
        h.observe(took.as_secs_f64());
    }

    pub(crate) fn upstream_failed(&self) {
        self.upstream_failures.inc();
    }

    /// The current value of `berth_dns_queries_total{qtype, result}`.
    pub fn queries(&self, qtype: &str, result: &str) -> u64 {
        let q = QTYPES
            .iter()
            .position(|&(_, n)| n == qtype)
            .or((qtype == "other").then_some(QTYPES.len()));
        let r = RESULTS.iter().position(|&n| n == result);
        match (q, r) {
            (Some(q), Some(r)) => self.by_label[q * RESULTS.len() + r].get(),
            _ => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_encodes() {
        let m = Metrics::new();
        m.record(
            qtype_index(rtype::A),
            Outcome::Local(rcode::NOERROR),
            Duration::ZERO,
        );
        m.record(qtype_index(rtype::A), Outcome::Cached, Duration::ZERO);
        m.record(qtype_index(999), Outcome::UpstreamFailed, Duration::ZERO);
        assert_eq!(m.queries("A", "noerror"), 1);
        assert_eq!(m.queries("A", "cached"), 1);
        assert_eq!(m.queries("other", "servfail"), 1);
        let mut reg = Registry::default();
        m.register(&mut reg);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &reg).unwrap();
        assert!(text.contains("berth_dns_queries_total{qtype=\"A\",result=\"cached\"} 1"));
        assert!(text.contains("berth_dns_query_duration_seconds_count{path=\"local\"} 2"));
    }
}
