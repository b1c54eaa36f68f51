//! The search service's own metric families, registered beside the common ones.

use std::time::Duration;

use prometheus::{
    Gauge, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts,
    Registry,
};

#[derive(Clone)]
pub struct SearchMetrics {
    queries: HistogramVec,
    pub index_codes: IntGauge,
    pub peer_failures: IntCounter,
    /// Per other shard and replica: that replica failed or timed out and the query
    /// went on to another replica of the shard.
    pub failovers: IntCounterVec,
    /// Per other shard: a second replica asked because the first had not answered
    /// within the hedge delay.
    pub hedged: IntCounterVec,
    events: IntCounterVec,
    event_lag: Gauge,
    event_delay: Histogram,
    pub duplicates_found: IntCounter,
}

/// From stored to applied: milliseconds when the shard keeps up, minutes after an outage.
const LAG_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
];

/// Query latency buckets, from a cached in-memory answer to a slow fan-out.
const BUCKETS: &[f64] = &[
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

impl SearchMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let queries = HistogramVec::new(
            HistogramOpts::new(
                "imgfeat_search_query_seconds",
                "time to answer a query: across every shard by stored image (`similar`), by \
                 code (`code`) or by a posted image (`image`, inference included); `shard` \
                 this shard's part",
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
        let failovers = IntCounterVec::new(
            Opts::new(
                "imgfeat_search_failovers_total",
                "a replica of another shard (`shard`, `replica`: its place in the shard's \
                 entry of search.shard_urls) failed or timed out and another replica of \
                 that shard was left to answer",
            ),
            &["shard", "replica"],
        )?;
        let hedged = IntCounterVec::new(
            Opts::new(
                "imgfeat_search_hedged_requests_total",
                "requests to another replica of `shard` because the one asked had not \
                 answered within search.hedge_ms",
            ),
            &["shard"],
        )?;
        let events = IntCounterVec::new(
            Opts::new(
                "imgfeat_search_events_total",
                "code-stored events handled: inserted (this shard's), other_shard, \
                 other_version, failed (sent back to be applied again)",
            ),
            &["result"],
        )?;
        let event_lag = Gauge::new(
            "imgfeat_search_event_lag_seconds",
            "how far this shard is behind the event stream: now minus stored_at of the \
             last event applied",
        )?;
        let event_delay = Histogram::with_opts(
            HistogramOpts::new(
                "imgfeat_search_event_delay_seconds",
                "from a code stored to its event applied here",
            )
            .buckets(LAG_BUCKETS.to_vec()),
        )?;
        let duplicates_found = IntCounter::new(
            "imgfeat_search_duplicates_found_total",
            "near-duplicate pairs (new image, stored image of this shard) found within the \
             dedup radius",
        )?;
        registry.register(Box::new(queries.clone()))?;
        registry.register(Box::new(index_codes.clone()))?;
        registry.register(Box::new(peer_failures.clone()))?;
        registry.register(Box::new(failovers.clone()))?;
        registry.register(Box::new(hedged.clone()))?;
        registry.register(Box::new(events.clone()))?;
        registry.register(Box::new(event_lag.clone()))?;
        registry.register(Box::new(event_delay.clone()))?;
        registry.register(Box::new(duplicates_found.clone()))?;
        Ok(Self {
            queries,
            index_codes,
            peer_failures,
            failovers,
            hedged,
            events,
            event_lag,
            event_delay,
            duplicates_found,
        })
    }

    /// One event handled; `lag` (seconds since it was stored) when it was applied.
    pub fn applied(&self, result: &str, lag: Option<f64>) {
        self.events.with_label_values(&[result]).inc();
        if let Some(lag) = lag {
            self.event_lag.set(lag);
            self.event_delay.observe(lag);
        }
    }

    pub fn observe(&self, kind: &str, took: Duration) {
        let h: Histogram = self.queries.with_label_values(&[kind]);
        h.observe(took.as_secs_f64());
    }
}
