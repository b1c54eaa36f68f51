//! The serve metric families, registered beside the common ones: requests by status and
//! their latency, admission, and each batcher's batch sizes, waits, queue and drops.

use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct ServeMetrics {
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    pub admitted: IntGauge,
    pub admission_limit: IntGauge,
    pub batch: BatchMetrics,
}

/// What every batcher reports, labelled by model version and stage.
#[derive(Clone)]
pub struct BatchMetrics {
    pub size: HistogramVec,
    pub wait: HistogramVec,
    pub queued: IntGaugeVec,
    pub dropped: IntCounterVec,
    pub inferred: IntCounterVec,
}

const LATENCY: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const SIZES: &[f64] = &[1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0, 16.0, 24.0, 32.0, 64.0];

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
            .buckets(LATENCY.to_vec()),
            &["status"],
        )?;
        let admitted = IntGauge::new(
            "imgfeat_serve_admitted_images",
            "images admitted and not yet answered (queued or in flight)",
        )?;
        let admission_limit = IntGauge::new(
            "imgfeat_serve_admission_limit",
            "most images admitted at once (serve.max_queued)",
        )?;
        let labels = &["model", "stage"];
        let batch = BatchMetrics {
            size: HistogramVec::new(
                HistogramOpts::new(
                    "imgfeat_serve_batch_size",
                    "images per batch sent to a model",
                )
                .buckets(SIZES.to_vec()),
                labels,
            )?,
            wait: HistogramVec::new(
                HistogramOpts::new(
                    "imgfeat_serve_batch_wait_seconds",
                    "time an image waited in a batcher's queue before its batch ran",
                )
                .buckets(LATENCY.to_vec()),
                labels,
            )?,
            queued: IntGaugeVec::new(
                Opts::new(
                    "imgfeat_serve_batch_queued_images",
                    "images waiting in a batcher's queue",
                ),
                labels,
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "imgfeat_serve_batch_dropped_total",
                    "images dropped before inference (deadline passed, or the caller left)",
                ),
                &["model", "stage", "reason"],
            )?,
            inferred: IntCounterVec::new(
                Opts::new(
                    "imgfeat_serve_inferred_images_total",
                    "images sent through a model",
                ),
                labels,
            )?,
        };
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(admitted.clone()))?;
        registry.register(Box::new(admission_limit.clone()))?;
        registry.register(Box::new(batch.size.clone()))?;
        registry.register(Box::new(batch.wait.clone()))?;
        registry.register(Box::new(batch.queued.clone()))?;
        registry.register(Box::new(batch.dropped.clone()))?;
        registry.register(Box::new(batch.inferred.clone()))?;
        Ok(Self {
            requests,
            latency,
            admitted,
            admission_limit,
            batch,
        })
    }

    pub fn answered(&self, status: u16, seconds: f64) {
        let status = status.to_string();
        self.requests.with_label_values(&[&status]).inc();
        self.latency.with_label_values(&[&status]).observe(seconds);
    }
}
