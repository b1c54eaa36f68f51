//! The serve metric families, registered beside the common ones: requests by status and
//! their latency, neighbour lookups, and the engine's (admission, and each batcher's
//! batch sizes, waits, queue and drops) under the `imgfeat_serve` prefix.

use imgfeat_infer::EngineMetrics;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// Request times, from an image answered at once to a full queue at its deadline.
const REQUEST_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Clone)]
pub struct ServeMetrics {
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    /// `?neighbours=` lookups by result: ok, incomplete (a shard missing), failed.
    pub neighbour_lookups: IntCounterVec,
    pub engine: EngineMetrics,
}

impl ServeMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                "imgfeat_serve_requests_total",
                "inference requests answered, by HTTP status",
            ),
            &["status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "imgfeat_serve_request_seconds",
                "time to answer an inference request, by HTTP status",
            )
            .buckets(REQUEST_SECONDS.to_vec()),
            &["status"],
        )?;
        let neighbour_lookups = IntCounterVec::new(
            Opts::new(
                "imgfeat_serve_neighbour_lookups_total",
                "images whose neighbours were asked of the search service, by result: ok, \
                 incomplete (a shard did not answer), failed (no neighbours in the answer)",
            ),
            &["result"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(neighbour_lookups.clone()))?;
        let engine = EngineMetrics::register(registry, "imgfeat_serve")?;
        Ok(Self {
            requests,
            latency,
            neighbour_lookups,
            engine,
        })
    }

    pub fn answered(&self, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests.with_label_values(&[&status]).inc();
        self.latency.with_label_values(&[&status]).observe(seconds);
    }
}
