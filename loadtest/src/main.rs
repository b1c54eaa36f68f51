//! `imgfeat-loadtest`: pushes N image IDs through the fleet with the broker in the loop
//! (ingest -> RabbitMQ -> detector -> RabbitMQ -> extractor -> SQLite store, one
//! process per service) and reports images/s and publish -> stored-code latency, against
//! the embedded `index` throughput on the same images in the same run.
//!
//!     cargo build -p imgfeat-ingest -p imgfeat-detector -p imgfeat-extractor -p imgfeat-loadtest
//!     target/debug/imgfeat-loadtest --images 1000
//!
//! `imgfeat-loadtest serve` drives `imgfeat-serve` instead (see `serve.rs`).
//! `imgfeat-loadtest dedup` measures continuous dedup: the copy configuration's
//! code-stored -> duplicate-found latency of `imgfeat-search` over a store of N codes,
//! uploads coded by the fleet (see `dedup.rs`).
//!
//! A benchmark, never a test: it asserts no speed. It cleans up after itself: children
//! are stopped (SIGTERM, then SIGKILL), the run's queues deleted, its temp dir removed.

mod arrivals;
mod broker;
mod dedup;
mod fleet;
mod http;
mod queue_model;
mod report;
mod run_args;
mod serve;
mod stats;
mod stored_events;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use imgfeat_bench::procfs;
use imgfeat_bench::{Knobs, corpus};
use imgfeat_core::ImageId;
use imgfeat_core::ports::ResultStore;
use imgfeat_pipeline::PipelineSettings;
use imgfeat_store::SqliteStore;

use crate::fleet::{Fleet, FleetConfig};
use crate::report::{FleetResult, Report, finish, print};
use crate::run_args::{FleetRunArgs, RunArgs};
use crate::stored_events::StoredEvents;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "imgfeat load driver: the fleet through RabbitMQ vs the embedded index",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    mode: Option<Mode>,
    #[command(flatten)]
    fleet: Args,
}

