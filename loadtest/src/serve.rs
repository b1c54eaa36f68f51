//! `imgfeat-loadtest serve`: drives a real `imgfeat-serve` over HTTP with open-loop
//! Poisson arrivals at multiples of its measured capacity, from several clients, and
//! reports throughput, latency percentiles of the admitted requests, the 429 fraction,
//! the batch sizes the detector reached and the server's memory.
//!
//!     cargo build -p imgfeat-serve -p imgfeat-loadtest
//!     target/debug/imgfeat-loadtest serve --seconds 20
//!
//! A benchmark, never a test: it asserts nothing about speed.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;
use imgfeat_bench::procfs;
use serde::Serialize;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::arrivals::Rng;
use crate::fleet::binary;
use crate::queue_model::{self, BatchCost};

#[derive(Parser, Debug)]
#[command(about = "imgfeat-serve under open-loop Poisson load at multiples of its capacity")]
pub struct ServeArgs {
    /// Photos sent round-robin; default: the repository's fixtures/photos.
    #[arg(long)]
    photos: Option<PathBuf>,
    /// Seconds of load per level (and for the capacity measurement).
    #[arg(long, default_value_t = 20.0)]
    seconds: f64,
    /// Arrival rates as multiples of the measured capacity.
    #[arg(long, value_delimiter = ',', default_value = "0.5,0.9,1.2,2")]
    levels: Vec<f64>,
    /// HTTP clients (connection pools) the arrivals are spread over.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The server's serve.max_queued.
    #[arg(long, default_value_t = 16)]
    max_queued: usize,
    /// The server's batch limit for both stages (pipeline.{detector,extractor}.batch.max_batch).
    #[arg(long, default_value_t = 8)]
    max_batch: usize,
    #[command(flatten)]
    run: crate::run_args::RunArgs,
}

#[derive(Debug, Serialize)]
struct Level {
    level: f64,
    offered_per_s: f64,
    sent: usize,
    ok: usize,
    refused_429: usize,
    other_errors: usize,
    throughput_per_s: f64,
    p50_ms: f64,
    p95_ms: f64,
    p99_ms: f64,
    mean_detect_batch: f64,
    rss_mib: Option<f64>,
    /// The same load on an ideal server with this run's costs (`queue_model`).
    ideal_mean_ms: f64,
    ideal_p50_ms: f64,
    ideal_p99_ms: f64,
    ideal_refused_429: f64,
}

#[derive(Debug, Serialize)]
struct ServeReport {
    single_p50_ms: f64,
    capacity_per_s: f64,
    max_queued: usize,
    max_batch: usize,
    /// What admission promises an admitted image: the `max_queued` images ahead of it at
    /// capacity, plus one batch (`max_batch` images at capacity).
    bound_ms: f64,
    /// The batch costs fitted to the single latency and the capacity.
    ideal_cost: BatchCost,
    levels: Vec<Level>,
    load_start: Option<procfs::LoadAvg>,
    load_end: Option<procfs::LoadAvg>,
}

/// Arrivals simulated per level for the ideal server: enough for a steady p99.
const IDEAL_ARRIVALS: usize = 200_000;

struct Target {
    api: String,
    probes: String,
    token: String,
    child: Child,
    clients: Vec<reqwest::Client>,
    photos: Arc<Vec<Vec<u8>>>,
}

impl Target {
    /// One image; (status, seconds).
    async fn infer(&self, i: usize) -> (u16, f64) {
        infer(
            &self.clients[i % self.clients.len()],
            &self.api,
            &self.token,
            &self.photos[i % self.photos.len()],
        )
        .await
    }

