//! One-run benchmark of the imgfeat pipeline on a generated corpus (seeded transforms of
//! the fixture photos): (a) decode + resize and the crop chain per image, (b) each
//! model's images/s at batch 1 and 8, (c) the model-only ceiling, (d) the embedded
//! `index` end to end, (e) d/c, with the machine's load and the memory used.
//!
//! A benchmark, never a test: nothing here asserts a speed.
//!
//! ```text
//! imgfeat bench --images 500          # the CLI, dev profile
//! cargo bench -p imgfeat-bench
//! ```

pub mod cli;
pub mod corpus;
pub mod e2e;
pub mod imaging_phase;
pub mod models_phase;
mod phases;
pub mod procfs;
mod report;
pub mod settings;

use std::path::{Path, PathBuf};
use std::time::Duration;

use imgfeat_pipeline::PipelineSettings;
use serde::Serialize;

pub use cli::BenchArgs;
pub use report::print_report;
pub use settings::{Knobs, Variant};

use crate::models_phase::{Ceiling, CeilingConfig, CeilingMode, ModelRate, SessionKey};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("corpus: {0}")]
    Corpus(String),
    #[error("imaging: {0}")]
    Imaging(String),
    #[error("model: {0}")]
    Model(String),
    #[error("pipeline: {0}")]
    Pipeline(String),
    #[error("store: {0}")]
    Store(String),
    #[error("options: {0}")]
    Options(String),
}

impl BenchError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        BenchError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn imaging(e: imgfeat_imaging::ImagingError) -> Self {
        BenchError::Imaging(e.to_string())
    }

    pub(crate) fn model(e: imgfeat_model::ModelError) -> Self {
        BenchError::Model(e.to_string())
    }

    pub(crate) fn pipeline(e: impl std::fmt::Display) -> Self {
        BenchError::Pipeline(e.to_string())
    }
}

#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Photos in the corpus (>= 500 for the issue's numbers).
    pub images: usize,
    pub seed: u64,
    /// Corpus folder; default under `target/imgfeat-bench/`.
    pub corpus_dir: Option<PathBuf>,
    /// The pipeline as configured (defaults, file, IMGFEAT_* environment).
    pub pipeline: PipelineSettings,
    /// Further end-to-end runs, each a variant of `pipeline`.
    pub variants: Vec<Variant>,
    /// End-to-end runs of each configuration (alternating between configurations).
    pub repeats: usize,
    /// Time spent on each model-only measurement.
    pub model_budget: Duration,
    /// Tensors cycled through by the model-only measurements (multiple of 8).
    pub model_tensors: usize,
    /// Measure the ceiling in other thread configurations too.
    pub context_ceilings: bool,
    /// Skip (a)-(c) and run only the end-to-end phase.
    pub e2e_only: bool,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            images: 500,
            seed: 1,
            corpus_dir: None,
            pipeline: PipelineSettings::default(),
            variants: Vec::new(),
            repeats: 1,
            model_budget: Duration::from_secs(3),
            model_tensors: 64,
            context_ceilings: true,
            e2e_only: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CorpusInfo {
    pub dir: String,
    pub images: usize,
    pub seed: u64,
    pub reused: bool,
    pub mean_kib: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    pub machine: Machine,
    pub corpus: CorpusInfo,
    pub pipeline: Knobs,
    pub decode: Option<imaging_phase::DecodeReport>,
    pub crop_chain: Option<imaging_phase::CropChainReport>,
    pub models: Vec<ModelRate>,
    /// (c) in the pipeline's own configuration: its session options and batch size,
    /// the two models alternating on one thread.
    pub ceiling: Option<Ceiling>,
    /// The ceiling in other configurations, for context.
    pub ceilings: Vec<Ceiling>,
    pub e2e: Vec<e2e::E2eReport>,
    /// (e) end to end / ceiling, for each end-to-end run.
    pub ratios: Vec<Ratio>,
    /// Peak RSS of the whole benchmark process (VmHWM at the end; reset before each
    /// end-to-end run, so this is the last run's peak when resets work).
    pub peak_rss_mib: Option<f64>,
    pub load_start: Option<procfs::LoadAvg>,
    pub load_end: Option<procfs::LoadAvg>,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cpus: usize,
    pub model_name: Option<String>,
    pub onnxruntime: String,
    pub profile: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub e2e: String,
    pub e2e_images_per_second: f64,
    /// Against the two models alternating on one thread with the run's own session
    /// options and batch size (the issue's definition of the ceiling).
    pub vs_alternating: Option<f64>,
    pub alternating_ceiling: Option<f64>,
    /// Against the two models on two threads with the run's own session options and
    /// batch size, as the pipeline runs them (one model thread each).
    pub vs_concurrent: Option<f64>,
    pub concurrent_ceiling: Option<f64>,
    /// Against the best ceiling measured in any configuration.
    pub vs_best: Option<f64>,
    pub best_ceiling: Option<String>,
}

