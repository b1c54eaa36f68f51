//! `imgfeat-loadtest dedup`: continuous dedup of uploads (issue 29). Pre-loads N random
//! 128-bit codes of the copy version (the whole-image detector manifest with the
//! DeepBit-style 128-bit head, docs/concepts.md) into the SQLite store through its bulk
//! write (`put_codes`, one transaction per page), codes the 13 fixture photos through
//! the fleet as the catalogue's originals and plants near copies of their codes, starts
//! `imgfeat-search` (`search.dedup_radius = 27`, following the code-stored events),
//! then uploads corpus photos (seeded transforms of the fixtures) through ingest at
//! `--rate` Poisson arrivals for `--seconds`: the real fleet codes them and announces
//! them, and the search checks each against the codes it holds.
//!
//!     cargo build -p imgfeat-ingest -p imgfeat-detector -p imgfeat-extractor -p imgfeat-search -p imgfeat-loadtest
//!     target/debug/imgfeat-loadtest dedup --codes 1000000 --rate 12 --seconds 60
//!
//! Latency, per upload, from its code-stored event reaching this driver to:
//! - its duplicate-found event reaching this driver, when the search found one;
//! - otherwise the search having handled the event: the search's own
//!   `imgfeat_search_events_total` (inserted, other_shard, other_version), scraped every
//!   `--poll-ms`. One shard handles its queue one event at a time, in the order of the
//!   fanout, which is the order the driver's own follower of the same fanout saw: the
//!   k-th event this driver saw is handled once the counter reaches k. Its time is that
//!   of the first scrape that shows it, so up to a poll period late.
//!
//! A benchmark, never a test: it asserts no speed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use imgfeat_amqp::EventExchange;
use imgfeat_bench::procfs;
use imgfeat_bench::{Knobs, corpus};
use imgfeat_core::message::DuplicateFound;
use imgfeat_core::ports::ResultStore;
use imgfeat_core::{ImageId, ModelVersion};
use imgfeat_store::SqliteStore;

use crate::arrivals::Rng;
use crate::fleet::{self, Fleet, FleetConfig, Service, binary, free_port};
use crate::stored_events::{self, StoredEvents};
use imgfeat_testkit::codes;
use imgfeat_testkit::fleet::ServiceProcess;

mod report;
mod timing;

use report::{DedupReport, print};
use timing::{Latency, Timed, handled_events, metric, time_uploads};

/// The copy configuration (docs/concepts.md, "Main object or whole image").
const DETECTOR: &str = "ssd_mobilenetv2_oidv4_24cls_whole_image.toml";
const HASH_HEAD: &str = "deepbit128_whole_effnet_lite0.toml";
const BITS: u32 = 128;

/// ID ranges: uploads are the corpus (1..), the rest far above it.
const ORIGINALS: u64 = 1_000_000_000;
const PRELOADED: u64 = 2_000_000_000;
const PLANTED: u64 = 3_000_000_000;

/// The driver's follower of the duplicate-found fanout.
const DUPLICATES_FOLLOWER: &str = "loadtest-dedup";

#[derive(Parser, Debug)]
#[command(
    about = "continuous dedup: code-stored -> duplicate-found latency of imgfeat-search over N codes"
)]
pub struct DedupArgs {
    /// Random 128-bit codes pre-loaded into the store before the search starts.
    #[arg(long, default_value_t = 1_000_000)]
    codes: usize,
    /// Near copies planted per original (the 13 fixture photos' codes), at 1..=radius
    /// bits from it.
    #[arg(long, default_value_t = 8)]
    plant: usize,
    /// Uploads per second (Poisson arrivals), each one image ID posted to ingest.
    #[arg(long, default_value_t = 12.0)]
    rate: f64,
    /// Seconds of uploads.
    #[arg(long, default_value_t = 60.0)]
    seconds: f64,
    /// search.dedup_radius.
    #[arg(long, default_value_t = 27)]
    radius: u32,
    /// Period of the scrape of the search's handled-events counter (the resolution of
    /// the latency of an upload with no duplicate).
    #[arg(long, default_value_t = 10)]
    poll_ms: u64,
    #[command(flatten)]
    run: crate::run_args::RunArgs,
    #[command(flatten)]
    fleet_run: crate::run_args::FleetRunArgs,
}

/// The search's `/metrics` text.
async fn metrics_text(probes: &str) -> anyhow::Result<String> {
    let (_, text) = crate::http::request(
        probes,
        None,
        "GET",
        "/metrics",
        None,
        Duration::from_secs(2),
    )
    .await?;
    Ok(text)
}

