//! `cargo run -p imgfeat-search --example search_bench -- [small]`: the one-run search
//! benchmark (defaults: 1 M, 10 M, 100 M x 64 bits, 10 M x 256 bits, dedup at 1 M and 10 M).

use imgfeat_search::{BenchOptions, run_search_bench};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut opts = BenchOptions::default();
    for arg in std::env::args().skip(1) {
        match arg.split_once('=') {
            Some(("sizes64", v)) => opts.sizes_64 = list(v)?,
            Some(("sizes256", v)) => opts.sizes_256 = list(v)?,
            Some(("dedup", v)) => opts.dedup_sizes = list(v)?,
            Some(("queries", v)) => opts.queries = v.parse()?,
            Some(("scan_queries", v)) => opts.scan_queries = v.parse()?,
            _ => {
                return Err(format!(
                    "unknown argument {arg} (sizes64=, sizes256=, dedup=, queries=, scan_queries=)"
                )
                .into());
            }
        }
    }
    let report = run_search_bench(&opts, &mut |line| println!("{line}"))?;
    println!("\n{report}");
    Ok(())
}

fn list(v: &str) -> Result<Vec<usize>, std::num::ParseIntError> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(str::parse)
        .collect()
}