#[derive(clap::Subcommand, Debug)]
enum Mode {
    /// Drive imgfeat-serve over HTTP instead: open-loop arrivals at fractions of its
    /// measured capacity, against a queueing model of an ideal server
    /// (`imgfeat-loadtest serve --help` lists its options).
    #[command(disable_help_flag = true)]
    Serve {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Continuous dedup of uploads: code-stored -> duplicate-found latency of
    /// imgfeat-search over N pre-loaded codes (`imgfeat-loadtest dedup --help`).
    #[command(disable_help_flag = true)]
    Dedup {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(clap::Args, Debug)]
struct Args {
    /// Image IDs pushed through the fleet (corpus photos, named {id}.jpg).
    #[arg(long, default_value_t = 1000)]
    images: usize,
    /// TOML with [pipeline.*] tables only: used by the embedded baseline and appended to
    /// the detector's and extractor's settings. IMGFEAT_* variables apply to both too.
    #[arg(long)]
    pipeline_config: Option<PathBuf>,
    /// IDs per second to publish (in small requests); 0 posts them all at once, which
    /// measures throughput (latency is then mostly queueing).
    #[arg(long, default_value_t = 0.0)]
    rate: f64,
    /// IDs sent through the fleet first, untimed (model warm-up, connections).
    #[arg(long, default_value_t = 16)]
    warmup: usize,
    /// Give up waiting for codes after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
    /// Skip the embedded baseline.
    #[arg(long)]
    no_baseline: bool,
    /// Run one detector that extracts too (`extract_here`) instead of a detector and an
    /// extractor joined by the extract queue.
    #[arg(long)]
    extract_here: bool,
    #[command(flatten)]
    run: RunArgs,
    #[command(flatten)]
    fleet_run: FleetRunArgs,
}

fn pipeline_settings(file: Option<&PathBuf>) -> anyhow::Result<(PipelineSettings, Option<String>)> {
    #[derive(serde::Deserialize, serde::Serialize, Default)]
    #[serde(default)]
    struct Root {
        pipeline: PipelineSettings,
    }
    let text = match file {
        Some(f) => Some(std::fs::read_to_string(f).with_context(|| format!("{}", f.display()))?),
        None => None,
    };
    let root: Root = imgfeat_app::load_settings(file.map(|p| p.as_path()))
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    root.pipeline
        .validate()
        .map_err(|e| anyhow::anyhow!("pipeline settings: {e}"))?;
    Ok((root.pipeline, text))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,imgfeat_loadtest=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = match Cli::parse() {
        Cli {
            mode: Some(Mode::Serve { args }),
            ..
        } => return serve::main(std::iter::once("serve".to_owned()).chain(args)).await,
        Cli {
            mode: Some(Mode::Dedup { args }),
            ..
        } => return dedup::main(std::iter::once("dedup".to_owned()).chain(args)).await,
        Cli { fleet, .. } => fleet,
    };
    if args.images == 0 {
        bail!("--images must be at least 1");
    }
    let load_start = procfs::loadavg();
    let (settings, pipeline_text) = pipeline_settings(args.pipeline_config.as_ref())?;
    let (_, code_version) = settings
        .versions()
        .map_err(|e| anyhow::anyhow!("model versions: {e}"))?;

    // The corpus: {id}.jpg for id 1..=N (the embedded index reads this folder).
    let dir = args
        .fleet_run
        .corpus
        .clone()
        .unwrap_or_else(|| corpus::default_dir(args.images, args.run.seed));
    let (n, seed) = (args.images, args.run.seed);
    let corpus = tokio::task::spawn_blocking(move || corpus::generate(&dir, n, seed)).await??;
    eprintln!(
        "corpus: {} photos in {} ({})",
        corpus.files.len(),
        corpus.dir.display(),
        if corpus.generated {
            "generated"
        } else {
            "reused"
        }
    );

    // The embedded baseline first, alone on the machine.
    let embedded = if args.no_baseline {
        None
    } else {
        eprintln!("embedded index baseline ...");
        Some(
            imgfeat_bench::e2e::run("embedded", Knobs::of(&settings), &settings, &corpus.dir)
                .await?,
        )
    };

    let work = tempfile::Builder::new()
        .prefix("imgfeat-loadtest-")
        .tempdir()?;
    let prefix = imgfeat_amqp::unique_prefix("loadtest");
    let knobs = Knobs::of(&settings);
    let result = run_fleet(
        &args,
        &corpus,
        &code_version,
        pipeline_text,
        &knobs,
        &prefix,
        work.path(),
    )
    .await;
    let cleanup = delete_queues(&args.fleet_run.amqp_url, &prefix).await;
    if args.fleet_run.keep {
        eprintln!("work dir kept: {}", work.keep().display());
    }
    let fleet = result?;
    if let Err(e) = cleanup {
        eprintln!("warning: deleting the queues of {prefix}: {e:#}");
    }

    let ratio = embedded
        .as_ref()
        .map(|e| fleet.images_per_second / e.images_per_second.max(1e-9));
    let report = Report {
        images: n,
        corpus: corpus.dir.display().to_string(),
        prefix,
        pipeline: knobs,
        rate: args.rate,
        fleet,
        embedded,
        ratio,
        load_start,
        load_end: procfs::loadavg(),
    };
    print(&report);
    args.run.write_json(&report)
}

async fn run_fleet(
    args: &Args,
    corpus: &corpus::Corpus,
    code_version: &imgfeat_core::ModelVersion,
    pipeline_text: Option<String>,
    knobs: &Knobs,
    prefix: &str,
    work: &std::path::Path,
) -> anyhow::Result<FleetResult> {
    // The fleet's image folder: the corpus under its IDs, plus warm-up IDs after them
    // (links to the first photos) so the warm-up never touches measured IDs.
    let images = work.join("images");
    std::fs::create_dir_all(&images)?;
    let n = corpus.files.len();
    let last_id = corpus.files.iter().map(|f| f.id).max().unwrap_or(0);
    let mut warmup_ids = Vec::new();
    for (i, f) in corpus.files.iter().enumerate() {
        let target = std::fs::canonicalize(corpus.dir.join(&f.name))?;
        std::os::unix::fs::symlink(&target, images.join(format!("{}.jpg", f.id)))?;
        if i < args.warmup {
            let id = last_id + 1 + i as u64;
            std::os::unix::fs::symlink(&target, images.join(format!("{id}.jpg")))?;
            warmup_ids.push(ImageId(id));
        }
    }
    let store_path = work.join("store.sqlite3");
    // Created (and migrated) before the services start, so all of them share one file.
    let store = {
        let p = store_path.clone();
        Arc::new(tokio::task::spawn_blocking(move || SqliteStore::open(&p)).await??)
    };

    let bin_dir = crate::fleet::bin_dir(args.run.bin_dir.as_ref())?;
    let cfg = FleetConfig {
        bin_dir,
        work_dir: work.to_path_buf(),
        amqp_url: args.fleet_run.amqp_url.clone(),
        prefix: prefix.to_string(),
        store: store_path,
        source_template: format!("{}/{{id}}.jpg", images.display()),
        worker_extra: pipeline_text,
        worker_env: fleet::knob_env(knobs),
        extract_here: args.extract_here,
    };
    eprintln!("starting the fleet (queue prefix {prefix}) ...");
    let mut fleet = Fleet::start(&cfg)?;
    fleet.wait_ready(Duration::from_secs(60)).await?;
    // Codes are timed by their code-stored events; the poll only tells when all are in
    // (and times the few whose event was missed). At 20 ms it queried every pending ID
    // 50 times a second and took ~9 % of a core from the fleet it measures.
    let poll = Duration::from_millis(200);
    let timeout = Duration::from_secs(args.timeout);

    if !warmup_ids.is_empty() {
        eprintln!("warm-up: {} IDs ...", warmup_ids.len());
        post_ids(&fleet.ingest_addr, &fleet.ingest_token, &warmup_ids).await?;
        let seen = wait_codes(&mut fleet, &store, code_version, &warmup_ids, poll, timeout).await?;
        if seen.len() < warmup_ids.len() {
            bail!("warm-up: only {} of {} coded", seen.len(), warmup_ids.len());
        }
    }

    let ids: Vec<ImageId> = corpus.files.iter().map(|f| ImageId(f.id)).collect();
    let announced = StoredEvents::follow(&args.fleet_run.amqp_url, prefix).await?;
    eprintln!("pushing {n} IDs through the fleet ...");
    let load_start = procfs::loadavg();
    let cpu_before: HashMap<String, f64> = fleet
        .usage()
        .into_iter()
        .map(|u| (u.name, u.cpu_seconds.unwrap_or(0.0)))
        .collect();
    let started = Instant::now();
    // Publish all at once, or paced (a request every 50 ms) while codes are polled.
    let addr = fleet.ingest_addr.clone();
    let token = fleet.ingest_token.clone();
    let rate = args.rate;
    let to_send = ids.clone();
    let publisher = tokio::spawn(async move {
        let mut times = HashMap::new();
        let mut sent = 0usize;
        while sent < to_send.len() {
            let due = if rate <= 0.0 {
                to_send.len()
            } else {
                ((started.elapsed().as_secs_f64() * rate) as usize + 1).min(to_send.len())
            };
            if due > sent {
                let now = Instant::now();
                post_ids(&addr, &token, &to_send[sent..due]).await?;
                times.extend(to_send[sent..due].iter().map(|&id| (id, now)));
                sent = due;
            } else {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        anyhow::Ok(times)
    });
    let mut seen = wait_codes(&mut fleet, &store, code_version, &ids, poll, timeout).await?;
    let published = publisher.await??;
    let announced = announced.finish(&ids).await?;
    // An announcement is the commit plus a broker hop; the poll, up to a period later.
    let mut timed_by_events = 0;
    for (id, at) in announced {
        if let Some(polled) = seen.get_mut(&id) {
            *polled = at.min(*polled);
            timed_by_events += 1;
        }
    }
    let mut result = finish(
        &mut fleet,
        started,
        &published,
        &seen,
        n,
        poll,
        load_start,
        &cpu_before,
    )?;
    result.timed_by_events = timed_by_events;
    Ok(result)
}

async fn post_ids(addr: &str, token: &str, ids: &[ImageId]) -> anyhow::Result<()> {
    for chunk in ids.chunks(5_000) {
        let body =
            serde_json::json!({ "ids": chunk.iter().map(|i| i.0).collect::<Vec<_>>() }).to_string();
        let (status, text) = http::request(
            addr,
            Some(token),
            "POST",
            "/v1/images",
            Some(&body),
            Duration::from_secs(60),
        )
        .await?;
        if !(200..300).contains(&status) {
            bail!("POST /v1/images: HTTP {status}: {text}");
        }
    }
    Ok(())
}

/// Polls the store until every ID has a code (or the timeout, or a service died);
/// returns when each was first seen.
async fn wait_codes(
    fleet: &mut Fleet,
    store: &Arc<SqliteStore>,
    version: &imgfeat_core::ModelVersion,
    ids: &[ImageId],
    poll: Duration,
    timeout: Duration,
) -> anyhow::Result<HashMap<ImageId, Instant>> {
    let started = Instant::now();
    let mut pending: Vec<ImageId> = ids.to_vec();
    let mut seen = HashMap::new();
    let mut last_progress = Instant::now();
    while !pending.is_empty() {
        let done = store.coded(&pending, version).await?;
        let now = Instant::now();
        if !done.is_empty() {
            last_progress = now;
        }
        for id in &done {
            seen.insert(*id, now);
        }
        pending.retain(|id| !done.contains(id));
        if pending.is_empty() {
            break;
        }
        if let Some(dead) = fleet.exited() {
            eprintln!("{dead} exited; {} IDs never coded", pending.len());
            break;
        }
        if started.elapsed() > timeout {
            eprintln!("timeout: {} IDs not coded after {timeout:?}", pending.len());
            break;
        }
        if last_progress.elapsed() > Duration::from_secs(120) {
            eprintln!(
                "no progress for 120 s; {} IDs not coded (failed?)",
                pending.len()
            );
            break;
        }
        tokio::time::sleep(poll).await;
    }
    Ok(seen)
}

async fn delete_queues(url: &str, prefix: &str) -> anyhow::Result<()> {
    let conn = broker::connect(url, prefix).await?;
    let channel = conn.channel().await?;
    conn.topology().delete(&channel).await?;
    // Last: a run that failed before following has no such queues to delete.
    conn.topology()
        .delete_follower(
            &channel,
            imgfeat_amqp::EventExchange::CodeStored,
            stored_events::FOLLOWER,
        )
        .await?;
    conn.close().await;
    Ok(())
}
