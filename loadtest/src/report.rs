//! What a load-test run measured, and how it is printed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use imgfeat_bench::Knobs;
use imgfeat_bench::procfs::{self, LoadAvg};
use imgfeat_core::ImageId;
use serde::Serialize;

use crate::fleet::{Fleet, ServiceUsage};
use crate::stats::percentile;

#[derive(Debug, Serialize)]
pub struct Report {
    pub images: usize,
    pub corpus: String,
    pub prefix: String,
    pub pipeline: Knobs,
    pub rate: f64,
    pub fleet: FleetResult,
    pub embedded: Option<imgfeat_bench::e2e::E2eReport>,
    /// fleet images/s / embedded images/s.
    pub ratio: Option<f64>,
    pub load_start: Option<LoadAvg>,
    pub load_end: Option<LoadAvg>,
}

#[derive(Debug, Serialize)]
pub struct FleetResult {
    pub coded: usize,
    pub missing: usize,
    /// From the first publish to the last code stored.
    pub seconds: f64,
    pub images_per_second: f64,
    pub latency_ms_p50: Option<f64>,
    pub latency_ms_p90: Option<f64>,
    pub latency_ms_p99: Option<f64>,
    pub latency_ms_max: Option<f64>,
    /// Polling period of the store: the latency resolution of IDs whose code-stored
    /// event did not come.
    pub poll_ms: u64,
    /// IDs timed by their code-stored event (the rest by the store poll).
    pub timed_by_events: usize,
    pub services: Vec<ServiceUsage>,
    pub load_start: Option<LoadAvg>,
    pub load_end: Option<LoadAvg>,
}

#[allow(clippy::too_many_arguments)]
pub fn finish(
    fleet: &mut Fleet,
    started: Instant,
    published: &HashMap<ImageId, Instant>,
    seen: &HashMap<ImageId, Instant>,
    n: usize,
    poll: Duration,
    load_start: Option<LoadAvg>,
    cpu_before: &HashMap<String, f64>,
) -> anyhow::Result<FleetResult> {
    let load_end = procfs::loadavg();
    let mut services = fleet.usage();
    for s in &mut services {
        if let (Some(c), Some(b)) = (s.cpu_seconds, cpu_before.get(&s.name)) {
            s.cpu_seconds = Some(c - b);
        }
    }
    fleet.stop(Duration::from_secs(20));
    let last = seen.values().max().copied().unwrap_or(started);
    let seconds = (last - started).as_secs_f64();
    let mut lat: Vec<f64> = seen
        .iter()
        .filter_map(|(id, t)| published.get(id).map(|p| t.saturating_duration_since(*p)))
        .map(|d| d.as_secs_f64() * 1000.0)
        .collect();
    lat.sort_by(f64::total_cmp);
    Ok(FleetResult {
        coded: seen.len(),
        missing: n - seen.len(),
        seconds,
        images_per_second: seen.len() as f64 / seconds.max(1e-9),
        latency_ms_p50: percentile(&lat, 0.50),
        latency_ms_p90: percentile(&lat, 0.90),
        latency_ms_p99: percentile(&lat, 0.99),
        latency_ms_max: lat.last().copied(),
        poll_ms: poll.as_millis() as u64,
        timed_by_events: 0,
        services,
        load_start,
        load_end,
    })
}

/// One line per service: its CPU seconds and peak RSS.
pub fn print_usage(services: &[ServiceUsage]) {
    for s in services {
        println!(
            "  {:<18} cpu {:>6.1} s, peak RSS {}",
            s.name,
            s.cpu_seconds.unwrap_or(0.0),
            s.peak_rss_mib
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "n/a".into())
        );
    }
}

/// A load average as the reports print it (1, 5, 15 min), or `n/a`.
pub fn load_text(l: &Option<LoadAvg>) -> String {
    l.map(|l| format!("{:.2} {:.2} {:.2}", l.one, l.five, l.fifteen))
        .unwrap_or_else(|| "n/a".into())
}

/// Milliseconds as the reports print them, or `n/a`.
pub fn ms_text(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.0} ms"))
        .unwrap_or_else(|| "n/a".into())
}

pub fn print(r: &Report) {
    let (load, ms) = (load_text, ms_text);
    let f = &r.fleet;
    println!(
        "imgfeat load test: {} IDs, queue prefix {}",
        r.images, r.prefix
    );
    println!("  pipeline  {}", r.pipeline);
    println!(
        "  publish   {}",
        if r.rate > 0.0 {
            format!("{:.1} IDs/s", r.rate)
        } else {
            "all at once (one request)".into()
        }
    );
    println!(
        "  fleet     {:.1} img/s ({} coded, {} missing, {:.1} s from the first publish to the last code)",
        f.images_per_second, f.coded, f.missing, f.seconds
    );
    println!(
        "  latency   publish -> stored code: p50 {}, p90 {}, p99 {}, max {} ({} of {} timed by their code-stored event, the rest by the store polled every {} ms)",
        ms(f.latency_ms_p50),
        ms(f.latency_ms_p90),
        ms(f.latency_ms_p99),
        ms(f.latency_ms_max),
        f.timed_by_events,
        f.coded,
        f.poll_ms
    );
    print_usage(&f.services);
    println!(
        "  load      {} -> {} during the fleet run",
        load(&f.load_start),
        load(&f.load_end)
    );
    if let Some(e) = &r.embedded {
        println!(
            "  embedded  {:.1} img/s (index of the same {} photos, {:.1} s, peak RSS {}; load {} -> {})",
            e.images_per_second,
            e.processed,
            e.seconds,
            e.peak_rss_mib
                .map(|m| format!("{m:.0} MiB"))
                .unwrap_or_else(|| "n/a".into()),
            load(&e.load_start),
            load(&e.load_end)
        );
    }
    if let Some(x) = r.ratio {
        println!("  ratio     fleet / embedded = {x:.2}x");
    }
    println!(
        "  load      {} at start, {} at end",
        load(&r.load_start),
        load(&r.load_end)
    );
}