fn machine() -> Machine {
    let model_name = procfs::cpu_model();
    Machine {
        cpus: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        model_name,
        onnxruntime: imgfeat_model::runtime::ORT_VERSION.into(),
        profile: if cfg!(debug_assertions) {
            "dev (dependencies and imaging/model at opt-level 3)"
        } else {
            "release"
        },
    }
}

fn alternating(s: &PipelineSettings) -> CeilingConfig {
    ceiling_config(s, CeilingMode::Alternating)
}

pub(crate) fn ceiling_config(s: &PipelineSettings, mode: CeilingMode) -> CeilingConfig {
    CeilingConfig {
        mode,
        detector: s.models.detector_session.into(),
        extractor: s.models.extractor_session.into(),
        batch: s.detector.batch.max_batch,
    }
}

/// Runs the whole benchmark in this process. Blocking phases run on tokio's blocking
/// pool; the end-to-end phase runs on the caller's runtime, like `imgfeat index`.
pub async fn run(options: BenchOptions) -> Result<BenchReport, BenchError> {
    let started = std::time::Instant::now();
    let load_start = procfs::loadavg();
    let machine = machine();
    let base = options.pipeline.clone();
    base.validate().map_err(BenchError::Options)?;
    let mut configs: Vec<(String, PipelineSettings)> = vec![("configured".into(), base.clone())];
    for v in &options.variants {
        configs.push((v.name.clone(), v.apply(&base)?));
    }

    let dir = options
        .corpus_dir
        .clone()
        .unwrap_or_else(|| corpus::default_dir(options.images, options.seed));
    let (n, seed) = (options.images, options.seed);
    let corpus = blocking(move || corpus::generate(&dir, n, seed)).await?;
    let corpus_info = CorpusInfo {
        dir: corpus.dir.display().to_string(),
        images: corpus.files.len(),
        seed: corpus.seed,
        reused: !corpus.generated,
        mean_kib: corpus.total_bytes() as f64 / corpus.files.len().max(1) as f64 / 1024.0,
    };

    let mut report = BenchReport {
        machine,
        corpus: corpus_info,
        pipeline: Knobs::of(&base),
        decode: None,
        crop_chain: None,
        models: Vec::new(),
        ceiling: None,
        ceilings: Vec::new(),
        e2e: Vec::new(),
        ratios: Vec::new(),
        peak_rss_mib: None,
        load_start,
        load_end: None,
        seconds: 0.0,
    };

    if !options.e2e_only {
        let opts = options.clone();
        let paths = corpus.paths();
        let configs2 = configs.clone();
        let (decode, crop_chain, models, ceilings) =
            blocking(move || model_phases(&opts, &paths, &configs2)).await?;
        report.decode = Some(decode);
        report.crop_chain = Some(crop_chain);
        report.models = models;
        let primary = alternating(&base);
        report.ceiling = ceilings.iter().find(|c| c.config == primary).cloned();
        report.ceilings = ceilings;
    }

    for round in 0..options.repeats.max(1) {
        for (name, settings) in &configs {
            let label = if options.repeats > 1 {
                format!("{name} #{}", round + 1)
            } else {
                name.clone()
            };
            // This machine's speed drifts by +-20 % over minutes, so the ceilings a run
            // is judged against are measured right before it, not only in phase (c).
            let now = if options.e2e_only {
                Vec::new()
            } else {
                tracing::info!(run = %label, "ceilings right before the run");
                let (opts, paths, s) = (options.clone(), corpus.paths(), settings.clone());
                blocking(move || phases::own_ceilings(&opts, &paths, &s)).await?
            };
            tracing::info!(run = %label, "end-to-end index run");
            let r = e2e::run(&label, Knobs::of(settings), settings, &corpus.dir).await?;
            let ceiling_of = |mode| {
                now.iter()
                    .chain(report.ceilings.iter())
                    .find(|c| c.config == ceiling_config(settings, mode))
                    .map(|c| c.images_per_second)
            };
            let alt = ceiling_of(CeilingMode::Alternating);
            let conc = ceiling_of(CeilingMode::Concurrent);
            let ratio = |c: Option<f64>| c.map(|c| r.images_per_second / c);
            let best = report
                .ceilings
                .iter()
                .max_by(|a, b| a.images_per_second.total_cmp(&b.images_per_second));
            report.ratios.push(Ratio {
                e2e: label,
                e2e_images_per_second: r.images_per_second,
                vs_alternating: ratio(alt),
                alternating_ceiling: alt,
                vs_concurrent: ratio(conc),
                concurrent_ceiling: conc,
                vs_best: best.map(|c| r.images_per_second / c.images_per_second),
                best_ceiling: best.map(|c| c.label.clone()),
            });
            report.e2e.push(r);
        }
    }

    report.peak_rss_mib = procfs::peak_rss_mib();
    report.load_end = procfs::loadavg();
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

type ModelPhases = (
    imaging_phase::DecodeReport,
    imaging_phase::CropChainReport,
    Vec<ModelRate>,
    Vec<Ceiling>,
);

fn model_phases(
    options: &BenchOptions,
    files: &[PathBuf],
    configs: &[(String, PipelineSettings)],
) -> Result<ModelPhases, BenchError> {
    let base = &options.pipeline;
    let prepared = phases::prepare(options, files, true)?;
    let (mut models, tensors) = (prepared.models, prepared.tensors);
    let (decode, crop_chain) = (prepared.decode, prepared.crop_chain);

    // (b) each model alone, at batch 1 and 8, with 1 and 2 intra threads (and the
    // pipeline's own setting).
    let mut keys: Vec<SessionKey> = vec![
        SessionKey {
            intra_threads: 1,
            spinning: false,
            dynamic_block_base: 0,
        },
        SessionKey {
            intra_threads: 2,
            spinning: false,
            dynamic_block_base: 0,
        },
        base.models.detector_session.into(),
        base.models.extractor_session.into(),
    ];
    dedup(&mut keys);
    let budget = options.model_budget;
    let mut rates = Vec::new();
    for &key in &keys {
        for batch in [1, 8] {
            tracing::info!(?key, batch, "(b) models alone");
            rates.push(models.detector_rate(key, batch, &tensors, budget)?);
            rates.push(models.backbone_rate(key, batch, &tensors, budget)?);
        }
    }

    // (c) the ceiling: each configuration's alternating ceiling, then context.
    let mut wanted: Vec<CeilingConfig> = configs
        .iter()
        .flat_map(|(_, s)| {
            [
                ceiling_config(s, CeilingMode::Alternating),
                ceiling_config(s, CeilingMode::Concurrent),
            ]
        })
        .collect();
    let primary = alternating(base);
    if options.context_ceilings {
        // With and without the pipeline's block scheduling, so that the best ceiling
        // is never one the pipeline's own setting was denied.
        let mut blocks = vec![0, primary.detector.dynamic_block_base];
        blocks.dedup();
        for t in [1, 2] {
            for &dynamic_block_base in &blocks {
                let key = SessionKey {
                    intra_threads: t,
                    spinning: false,
                    dynamic_block_base,
                };
                for mode in [CeilingMode::Alternating, CeilingMode::Concurrent] {
                    wanted.push(CeilingConfig {
                        mode,
                        detector: key,
                        extractor: key,
                        batch: primary.batch,
                    });
                }
            }
        }
        wanted.push(CeilingConfig {
            batch: 1,
            ..primary
        });
        wanted.push(CeilingConfig {
            detector: SessionKey {
                spinning: true,
                ..primary.detector
            },
            extractor: SessionKey {
                spinning: true,
                ..primary.extractor
            },
            ..primary
        });
    }
    dedup(&mut wanted);
    let mut ceilings = Vec::new();
    for config in wanted {
        tracing::info!(%config, "(c) ceiling");
        ceilings.push(models.ceiling(config, &tensors, budget)?);
    }
    Ok((decode, crop_chain, rates, ceilings))
}

fn dedup<T: PartialEq + Copy>(v: &mut Vec<T>) {
    let mut out: Vec<T> = Vec::with_capacity(v.len());
    for x in v.iter() {
        if !out.contains(x) {
            out.push(*x);
        }
    }
    *v = out;
}

async fn blocking<T, F>(f: F) -> Result<T, BenchError>
where
    F: FnOnce() -> Result<T, BenchError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BenchError::Options(format!("a benchmark phase panicked: {e}")))?
}
