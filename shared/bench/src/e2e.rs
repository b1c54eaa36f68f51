//! (d) The embedded `index` run end to end over the corpus into a fresh SQLite store,
//! with the pipeline's own events summed per phase, CPU time per thread group and the
//! memory it took.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imgfeat_app::paths::SqlitePathRegistry;
use imgfeat_embedded::{IndexOptions, IndexRun};
use imgfeat_pipeline::{Event, EventSink, Events, PipelineSettings, parts};
use imgfeat_store::SqliteStore;
use serde::Serialize;

use crate::BenchError;
use crate::procfs;
use crate::settings::Knobs;

#[derive(Debug, Clone, Serialize)]
pub struct PhaseTotal {
    pub worker: String,
    pub phase: String,
    pub count: u64,
    /// Mean wall time of one occurrence (a batch for inference, an image otherwise).
    pub mean_ms: f64,
    pub total_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchSizes {
    pub worker: String,
    pub batches: u64,
    pub mean_size: f64,
    pub mean_wait_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct E2eReport {
    pub name: String,
    pub knobs: Knobs,
    pub processed: u64,
    pub failed: u64,
    /// Seconds of the run itself (scan, register, process), from its summary.
    pub seconds: f64,
    /// From the run's summary: model load excluded.
    pub images_per_second: f64,
    pub model_load_seconds: f64,
    /// VmHWM during the run (reset before it when the kernel allows), MiB.
    pub peak_rss_mib: Option<f64>,
    /// Largest VmRSS sampled every 20 ms during the run, MiB.
    pub max_rss_sampled_mib: Option<f64>,
    /// RSS after the models were loaded, before the run, MiB.
    pub rss_before_mib: Option<f64>,
    pub cpu_cores_used: f64,
    /// CPU time of the whole process per image processed: the efficiency, which the
    /// load of other processes does not change much.
    pub cpu_ms_per_image: f64,
    /// CPU seconds per thread group (ONNX Runtime's intra-op threads inherit the name
    /// of the model thread that created them).
    pub cpu_seconds_by_thread: BTreeMap<String, f64>,
    pub phases: Vec<PhaseTotal>,
    pub batches: Vec<BatchSizes>,
    pub load_start: Option<procfs::LoadAvg>,
    pub load_end: Option<procfs::LoadAvg>,
}

#[derive(Default)]
struct Sums {
    phases: BTreeMap<(&'static str, &'static str), (u64, f64)>,
    batches: BTreeMap<&'static str, (u64, u64, f64)>,
}

/// Sums the pipeline's events: the same numbers its metrics would show.
#[derive(Default)]
struct PhaseSink(Mutex<Sums>);

impl EventSink for PhaseSink {
    fn emit(&self, event: &Event) {
        let Ok(mut s) = self.0.lock() else {
            return;
        };
        match *event {
            Event::PhaseTime {
                worker,
                phase,
                seconds,
            } => {
                let e = s
                    .phases
                    .entry((worker.as_str(), phase.as_str()))
                    .or_default();
                e.0 += 1;
                e.1 += seconds;
            }
            Event::BatchStarted {
                worker,
                size,
                waited_seconds,
            } => {
                let e = s.batches.entry(worker.as_str()).or_default();
                e.0 += 1;
                e.1 += size as u64;
                e.2 += waited_seconds;
            }
            _ => {}
        }
    }
}

/// One `index` run of `corpus` with `settings`, models loaded first (not timed).
pub async fn run(
    name: &str,
    knobs: Knobs,
    settings: &PipelineSettings,
    corpus: &Path,
) -> Result<E2eReport, BenchError> {
    settings.validate().map_err(BenchError::Options)?;
    let load_started = Instant::now();
    let detector = parts::load_detector(settings).map_err(BenchError::pipeline)?;
    let extractor = parts::load_extractor(settings).map_err(BenchError::pipeline)?;
    let model_load_seconds = load_started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().map_err(|e| BenchError::io(Path::new("temp dir"), e))?;
    let store_path = dir.path().join("bench.sqlite3");
    let store = {
        let p = store_path.clone();
        tokio::task::spawn_blocking(move || SqliteStore::open(&p))
            .await
            .map_err(|e| BenchError::Options(e.to_string()))?
            .map(Arc::new)
            .map_err(|e| BenchError::Store(e.to_string()))?
    };
    let registry = SqlitePathRegistry(store.clone());
    let sink = Arc::new(PhaseSink::default());
    let run = IndexRun {
        settings,
        detector: &detector,
        extractor: &extractor,
        store,
        registry: &registry,
        events: Events::new().with(sink.clone()),
    };

    let rss_before_mib = procfs::rss_mib();
    let reset = procfs::reset_peak_rss();
    let load_start = procfs::loadavg();
    let cpu_before = procfs::thread_cpu();
    let process_before = procfs::process_cpu();
    let sampler = procfs::RssSampler::start(Duration::from_millis(20));
    let summary = run
        .run(corpus, IndexOptions { force: true })
        .await
        .map_err(|e| BenchError::Pipeline(e.to_string()))?;
    let max_rss_sampled_mib = sampler.finish();
    let cpu_after = procfs::thread_cpu();
    let process_after = procfs::process_cpu();
    let load_end = procfs::loadavg();
    let peak_rss_mib = if reset { procfs::peak_rss_mib() } else { None };

    let mut cpu_seconds_by_thread = procfs::cpu_by_group(&cpu_before, &cpu_after);
    let live: f64 = cpu_seconds_by_thread.values().sum();
    let cpu_total = match (process_before, process_after) {
        (Some(b), Some(a)) => a - b,
        _ => live,
    };
    // Threads that ended during the run (the decode pool is dropped with the run).
    if cpu_total - live >= 0.01 {
        cpu_seconds_by_thread.insert("(exited threads)".into(), cpu_total - live);
    }
    let sums = sink
        .0
        .lock()
        .map(|s| (s.phases.clone(), s.batches.clone()))
        .unwrap_or_default();
    let phases = sums
        .0
        .into_iter()
        .map(|((worker, phase), (count, total))| PhaseTotal {
            worker: worker.into(),
            phase: phase.into(),
            count,
            mean_ms: total * 1000.0 / count.max(1) as f64,
            total_seconds: total,
        })
        .collect();
    let batches = sums
        .1
        .into_iter()
        .map(|(worker, (n, items, waited))| BatchSizes {
            worker: worker.into(),
            batches: n,
            mean_size: items as f64 / n.max(1) as f64,
            mean_wait_ms: waited * 1000.0 / n.max(1) as f64,
        })
        .collect();
    drop(run);
    drop(detector);
    drop(extractor);
    Ok(E2eReport {
        name: name.into(),
        knobs,
        processed: summary.processed,
        failed: summary.failed_total(),
        seconds: summary.seconds,
        images_per_second: summary.images_per_second,
        model_load_seconds,
        peak_rss_mib,
        max_rss_sampled_mib,
        rss_before_mib,
        cpu_cores_used: cpu_total / summary.seconds.max(1e-9),
        cpu_ms_per_image: cpu_total * 1000.0 / summary.processed.max(1) as f64,
        cpu_seconds_by_thread,
        phases,
        batches,
        load_start,
        load_end,
    })
}