    /// Detector batches so far: (count, images).
    async fn detect_batches(&self) -> (f64, f64) {
        let text = match self.clients[0]
            .get(format!("{}/metrics", self.probes))
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let sum = |name: &str| -> f64 {
            text.lines()
                .filter(|l| l.starts_with(name) && l.contains("stage=\"detect\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        (
            sum("imgfeat_serve_batch_size_count"),
            sum("imgfeat_serve_batch_size_sum"),
        )
    }
}

async fn infer(client: &reqwest::Client, api: &str, token: &str, photo: &[u8]) -> (u16, f64) {
    let started = Instant::now();
    let res = client
        .post(format!("{api}/v1/infer"))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
        .body(photo.to_vec())
        .send()
        .await;
    let status = match res {
        Ok(r) => {
            let s = r.status().as_u16();
            let _ = r.bytes().await;
            s
        }
        Err(_) => 0,
    };
    (status, started.elapsed().as_secs_f64())
}

/// NaN for no samples: a level where nothing was admitted prints as such.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    crate::stats::percentile(sorted, p).unwrap_or(f64::NAN)
}

pub async fn main(argv: impl Iterator<Item = String>) -> anyhow::Result<()> {
    let args = ServeArgs::parse_from(argv);
    if args.clients == 0 || args.seconds <= 0.0 || args.levels.is_empty() {
        bail!("--clients, --seconds and --levels must be positive");
    }
    let load_start = procfs::loadavg();
    let mut target = start(&args).await?;
    let report = measure(&args, &target, load_start).await;
    stop(&mut target.child).await;
    let report = report?;
    print(&report);
    args.run.write_json(&report)
}

async fn start(args: &ServeArgs) -> anyhow::Result<Target> {
    let dir = args
        .photos
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/photos"));
    let mut photos = Vec::new();
    for e in std::fs::read_dir(&dir).with_context(|| dir.display().to_string())? {
        photos.push(std::fs::read(e?.path())?);
    }
    if photos.is_empty() {
        bail!("no photos in {}", dir.display());
    }
    let bin_dir = crate::fleet::bin_dir(args.run.bin_dir.as_ref())?;
    let token = format!("loadtest-{}-{}", std::process::id(), args.run.seed);
    let token = format!("{token:0<24}");
    let mut child = Command::new(binary(&bin_dir, "imgfeat-serve")?)
        .env("IMGFEAT_HTTP__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_TELEMETRY__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_HTTP__TOKEN", &token)
        .env("IMGFEAT_HTTP__MAX_BODY_BYTES", (16 << 20).to_string())
        .env("IMGFEAT_HTTP__MAX_CONCURRENT_REQUESTS", "4096")
        .env("IMGFEAT_SERVE__MAX_QUEUED", args.max_queued.to_string())
        .env(
            "IMGFEAT_PIPELINE__DETECTOR__BATCH__MAX_BATCH",
            args.max_batch.to_string(),
        )
        .env(
            "IMGFEAT_PIPELINE__EXTRACTOR__BATCH__MAX_BATCH",
            args.max_batch.to_string(),
        )
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting imgfeat-serve")?;
    let mut lines = BufReader::new(child.stdout.take().context("stdout")?).lines();
    let mut addr = Vec::new();
    for prefix in ["listening on ", "metrics on "] {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .context("imgfeat-serve did not start")??
            .context("imgfeat-serve exited")?;
        let a = line
            .strip_prefix(prefix)
            .context("unexpected first lines")?;
        addr.push(format!("http://{a}"));
    }
    let clients = (0..args.clients)
        .map(|_| {
            reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
        })
        .collect::<Result<Vec<_>, _>>()?;
    let target = Target {
        api: addr[0].clone(),
        probes: addr[1].clone(),
        token,
        child,
        clients,
        photos: Arc::new(photos),
    };
    let ready = Instant::now();
    loop {
        let r = target.clients[0]
            .get(format!("{}/readyz", target.probes))
            .send()
            .await;
        if r.is_ok_and(|r| r.status() == 200) {
            break;
        }
        if ready.elapsed() > Duration::from_secs(120) {
            bail!("imgfeat-serve never became ready");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(target)
}

async fn measure(
    args: &ServeArgs,
    t: &Target,
    load_start: Option<procfs::LoadAvg>,
) -> anyhow::Result<ServeReport> {
    // Warm-up, then one request at a time: the latency nothing else competes with.
    for i in 0..8 {
        t.infer(i).await;
    }
    let mut single = Vec::new();
    for i in 0..t.photos.len() * 2 {
        let (status, s) = t.infer(i).await;
        if status != 200 {
            bail!("a single request got HTTP {status}");
        }
        single.push(s);
    }
    single.sort_by(f64::total_cmp);
    let single_p50 = percentile(&single, 0.5);

    // Capacity: closed loop, enough callers to fill the admission window.
    eprintln!("measuring capacity ...");
    let window = Duration::from_secs_f64(args.seconds);
    let started = Instant::now();
    let step = args.max_queued;
    let mut callers = tokio::task::JoinSet::new();
    for c in 0..args.max_queued {
        let (client, api, token, photos) = (
            t.clients[c % t.clients.len()].clone(),
            t.api.clone(),
            t.token.clone(),
            t.photos.clone(),
        );
        callers.spawn(async move {
            let mut ok = 0usize;
            let mut i = c;
            while started.elapsed() < window {
                if infer(&client, &api, &token, &photos[i % photos.len()])
                    .await
                    .0
                    == 200
                {
                    ok += 1;
                }
                i += step;
            }
            ok
        });
    }
    let mut ok = 0;
    while let Some(n) = callers.join_next().await {
        ok += n?;
    }
    let capacity = ok as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "capacity {capacity:.1} img/s, single p50 {:.1} ms",
        single_p50 * 1e3
    );

    let cost = BatchCost::fitted(single_p50, capacity, args.max_batch);
    let mut rng = Rng(args.run.seed);
    let mut levels = Vec::new();
    for &level in &args.levels {
        let rate = capacity * level;
        eprintln!(
            "level {level}x: {rate:.1} req/s for {:.0} s ...",
            args.seconds
        );
        let before = t.detect_batches().await;
        let started = tokio::time::Instant::now();
        let mut next = started;
        let mut sent = 0usize;
        let mut inflight = tokio::task::JoinSet::new();
        while next.duration_since(started) < window {
            tokio::time::sleep_until(next).await;
            let (client, api, token, photo) = (
                t.clients[sent % t.clients.len()].clone(),
                t.api.clone(),
                t.token.clone(),
                t.photos.clone(),
            );
            let i = sent;
            inflight
                .spawn(async move { infer(&client, &api, &token, &photo[i % photo.len()]).await });
            sent += 1;
            next += rng.gap(rate);
        }
        let mut admitted = Vec::new();
        let (mut refused, mut other) = (0, 0);
        while let Some(r) = inflight.join_next().await {
            match r? {
                (200, s) => admitted.push(s),
                (429, _) => refused += 1,
                _ => other += 1,
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        let after = t.detect_batches().await;
        admitted.sort_by(f64::total_cmp);
        let batches = after.0 - before.0;
        let ideal = queue_model::simulate(
            cost,
            args.max_batch,
            args.max_queued,
            rate,
            IDEAL_ARRIVALS,
            args.run.seed,
        );
        levels.push(Level {
            level,
            offered_per_s: rate,
            sent,
            ok: admitted.len(),
            refused_429: refused,
            other_errors: other,
            throughput_per_s: admitted.len() as f64 / elapsed,
            p50_ms: percentile(&admitted, 0.5) * 1e3,
            p95_ms: percentile(&admitted, 0.95) * 1e3,
            p99_ms: percentile(&admitted, 0.99) * 1e3,
            mean_detect_batch: if batches > 0.0 {
                (after.1 - before.1) / batches
            } else {
                0.0
            },
            rss_mib: t
                .child
                .id()
                .and_then(|pid| procfs::status_mib_of(pid, "VmRSS:")),
            ideal_mean_ms: ideal.mean * 1e3,
            ideal_p50_ms: ideal.p50 * 1e3,
            ideal_p99_ms: ideal.p99 * 1e3,
            ideal_refused_429: ideal.refused,
        });
    }
    Ok(ServeReport {
        single_p50_ms: single_p50 * 1e3,
        capacity_per_s: capacity,
        max_queued: args.max_queued,
        max_batch: args.max_batch,
        bound_ms: (args.max_queued + args.max_batch) as f64 / capacity * 1e3,
        ideal_cost: cost,
        levels,
        load_start,
        load_end: procfs::loadavg(),
    })
}

async fn stop(child: &mut Child) {
    if let Some(pid) = child.id() {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
    }
    if tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}

fn print(r: &ServeReport) {
    println!(
        "single request p50 {:.1} ms; capacity {:.1} img/s; admission bound ((max_queued {} + one batch of {}) / capacity) {:.0} ms",
        r.single_p50_ms, r.capacity_per_s, r.max_queued, r.max_batch, r.bound_ms
    );
    println!(
        "| load | offered/s | sent | ok/s | 429 | errors | p50 ms | p95 ms | p99 ms | p99 / single | p99 / bound | ideal p99 / single | ideal 429 | detect batch | RSS MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for l in &r.levels {
        println!(
            "| {:.1}x | {:.1} | {} | {:.1} | {:.1} % | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.1} % | {:.2} | {} |",
            l.level,
            l.offered_per_s,
            l.sent,
            l.throughput_per_s,
            100.0 * l.refused_429 as f64 / l.sent.max(1) as f64,
            l.other_errors,
            l.p50_ms,
            l.p95_ms,
            l.p99_ms,
            l.p99_ms / r.single_p50_ms,
            l.p99_ms / r.bound_ms,
            l.ideal_p99_ms / r.single_p50_ms,
            100.0 * l.ideal_refused_429,
            l.mean_detect_batch,
            l.rss_mib.map_or("?".into(), |m| format!("{m:.0}")),
        );
    }
    println!(
        "ideal: an M/D/1-like server with this run's costs (batch of n = {:.1} + n x {:.1} ms), the same Poisson load and admission, nothing else",
        r.ideal_cost.fixed * 1e3,
        r.ideal_cost.per_image * 1e3
    );
    if let (Some(a), Some(b)) = (&r.load_start, &r.load_end) {
        println!(
            "load average (1 min) {:.2} at start, {:.2} at end",
            a.one, b.one
        );
    }
}
