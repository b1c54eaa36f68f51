//! `cargo run -p imgfeat-search --example search_bench -- [options]`: the one-run search
//! benchmark (defaults: 1 M, 10 M, 100 M x 64 bits, 10 M x 256 bits, dedup at 1 M and
//! 10 M; 128-bit copy queries and dedup at R = 27 on 1 M and 10 M).
//!
//! Options: `sizes64=`, `sizes256=`, `dedup=` (64-bit dedup sizes), `sizes128=`,
//! `radius128=`, `dedup128=` (banded join), `dedup128q=` (one query per code, for
//! comparison), `edge=` (the approximate index's recall at R), `queries=`,
//! `scan_queries=`, and `json=FILE` for a summary `{"runs": [...]}` with one object per
//! measurement. An empty list (`sizes64=`) skips those runs.

use imgfeat_search::{BenchOptions, run_search_bench};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = BenchOptions::default();
    let mut json = None;
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("sizes64", v)) => opts.sizes_64 = list(v)?,
            Some(("sizes256", v)) => opts.sizes_256 = list(v)?,
            Some(("dedup", v)) => opts.dedup_sizes = list(v)?,
            Some(("sizes128", v)) => opts.sizes_128 = list(v)?,
            Some(("radius128", v)) => opts.radius_128 = list(v)?,
            Some(("dedup128", v)) => opts.dedup_128 = list(v)?,
            Some(("dedup128q", v)) => opts.dedup_128_per_query = list(v)?,
            Some(("edge", v)) => opts.edge_recall = v.parse()?,
            Some(("queries", v)) => opts.queries = v.parse()?,
            Some(("scan_queries", v)) => opts.scan_queries = v.parse()?,
            Some(("json", v)) => json = Some(std::path::PathBuf::from(v)),
            _ => {
                return Err(format!(
                    "unknown argument {arg} (sizes64=, sizes256=, dedup=, sizes128=, radius128=, \
                     dedup128=, dedup128q=, edge=, queries=, scan_queries=, json=FILE)"
                )
                .into());
            }
        }
    }
    let report = run_search_bench(&opts, &mut |line| println!("{line}"))?;
    println!("\n{report}");
    if let Some(path) = json {
        std::fs::write(&path, report.runs_json())?;
        println!("summary written to {}", path.display());
    }
    Ok(())
}

fn list<T: std::str::FromStr>(v: &str) -> Result<Vec<T>, T::Err> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}
