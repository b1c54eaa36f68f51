//! Command-line options shared by the example, the `cargo bench` target and (later)
//! `imgfeat bench`, which can flatten [`BenchArgs`] into its own command.

use std::path::PathBuf;
use std::time::Duration;

use imgfeat_pipeline::PipelineSettings;

use crate::{BenchError, BenchOptions, Variant};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Photos in the generated corpus.
    #[arg(long, default_value_t = 500)]
    pub images: usize,
    /// Seed of the corpus transforms.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Corpus folder (reused when its manifest matches); default under target/.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    /// Settings file (TOML, as for the services); IMGFEAT_* variables apply on top.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Extra end-to-end run, `[NAME:]key=value,...` over the configured pipeline
    /// (keys: decode, queued, intra, det_intra, ext_intra, spin, batch, det_batch,
    /// ext_batch, wait, inflight, ...). Repeatable.
    #[arg(long = "e2e", value_name = "SPEC")]
    pub variants: Vec<String>,
    /// Runs of each end-to-end configuration, interleaved.
    #[arg(long, default_value_t = 1)]
    pub repeats: usize,
    /// Seconds per model-only measurement.
    #[arg(long, default_value_t = 3.0)]
    pub model_seconds: f64,
    /// Only the pipeline's own ceiling (and the variants'), no other configurations.
    #[arg(long)]
    pub no_context: bool,
    /// Only the end-to-end runs.
    #[arg(long)]
    pub e2e_only: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    pub bench: bool,
}

impl BenchArgs {
    /// Options with the pipeline settings loaded like the services load theirs.
    pub fn options(&self) -> Result<BenchOptions, BenchError> {
        #[derive(serde::Deserialize, serde::Serialize, Default)]
        #[serde(default)]
        struct Root {
            pipeline: PipelineSettings,
        }
        let root: Root = imgfeat_app::load_settings(self.config.as_deref())
            .map_err(|e| BenchError::Options(e.to_string()))?;
        let variants = self
            .variants
            .iter()
            .map(|s| s.parse::<Variant>())
            .collect::<Result<Vec<_>, _>>()?;
        Ok(BenchOptions {
            images: self.images,
            seed: self.seed,
            corpus_dir: self.corpus.clone(),
            pipeline: root.pipeline,
            variants,
            repeats: self.repeats,
            model_budget: Duration::from_secs_f64(self.model_seconds.max(0.1)),
            model_tensors: 64,
            context_ceilings: !self.no_context,
            e2e_only: self.e2e_only,
        })
    }
}
