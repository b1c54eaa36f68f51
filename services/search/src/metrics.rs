//! The search service's own metric families, registered beside the common ones.

use std::time::Duration;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntGauge, Registry};

#[derive(Clone)]
pub struct SearchMetrics {
    queries: HistogramVec,
    pub index_codes: IntGauge,
    pub peer_failures: IntCounter,
}

/// Query latency buckets, from a cached in-memory answer to a slow fan-out.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl SearchMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let queries = HistogramVec::new(
            HistogramOpts::new(
                "imgfeat_search_query_seconds",
                "time to answer a query: `similar` across every shard, `shard` this shard's part",
            )
            .buckets(BUCKETS.to_vec()),
            &["kind"],
        )?;
        let index_codes = IntGauge::new(
            "imgfeat_search_index_codes",
            "codes held by this shard's index",
        )?;
        let peer_failures = IntCounter::new(
            "imgfeat_search_peer_failures_total",
            "queries to another shard that failed or timed out",
        )?;
        registry.register(Box::new(queries.clone()))?;
        registry.register(Box::new(index_codes.clone()))?;
        registry.register(Box::new(peer_failures.clone()))?;
        Ok(Self {
            queries,
            index_codes,
            peer_failures,
        })
    }

    pub fn observe(&self, kind: &str, took: Duration) {
        let h: Histogram = self.queries.with_label_values(&[kind]);
        h.observe(took.as_secs_f64());
    }
}
