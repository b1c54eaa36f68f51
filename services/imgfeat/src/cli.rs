use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "imgfeat",
    version,
    about = "Main-object crops and binary codes for similar-image search"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// Settings file (TOML); `IMGFEAT_*` environment variables override it.
    #[arg(long, global = true, env = "IMGFEAT_CONFIG")]
    pub config: Option<PathBuf>,
    /// The embedded store file (overrides store.path).
    #[arg(long, global = true)]
    pub store: Option<PathBuf>,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Index every image below DIR: detect, crop, embed, code, store.
    Index {
        dir: PathBuf,
        /// Process images already done under this model version again.
        #[arg(long)]
        force: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
        /// Serve /metrics, /healthz and /readyz here during the run (e.g. 127.0.0.1:9100).
        #[arg(long)]
        metrics_addr: Option<String>,
    },
    /// Show what is stored for an image, by ID or by the path it was indexed from.
    Show { image: String },
    /// The stored images whose codes are nearest to IMAGE's: an ID, a file indexed
    /// before, or any image file (decoded, detected and coded now, stored only with
    /// --store-it). Searches the configured store, SQLite or CQL.
    Similar {
        image: String,
        /// How many neighbours.
        #[arg(long, default_value_t = 10)]
        k: usize,
        /// Every code within this Hamming distance instead (at most --k of them).
        #[arg(long)]
        radius: Option<u32>,
        /// Store the new image's results too (embedded store).
        #[arg(long)]
        store_it: bool,
    },
    /// Every group of near-duplicates among the stored codes (pairs within --radius,
    /// grouped transitively), with the image to keep in each: the largest.
    Dedup {
        /// Hamming radius of a duplicate; default `search.dedup_radius`, else 1/8 of the
        /// code length (measured with `imgfeat eval`: docs/quality.md).
        #[arg(long)]
        radius: Option<u32>,
        /// One CSV row per member (group, image_id, representative, group_size).
        #[arg(long, conflicts_with = "json")]
        csv: bool,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    #[cfg(feature = "bench")]
    /// One-run benchmark on a generated corpus: decode+resize, each model at batch 1
    /// and 8, the model-only ceiling, and `index` end to end (a benchmark, not a test).
    Bench {
        /// Photos in the generated corpus (seeded transforms of fixtures/photos).
        #[arg(long, default_value_t = 500)]
        images: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Corpus folder (reused when it matches); default under target/imgfeat-bench.
        #[arg(long)]
        corpus: Option<PathBuf>,
        /// Extra end-to-end configurations, e.g. `old:intra=2,decode=2`.
        #[arg(long = "e2e", value_name = "SPEC")]
        variants: Vec<String>,
        /// End-to-end runs of each configuration.
        #[arg(long, default_value_t = 1)]
        repeats: usize,
        /// Seconds spent on each model-only measurement.
        #[arg(long, default_value_t = 3.0)]
        model_seconds: f64,
        /// Only the end-to-end phase (for its peak memory alone).
        #[arg(long)]
        e2e_only: bool,
    },
    #[cfg(feature = "eval")]
    /// Near-duplicate benchmark: seeded transformed copies of the photos in DIR, coded
    /// by each model version; recall@1/@10, mAP, the copy and distinct-pair distance
    /// histograms and the radius that keeps 99 % of copies, overall and per transform.
    Eval {
        /// One or more folders of photos (their copies go to a scratch folder).
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
        /// Transformed copies per photo.
        #[arg(long, default_value_t = 4)]
        copies: usize,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// At most this many photos.
        #[arg(long)]
        limit: Option<usize>,
        /// A model version to evaluate, as `DETECTOR[,BACKBONE[,HEAD]]` manifest names
        /// (repeat for several); default the configured one.
        #[arg(long = "models", value_name = "SPEC")]
        models: Vec<String>,
        /// Also draw the two histograms of each version into this PNG.
        #[arg(long, value_name = "FILE.png")]
        plot: Option<PathBuf>,
        /// Only this part of the photos (split by a hash of each file name, see
        /// --held-out): `held-out` compares heads on photos they were not trained on.
        #[arg(long, value_enum, default_value_t = PartArg::All)]
        part: PartArg,
        /// Percent of photos held out from training (the same rule as `head train`).
        #[arg(long = "held-out", default_value_t = imgfeat_eval::split::DEFAULT_HELD_OUT_PERCENT, value_parser = clap::value_parser!(u8).range(0..=100))]
        held_out: u8,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    #[cfg(feature = "train")]
    /// Learned hash heads.
    #[command(subcommand)]
    Head(HeadCommand),
    /// Schema and moving results between stores.
    #[command(subcommand)]
    Store(StoreCommand),
    /// Inspect and re-drive the dead-letter queues.
    #[command(subcommand)]
    #[cfg(feature = "amqp")]
    Dlq(DlqCommand),
    /// The settings of every imgfeat binary.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// What a catalogue needs: worker cores, broker traffic, store bytes (with and
    /// without a crop cap) and search memory, from figures measured on the configured
    /// store (a sample of its images) and a search index built here.
    Plan(PlanArgs),
}

/// `imgfeat plan`'s figures.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Images in the catalogue, backfilled once.
    #[arg(long, default_value_t = 0)]
    pub images: u64,
    /// New uploads a day (their peak hour counted at 3x the mean).
    #[arg(long, default_value_t = 0)]
    pub per_day: u64,
    /// Days the catalogue's backfill may take.
    #[arg(long, default_value_t = 30.0)]
    pub backfill_days: f64,
    /// Images per second one worker core sustains through the fleet with the default
    /// (fp32) models: 20 on the 2-core Xeon of docs/capacity.md (CPU seconds of
    /// the detector and extractor per image); measure yours with `imgfeat-loadtest`.
    #[arg(long, default_value_t = 20.0)]
    pub per_core: f64,
    /// Search shards the codes are split over.
    #[arg(long, default_value_t = 1)]
    pub shards: u64,
    /// Longest side of stored crops to estimate the store with.
    #[arg(long, default_value_t = 512)]
    pub crop_max_side: u32,
    /// Stored images to measure.
    #[arg(long, default_value_t = 500)]
    pub sample: usize,
    /// The detectors run the extractor too (`worker.extract_here`).
    #[arg(long)]
    pub extract_here: bool,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print every setting of a binary with its default, as commented TOML: a settings
    /// file to start from. docs/configuration.md says what each one does.
    Defaults {
        #[arg(long, value_enum, default_value_t = ServiceArg::Imgfeat)]
        service: ServiceArg,
    },
}