pub async fn main(argv: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = DedupArgs::parse_from(argv);
    if args.rate <= 0.0 || args.seconds <= 0.0 || args.radius == 0 {
        bail!("--rate, --seconds and --radius must be positive");
    }
    let work = tempfile::Builder::new()
        .prefix("imgfeat-loadtest-dedup-")
        .tempdir()?;
    let prefix = imgfeat_amqp::unique_prefix("loadtest-dedup");
    let models = format!("[pipeline.models]\ndetector = {DETECTOR:?}\nhash_head = {HASH_HEAD:?}\n");
    let models_file = work.path().join("models.toml");
    std::fs::write(&models_file, &models)?;
    let (settings, _) = crate::pipeline_settings(Some(&models_file))?;
    let (_, version) = settings
        .versions()
        .map_err(|e| anyhow::anyhow!("model versions: {e}"))?;
    let result = run(&args, &settings, &version, &models, &prefix, work.path()).await;
    let cleanup = delete_queues(&args.fleet_run.amqp_url, &prefix, &version).await;
    if args.fleet_run.keep {
        eprintln!("work dir kept: {}", work.keep().display());
    }
    let report = result?;
    if let Err(e) = cleanup {
        eprintln!("warning: deleting the queues of {prefix}: {e:#}");
    }
    print(&report);
    args.run.write_json(&report)
}

