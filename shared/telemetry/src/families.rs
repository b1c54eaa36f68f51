//! The metric families every service registers: names, help, labels and buckets.
//! Only definitions; `metrics.rs` maps pipeline events onto them.

use std::collections::HashMap;
use std::sync::Mutex;

use imgfeat_pipeline::batcher::{
    BATCH_METRIC_LABELS, BATCH_SIZE_BUCKETS, BATCH_SIZE_HELP, BATCH_WAIT_BUCKETS, BATCH_WAIT_HELP,
};
use imgfeat_pipeline::{Outcome, Worker};
use prometheus::{
    HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

/// Every `imgfeat_*` family [`Telemetry::new`] registers (histograms by base name). The
/// dashboard test checks the dashboard's queries against this list.
pub const METRIC_NAMES: &[&str] = &[
    "imgfeat_images_total",
    "imgfeat_planned_images_total",
    "imgfeat_phase_seconds",
    "imgfeat_end_to_end_seconds",
    "imgfeat_batch_size",
    "imgfeat_batch_wait_seconds",
    "imgfeat_in_flight",
    "imgfeat_queue_messages",
    "imgfeat_backfill_done",
    "imgfeat_backfill_total",
    "imgfeat_backfill_waiting",
    "imgfeat_ready",
    "imgfeat_model_info",
    "imgfeat_build_info",
];

/// One step of one image (fetch, decode, ...) or one batch (inference): 0.5 ms to 30 s.
const PHASE_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Publication to result: a live upload takes well under a second on an idle fleet; a
/// backlog or a retry (back-off up to minutes) takes much longer.
const END_TO_END_BUCKETS: &[f64] = &[
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
    1800.0, 3600.0,
];

pub(crate) struct Inner {
    pub(crate) registry: Registry,
    pub(crate) images: IntCounterVec,
    pub(crate) planned: IntCounter,
    pub(crate) phase: HistogramVec,
    pub(crate) end_to_end: HistogramVec,
    pub(crate) batch_size: HistogramVec,
    pub(crate) batch_wait: HistogramVec,
    pub(crate) in_flight: IntGaugeVec,
    pub(crate) queue_messages: IntGaugeVec,
    pub(crate) backfill_done: IntGaugeVec,
    pub(crate) backfill_total: IntGaugeVec,
    pub(crate) backfill_waiting: IntGaugeVec,
    pub(crate) ready: IntGaugeVec,
    pub(crate) model_info: IntGaugeVec,
    /// What each stage runs now.
    pub(crate) models: Mutex<HashMap<String, StageModel>>,
}

/// A stage's model: `imgfeat_model_info`'s labels (kept so a model swap removes the old
/// series) and the `model` label of the stage's batches.
pub(crate) struct StageModel {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) batch_label: String,
}

// Every name, help text, label set and bucket list below is a constant of this file, so
// constructing and registering them can only fail through a programming error (a bad
// name, a duplicate), which the unit tests catch; no input reaches this code.
#[allow(clippy::expect_used)]
pub(crate) fn build(service: &str) -> Inner {
    let registry = Registry::new();
    fn reg<C: prometheus::core::Collector + Clone + 'static>(r: &Registry, c: C) -> C {
        r.register(Box::new(c.clone()))
            .expect("metric families are constants and registered once");
        c
    }
    let counter_vec = |name: &str, help: &str, labels: &[&str]| {
        reg(
            &registry,
            IntCounterVec::new(Opts::new(name, help), labels).expect("valid counter"),
        )
    };
    let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
        reg(
            &registry,
            IntGaugeVec::new(Opts::new(name, help), labels).expect("valid gauge"),
        )
    };
    let histogram_vec = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
        reg(
            &registry,
            HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )
            .expect("valid histogram"),
        )
    };

    let images = counter_vec(
        "imgfeat_images_total",
        "Images that left a stage, by outcome (ok, skipped, failed, retried, dead_lettered) and failure reason (none when not failed).",
        &["stage", "outcome", "reason"],
    );
    let planned = reg(
        &registry,
        IntCounter::new(
            "imgfeat_planned_images_total",
            "Images a run announced it would go through (embedded index runs).",
        )
        .expect("valid counter"),
    );
    let phase = histogram_vec(
        "imgfeat_phase_seconds",
        "Time spent in one step of a stage: fetch, decode, postprocess, persist and publish per image; inference per batch.",
        &["stage", "phase"],
        PHASE_BUCKETS,
    );
    let end_to_end = histogram_vec(
        "imgfeat_end_to_end_seconds",
        "From the job's first publication to its final outcome at this stage.",
        &["stage"],
        END_TO_END_BUCKETS,
    );
    let batch_size = histogram_vec(
        "imgfeat_batch_size",
        BATCH_SIZE_HELP,
        &BATCH_METRIC_LABELS,
        BATCH_SIZE_BUCKETS,
    );
    let batch_wait = histogram_vec(
        "imgfeat_batch_wait_seconds",
        BATCH_WAIT_HELP,
        &BATCH_METRIC_LABELS,
        BATCH_WAIT_BUCKETS,
    );
    let in_flight = gauge_vec(
        "imgfeat_in_flight",
        "Images received by a stage and not yet settled.",
        &["stage"],
    );
    let queue_messages = gauge_vec(
        "imgfeat_queue_messages",
        "Ready messages in a RabbitMQ queue (work, retry and dead-letter queues).",
        &["queue"],
    );
    let backfill_done = gauge_vec(
        "imgfeat_backfill_done",
        "IDs of a backfill job already published or skipped.",
        &["backfill_job"],
    );
    let backfill_total = gauge_vec(
        "imgfeat_backfill_total",
        "IDs a backfill job covers.",
        &["backfill_job"],
    );
    let backfill_waiting = gauge_vec(
        "imgfeat_backfill_waiting",
        "1 while a backfill job waits for its queue to drain below backfill.low_water.",
        &["backfill_job"],
    );
    let ready = gauge_vec(
        "imgfeat_ready",
        "1 while a /readyz check passes, 0 while it fails (checked at each scrape).",
        &["check"],
    );
    let model_info = gauge_vec(
        "imgfeat_model_info",
        "The model a stage runs (always 1).",
        &["stage", "name", "version"],
    );
    let build_info = gauge_vec(
        "imgfeat_build_info",
        "The service and its version (always 1).",
        &["service", "version"],
    );
    build_info
        .with_label_values(&[service, env!("CARGO_PKG_VERSION")])
        .set(1);

    // Series that exist from the start, so that rates and sums read 0 instead of "no
    // data" before the first image.
    for worker in [Worker::Detector, Worker::Extractor] {
        let stage = worker.as_str();
        for outcome in [Outcome::Ok, Outcome::Skipped] {
            images.with_label_values(&[stage, outcome.as_str(), "none"]);
        }
        in_flight.with_label_values(&[stage]);
    }

    #[cfg(target_os = "linux")]
    registry
        .register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("the process collector is registered once");

    Inner {
        registry,
        images,
        planned,
        phase,
        end_to_end,
        batch_size,
        batch_wait,
        in_flight,
        queue_messages,
        backfill_done,
        backfill_total,
        backfill_waiting,
        ready,
        model_info,
        models: Mutex::new(HashMap::new()),
    }
}