/// A binary whose settings `config defaults` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceArg {
    /// This command line tool.
    Imgfeat,
    Ingest,
    Detector,
    Extractor,
    Serve,
    Search,
}

#[cfg(feature = "eval")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartArg {
    All,
    Training,
    HeldOut,
}

#[cfg(feature = "train")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MethodArg {
    /// PCA, then the rotation that minimises the quantization loss.
    Itq,
    /// A projection that keeps photos apart and their augmented views together, then
    /// the same rotation, bits balanced at their medians.
    Deepbit,
}

#[cfg(feature = "train")]
#[derive(Debug, Subcommand)]
pub enum HeadCommand {
    /// Learn a hash head from the photos in DIR (its training part: see --held-out):
    /// embeddings of each photo's main-object crop and of --views augmented views of
    /// it, then ITQ or the DeepBit-style projection. Writes --out (the manifest) and its
    /// weight files beside it: a new model version to name in pipeline.models.hash_head.
    Train {
        dir: PathBuf,
        /// Code length: 64, 128 or 256 (any multiple of 8 up to the embedding size).
        #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u16).range(8..=1280))]
        bits: u16,
        #[arg(long, value_enum, default_value_t = MethodArg::Deepbit)]
        method: MethodArg,
        /// Seeds the views and the rotation: the same seed writes the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Augmented views per photo (imgfeat eval's transforms).
        #[arg(long, default_value_t = 4)]
        views: usize,
        /// The manifest to write, e.g. models/deepbit64_effnet_lite0.toml.
        #[arg(long)]
        out: PathBuf,
        /// Percent of the photos held out (never trained on), chosen by a hash of each
        /// file name; 0 trains on all.
        #[arg(long = "held-out", default_value_t = imgfeat_eval::split::DEFAULT_HELD_OUT_PERCENT, value_parser = clap::value_parser!(u8).range(0..=100))]
        held_out: u8,
        /// At most this many training photos.
        #[arg(long)]
        limit: Option<usize>,
        /// Keep the embeddings here between runs (they do not depend on the method or
        /// the code length).
        #[arg(long, default_value = "imgfeat-data/train-cache")]
        cache: PathBuf,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Create or migrate the configured store's schema (idempotent).
    Migrate,
    /// Copy every result from one store to another, resumably.
    ///
    /// A store is a SQLite file path, or `cql:HOST:PORT[,HOST:PORT...]` for
    /// Cassandra/ScyllaDB (keyspace and the rest from the store.cql settings).
    Copy {
        #[arg(long)]
        from: String,
        #[arg(long)]
        to: String,
        /// Progress file; rerunning with the same file resumes where it stopped.
        #[arg(long, default_value = "imgfeat-data/copy-checkpoint.json")]
        checkpoint: PathBuf,
        /// Images per page (and per checkpoint).
        #[arg(long, default_value_t = 500)]
        page: usize,
    },
}

#[cfg(feature = "amqp")]
#[derive(Debug, Subcommand)]
pub enum DlqCommand {
    /// Show dead letters with their reasons, without removing them.
    List {
        /// detect, detect.backfill, extract or uploads.
        #[arg(long, default_value = "detect")]
        queue: String,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Move dead letters back to their work queue (attempts reset).
    Requeue {
        #[arg(long, default_value = "detect")]
        queue: String,
        /// At most this many; all when unset.
        #[arg(long)]
        limit: Option<u64>,
    },
}
