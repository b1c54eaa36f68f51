//! The dedup run's report: what was loaded and uploaded, the latencies, the machine.

use imgfeat_bench::Knobs;
use imgfeat_bench::procfs::LoadAvg;
use serde::Serialize;

use super::timing::Latency;
use crate::fleet::ServiceUsage;

#[derive(Debug, Serialize)]
pub struct DedupReport {
    pub code_version: String,
    pub radius: u32,
    pub codes_preloaded: usize,
    pub planted: usize,
    pub preload_seconds: f64,
    /// From the search's start to its /readyz (the load of the whole store).
    pub search_load_seconds: f64,
    pub rate: f64,
    pub seconds: f64,
    pub uploads: usize,
    pub coded: usize,
    /// Uploads whose code-stored event the driver saw.
    pub announced: usize,
    /// Code-stored event -> duplicate-found event.
    pub duplicates: Latency,
    /// Code-stored event -> handled by the search, for uploads with no duplicate.
    pub no_duplicate: Latency,
    /// Both together: every upload, whichever came.
    pub all: Latency,
    /// Code-stored event -> handled by the search, every upload (a check of the
    /// counter's timing against the duplicate-found events).
    pub handled: Latency,
    /// Announced uploads neither announced as duplicates nor seen handled.
    pub untimed: usize,
    /// The search's counters at the end: pairs found, codes held.
    pub pairs_found: u64,
    pub index_codes: u64,
    pub poll_ms: u64,
    pub pipeline: Knobs,
    pub services: Vec<ServiceUsage>,
    pub machine: Option<String>,
    pub cpus: usize,
    pub load_start: Option<LoadAvg>,
    pub load_end: Option<LoadAvg>,
}

pub fn print(r: &DedupReport) {
    let (load, ms) = (crate::report::load_text, crate::report::ms_text);
    let lat = |l: &Latency| {
        format!(
            "p50 {}, p90 {}, p99 {}, max {} ({} uploads, {} within 1 s)",
            ms(l.ms_p50),
            ms(l.ms_p90),
            ms(l.ms_p99),
            ms(l.ms_max),
            l.count,
            l.within_1s
        )
    };
    println!(
        "imgfeat dedup load test: {} random codes + {} planted copies, {} at radius {}",
        r.codes_preloaded, r.planted, r.code_version, r.radius
    );
    println!("  pipeline  {}", r.pipeline);
    println!(
        "  catalogue pre-loaded in {:.1} s; imgfeat-search loaded it in {:.1} s",
        r.preload_seconds, r.search_load_seconds
    );
    println!(
        "  uploads   {} at {:.1}/s (Poisson) for {:.0} s: {} coded, {} announced, {} untimed",
        r.uploads, r.rate, r.seconds, r.coded, r.announced, r.untimed
    );
    println!(
        "  duplicate code-stored -> duplicate-found: {}",
        lat(&r.duplicates)
    );
    println!(
        "  no dup    code-stored -> handled (search's events counter scraped every {} ms): {}",
        r.poll_ms,
        lat(&r.no_duplicate)
    );
    println!("  all       {}", lat(&r.all));
    println!(
        "  check     code-stored -> handled, every upload: {}",
        lat(&r.handled)
    );
    println!(
        "  search    {} near-duplicate pairs announced; {} codes held at the end",
        r.pairs_found, r.index_codes
    );
    crate::report::print_usage(&r.services);
    println!(
        "  machine   {} ({} CPUs)",
        r.machine.as_deref().unwrap_or("n/a"),
        r.cpus
    );
    println!(
        "  load      {} at the first upload, {} at the end",
        load(&r.load_start),
        load(&r.load_end)
    );
}
