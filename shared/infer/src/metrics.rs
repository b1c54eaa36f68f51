//! The engine's metric families: admission (images admitted, the limit) and each
//! batcher's batch sizes, waits, queue and drops, labelled by model version and stage.
//! Each service registers them under its own prefix (`imgfeat_serve`, `imgfeat_search`),
//! so two services in one dashboard never mix their batches.

use imgfeat_pipeline::batcher::{
    BATCH_METRIC_LABELS, BATCH_SIZE_BUCKETS, BATCH_SIZE_HELP, BATCH_WAIT_BUCKETS, BATCH_WAIT_HELP,
};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

#[derive(Clone)]
pub struct EngineMetrics {
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

impl EngineMetrics {
    /// Registers `<prefix>_admitted_images`, `<prefix>_admission_limit`,
    /// `<prefix>_batch_size`, `<prefix>_batch_wait_seconds`,
    /// `<prefix>_batch_queued_images`, `<prefix>_batch_dropped_total` and
    /// `<prefix>_inferred_images_total`.
    pub fn register(registry: &Registry, prefix: &str) -> Result<Self, prometheus::Error> {
        let admitted = IntGauge::new(
            format!("{prefix}_admitted_images"),
            "images admitted and not yet answered (queued or in flight)",
        )?;
        let admission_limit = IntGauge::new(
            format!("{prefix}_admission_limit"),
            "most images admitted at once",
        )?;
        let labels = &BATCH_METRIC_LABELS;
        // The same families as the workers' `imgfeat_batch_*`, under this prefix.
        let batch = BatchMetrics {
            size: HistogramVec::new(
                HistogramOpts::new(format!("{prefix}_batch_size"), BATCH_SIZE_HELP)
                    .buckets(BATCH_SIZE_BUCKETS.to_vec()),
                labels,
            )?,
            wait: HistogramVec::new(
                HistogramOpts::new(format!("{prefix}_batch_wait_seconds"), BATCH_WAIT_HELP)
                    .buckets(BATCH_WAIT_BUCKETS.to_vec()),
                labels,
            )?,
            queued: IntGaugeVec::new(
                Opts::new(
                    format!("{prefix}_batch_queued_images"),
                    "images waiting in a batcher's queue",
                ),
                labels,
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    format!("{prefix}_batch_dropped_total"),
                    "images dropped before inference (deadline passed, or the caller left)",
                ),
                &["model", "stage", "reason"],
            )?,
            inferred: IntCounterVec::new(
                Opts::new(
                    format!("{prefix}_inferred_images_total"),
                    "images sent through a model",
                ),
                labels,
            )?,
        };
        registry.register(Box::new(admitted.clone()))?;
        registry.register(Box::new(admission_limit.clone()))?;
        registry.register(Box::new(batch.size.clone()))?;
        registry.register(Box::new(batch.wait.clone()))?;
        registry.register(Box::new(batch.queued.clone()))?;
        registry.register(Box::new(batch.dropped.clone()))?;
        registry.register(Box::new(batch.inferred.clone()))?;
        Ok(Self {
            admitted,
            admission_limit,
            batch,
        })
    }
}