async fn run(
    args: &DedupArgs,
    settings: &imgfeat_pipeline::PipelineSettings,
    version: &ModelVersion,
    models: &str,
    prefix: &str,
    work: &Path,
) -> anyhow::Result<DedupReport> {
    // The arrivals first: they say how many photos to upload.
    let mut rng = Rng(args.run.seed);
    let mut due = Vec::new();
    let mut t = rng.gap_secs(args.rate);
    while t < args.seconds {
        due.push(t);
        t += rng.gap_secs(args.rate);
    }
    if due.is_empty() {
        bail!("no arrival within --seconds at --rate");
    }
    let n = due.len();
    let dir = args
        .fleet_run
        .corpus
        .clone()
        .unwrap_or_else(|| corpus::default_dir(n, args.run.seed));
    let seed = args.run.seed;
    let corpus = tokio::task::spawn_blocking(move || corpus::generate(&dir, n, seed)).await??;
    eprintln!(
        "corpus: {} photos in {}",
        corpus.files.len(),
        corpus.dir.display()
    );

    // The fleet's image folder: the uploads under their corpus IDs, the fixture photos
    // (the catalogue's originals) from ORIGINALS on.
    let images = work.join("images");
    std::fs::create_dir_all(&images)?;
    for f in &corpus.files {
        let target = std::fs::canonicalize(corpus.dir.join(&f.name))?;
        std::os::unix::fs::symlink(&target, images.join(format!("{}.jpg", f.id)))?;
    }
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(corpus::fixture_photos_dir())?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    fixtures.sort();
    let mut originals = Vec::new();
    for (i, path) in fixtures.iter().enumerate() {
        let id = ORIGINALS + i as u64;
        std::os::unix::fs::symlink(
            std::fs::canonicalize(path)?,
            images.join(format!("{id}.jpg")),
        )?;
        originals.push(ImageId(id));
    }

    // The catalogue: N random codes of the copy version, through the bulk write.
    let store_path = work.join("store.sqlite3");
    let store = {
        let p = store_path.clone();
        Arc::new(tokio::task::spawn_blocking(move || SqliteStore::open(&p)).await??)
    };
    eprintln!("pre-loading {} random {BITS}-bit codes ...", args.codes);
    let started = Instant::now();
    let mut codes_rng = codes::Rng(args.run.seed ^ 0x5eed_c0de);
    let mut next = 0usize;
    while next < args.codes {
        let page: Vec<(u64, codes::Code128)> = (next..(next + 50_000).min(args.codes))
            .map(|i| (PRELOADED + i as u64, codes_rng.code128()))
            .collect();
        next += page.len();
        store
            .put_codes(&codes::code_records(version, &page))
            .await?;
    }
    let preload_seconds = started.elapsed().as_secs_f64();
    eprintln!("  {preload_seconds:.1} s");

    let bin_dir = crate::fleet::bin_dir(args.run.bin_dir.as_ref())?;
    let search_bin = binary(&bin_dir, "imgfeat-search")?;
    let knobs = Knobs::of(settings);
    let cfg = FleetConfig {
        bin_dir,
        work_dir: work.to_path_buf(),
        amqp_url: args.fleet_run.amqp_url.clone(),
        prefix: prefix.to_string(),
        store: store_path.clone(),
        source_template: format!("{}/{{id}}.jpg", images.display()),
        worker_extra: Some(models.to_string()),
        worker_env: fleet::knob_env(&knobs),
        extract_here: false,
    };
    eprintln!("starting the fleet (queue prefix {prefix}) ...");
    let mut fleet = Fleet::start(&cfg)?;
    fleet.wait_ready(Duration::from_secs(60)).await?;
    let poll = Duration::from_millis(200);
    let timeout = Duration::from_secs(600);

    // The originals through the fleet (its warm-up too), then near copies of their codes.
    eprintln!("coding the {} originals ...", originals.len());
    crate::post_ids(&fleet.ingest_addr, &fleet.ingest_token, &originals).await?;
    let seen = crate::wait_codes(&mut fleet, &store, version, &originals, poll, timeout).await?;
    if seen.len() < originals.len() {
        bail!("only {} of {} originals coded", seen.len(), originals.len());
    }
    let mut planted = Vec::new();
    let mut copies_rng = codes::Rng(args.run.seed ^ 0xc0_1e5);
    for id in &originals {
        let code = store
            .code(*id, version)
            .await?
            .context("an original's code")?
            .code;
        let code: codes::Code128 = code
            .as_bytes()
            .try_into()
            .context("the copy version's codes are 128 bits")?;
        for _ in 0..args.plant {
            let d = 1 + (copies_rng.next() % u64::from(args.radius)) as u32;
            let id = PLANTED + planted.len() as u64;
            planted.push((id, copies_rng.copy_at(&code, d)));
        }
    }
    store
        .put_codes(&codes::code_records(version, &planted))
        .await?;

    // The search, last: it loads everything above, then follows.
    let api = format!("127.0.0.1:{}", free_port()?);
    let probes = format!("127.0.0.1:{}", free_port()?);
    let token = format!(
        "loadtest-dedup-{}-{:0>16}",
        std::process::id(),
        args.run.seed
    );
    let toml = format!(
        "[http]\nlisten = {api:?}\ntoken = {token:?}\n[telemetry]\nlisten = {probes:?}\n[store]\npath = {:?}\n[amqp]\nurl = {:?}\nprefix = {prefix:?}\n[search]\ndedup_radius = {}\ninfer_max_queued = 0\n{models}",
        store_path.display().to_string(),
        args.fleet_run.amqp_url,
        args.radius,
    );
    let file = work.join("imgfeat-search.toml");
    std::fs::write(&file, toml)?;
    eprintln!(
        "starting imgfeat-search over {} codes ...",
        args.codes + originals.len() + planted.len()
    );
    let search_started = Instant::now();
    let process = ServiceProcess::spawn(
        "imgfeat-search",
        &search_bin,
        &file,
        [],
        &work.join("imgfeat-search.log"),
    )?;
    fleet.services.push(Service {
        process,
        health: Some(probes.clone()),
    });
    loop {
        if let Some(dead) = fleet.exited() {
            bail!("{dead} exited while the search loaded");
        }
        let ready = crate::http::request(
            &probes,
            None,
            "GET",
            "/readyz",
            None,
            Duration::from_secs(2),
        )
        .await;
        if matches!(ready, Ok((200, _))) {
            break;
        }
        if search_started.elapsed() > timeout {
            bail!("imgfeat-search not ready after {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let search_load_seconds = search_started.elapsed().as_secs_f64();
    eprintln!("  ready in {search_load_seconds:.1} s");

    // Both followers bound before the first upload; the counter's baseline.
    let stored = StoredEvents::follow(&args.fleet_run.amqp_url, prefix).await?;
    let found = StoredEvents::follow_events(
        &args.fleet_run.amqp_url,
        prefix,
        EventExchange::DuplicateFound,
        DUPLICATES_FOLLOWER,
        |e: &DuplicateFound| e.image_id,
    )
    .await?;
    let scrape =
        |probes: String| async move { metrics_text(&probes).await.map(|t| handled_events(&t)) };
    let baseline = scrape(probes.clone()).await?;
    let samples: Arc<Mutex<Vec<(Instant, u64)>>> = Arc::default();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let sampler = tokio::spawn({
        let samples = samples.clone();
        let probes = probes.clone();
        let every = Duration::from_millis(args.poll_ms.max(1));
        async move {
            let mut last = 0;
            loop {
                if let Ok(count) = scrape(probes.clone()).await {
                    let count = count.saturating_sub(baseline);
                    if count != last {
                        last = count;
                        if let Ok(mut s) = samples.lock() {
                            s.push((Instant::now(), count));
                        }
                    }
                }
                tokio::select! {
                    _ = stop_rx.changed() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        }
    });

    let ids: Vec<ImageId> = corpus.files.iter().map(|f| ImageId(f.id)).collect();
    eprintln!(
        "uploading {n} photos at {:.1}/s for {:.0} s ...",
        args.rate, args.seconds
    );
    let load_start = procfs::loadavg();
    let cpu_before: HashMap<String, f64> = fleet
        .usage()
        .into_iter()
        .map(|u| (u.name, u.cpu_seconds.unwrap_or(0.0)))
        .collect();
    let t0 = Instant::now();
    for (id, at) in ids.iter().zip(&due) {
        tokio::time::sleep_until(tokio::time::Instant::from_std(
            t0 + Duration::from_secs_f64(*at),
        ))
        .await;
        crate::post_ids(
            &fleet.ingest_addr,
            &fleet.ingest_token,
            std::slice::from_ref(id),
        )
        .await?;
    }
    let coded = crate::wait_codes(&mut fleet, &store, version, &ids, poll, timeout).await?;
    let stored = stored.finish(&ids).await?;
    // Then until the search has handled every announced upload (or a minute).
    let waited = Instant::now();
    while samples
        .lock()
        .map(|s| s.last().map_or(0, |l| l.1) < stored.len() as u64)
        .unwrap_or(false)
        && waited.elapsed() < Duration::from_secs(60)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let load_end = procfs::loadavg();
    let mut services = fleet.usage();
    for s in &mut services {
        if let (Some(c), Some(b)) = (s.cpu_seconds, cpu_before.get(&s.name)) {
            s.cpu_seconds = Some(c - b);
        }
    }
    let _ = stop_tx.send(true);
    let _ = sampler.await;
    let end = metrics_text(&probes).await.unwrap_or_default();
    let pairs_found = metric(&end, "imgfeat_search_duplicates_found_total");
    let index_codes = metric(&end, "imgfeat_search_index_codes");
    let found = found.finish(&ids).await?;
    fleet.stop(Duration::from_secs(20));

    let secs = |at: Instant| at.saturating_duration_since(t0).as_secs_f64();
    let mut order: Vec<(u64, f64)> = stored.iter().map(|(id, at)| (id.0, secs(*at))).collect();
    order.sort_by(|a, b| a.1.total_cmp(&b.1));
    let found: HashMap<u64, f64> = found.iter().map(|(id, at)| (id.0, secs(*at))).collect();
    let handled: Vec<(f64, u64)> = samples
        .lock()
        .map_err(|_| anyhow::anyhow!("samples poisoned"))?
        .iter()
        .map(|(at, c)| (secs(*at), *c))
        .collect();
    let timed = time_uploads(&order, &found, &handled);
    let ms = |f: fn(&Timed) -> Option<f64>| {
        Latency::of(timed.iter().filter_map(f).map(|s| s * 1000.0).collect())
    };
    Ok(DedupReport {
        code_version: version.to_string(),
        radius: args.radius,
        codes_preloaded: args.codes,
        planted: planted.len(),
        preload_seconds,
        search_load_seconds,
        rate: args.rate,
        seconds: args.seconds,
        uploads: n,
        coded: coded.len(),
        announced: order.len(),
        duplicates: ms(|t| t.found),
        no_duplicate: ms(|t| t.found.is_none().then_some(t.handled).flatten()),
        all: ms(Timed::latency),
        handled: ms(|t| t.handled),
        untimed: timed.iter().filter(|t| t.latency().is_none()).count(),
        pairs_found,
        index_codes,
        poll_ms: args.poll_ms,
        pipeline: knobs,
        services,
        machine: procfs::cpu_model(),
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_start,
        load_end,
    })
}

async fn delete_queues(url: &str, prefix: &str, version: &ModelVersion) -> anyhow::Result<()> {
    let conn = crate::broker::connect(url, prefix).await?;
    let channel = conn.channel().await?;
    conn.topology().delete(&channel).await?;
    // Each may be missing when the run failed early: every one is tried.
    let mut failed = Vec::new();
    for (exchange, name) in [
        (
            EventExchange::CodeStored,
            stored_events::FOLLOWER.to_string(),
        ),
        (
            EventExchange::DuplicateFound,
            DUPLICATES_FOLLOWER.to_string(),
        ),
        // The search's follower (services/search/src/follow.rs, one shard).
        (
            EventExchange::CodeStored,
            format!("search.{version}.0-of-1"),
        ),
    ] {
        let channel = conn.channel().await?;
        if let Err(e) = conn
            .topology()
            .delete_follower(&channel, exchange, &name)
            .await
        {
            failed.push(format!("{name}: {e}"));
        }
    }
    conn.close().await;
    if !failed.is_empty() {
        bail!("{}", failed.join("; "));
    }
    Ok(())
}
