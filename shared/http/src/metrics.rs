//! Requests by route and status, and their latency, for any API: one layer outside
//! every other, so refusals (401, 413, 429, 503) are counted as what callers saw.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::{self, Next};
use axum::response::Response;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

/// 1 ms to 60 s: an ID list answers in milliseconds, a photo in tens to hundreds.
const LATENCY: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// `<prefix>_http_requests_total{route,status}` and
/// `<prefix>_http_request_seconds{route}`.
#[derive(Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl HttpMetrics {
    /// Registers both families, e.g. with `prefix = "imgfeat_ingest"`.
    pub fn register(registry: &Registry, prefix: &str) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new(
                format!("{prefix}_http_requests_total"),
                "HTTP requests answered, by route template and status",
            ),
            &["route", "status"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                format!("{prefix}_http_request_seconds"),
                "time to answer an HTTP request, by route template",
            )
            .buckets(LATENCY.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self { requests, latency })
    }

    /// Counts one answer.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        self.requests
            .with_label_values(&[route, &status.to_string()])
            .inc();
        self.latency.with_label_values(&[route]).observe(seconds);
    }

    /// `router` with every answer counted.
    pub fn around(&self, router: Router) -> Router {
        router.layer(middleware::from_fn_with_state(self.clone(), record))
    }
}

async fn record(State(m): State<HttpMetrics>, req: Request, next: Next) -> Response {
    // The route template, never the raw path: IDs in paths would make a series each.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str())
        .to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    m.observe(
        &route,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    res
}
