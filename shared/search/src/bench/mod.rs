//! One run of the search benchmark: build, memory, k-NN and radius queries of the
//! multi-index against a linear scan of the same codes, and dedup timing with a check
//! that every planted group is found. A library function so `imgfeat bench search` can
//! wrap it; `cargo run -p imgfeat-search --example search_bench` runs it alone.

mod copies;
mod data;
mod report;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{HammingIndex, MultiIndex, SearchError, duplicate_groups};

pub use report::{BenchReport, BenchRow, DedupRow, QueryStats, RadiusRow, Run};

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchOptions {
    /// Index sizes for 64-bit codes.
    pub sizes_64: Vec<usize>,
    /// Index sizes for 256-bit codes.
    pub sizes_256: Vec<usize>,
    /// Queries timed against the multi-index, per size.
    pub queries: usize,
    /// Of those, how many are also run by the linear scan (it is slow at 100 M).
    pub scan_queries: usize,
    pub k: usize,
    pub radii: Vec<u32>,
    /// Sizes for the `duplicate_groups` timing (64-bit codes).
    pub dedup_sizes: Vec<usize>,
    pub dedup_radius: u32,
    /// Index sizes for the 128-bit copy queries (approximate and exact multi-index).
    pub sizes_128: Vec<usize>,
    /// Radii of the 128-bit runs (queries and dedup).
    pub radius_128: Vec<u32>,
    /// Sizes for the 128-bit whole-catalogue dedup (the banded join).
    pub dedup_128: Vec<usize>,
    /// Sizes for the 128-bit dedup by one approximate query per code (for comparison).
    pub dedup_128_per_query: Vec<usize>,
    /// The approximate index's recall for a code exactly R bits away.
    pub edge_recall: f64,
    pub seed: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            sizes_64: vec![1_000_000, 10_000_000, 100_000_000],
            sizes_256: vec![10_000_000],
            queries: 1000,
            scan_queries: 50,
            k: 10,
            radii: vec![4, 8, 12, 16],
            dedup_sizes: vec![1_000_000, 10_000_000],
            dedup_radius: 8,
            sizes_128: vec![1_000_000, 10_000_000],
            radius_128: vec![27],
            dedup_128: vec![1_000_000, 10_000_000],
            dedup_128_per_query: Vec::new(),
            edge_recall: crate::DEFAULT_EDGE_RECALL,
            seed: 42,
        }
    }
}

/// Runs every configured measurement; `log` receives one line per finished phase.
pub fn run_search_bench(
    opts: &BenchOptions,
    log: &mut dyn FnMut(&str),
) -> Result<BenchReport, SearchError> {
    let mut rows = Vec::new();
    let sizes = opts.sizes_64.iter().map(|&n| (64, n));
    for (bits, n) in sizes.chain(opts.sizes_256.iter().map(|&n| (256, n))) {
        let row = bench_size(opts, bits, n)?;
        log(&row.to_string());
        rows.push(row);
    }
    let mut dedup = Vec::new();
    for &n in &opts.dedup_sizes {
        let row = bench_dedup(opts, n)?;
        log(&row.to_string());
        dedup.push(row);
    }
    let mut copy_runs = Vec::new();
    for &n in &opts.sizes_128 {
        for run in copies::queries(opts, n)? {
            log(&run.to_string());
            copy_runs.push(run);
        }
    }
    for (&n, per_query) in opts
        .dedup_128
        .iter()
        .map(|n| (n, false))
        .chain(opts.dedup_128_per_query.iter().map(|n| (n, true)))
    {
        for run in copies::dedup(opts, n, per_query)? {
            log(&run.to_string());
            copy_runs.push(run);
        }
    }
    Ok(BenchReport {
        options: opts.clone(),
        clustered_share: data::CLUSTERED,
        max_cluster: data::MAX_CLUSTER,
        query_copy_share: data::QUERY_COPIES,
        query_max_flip: data::QUERY_MAX_FLIP,
        rows,
        dedup,
        copies: copy_runs,
    })
}

fn bench_size(opts: &BenchOptions, bits: u32, n: usize) -> Result<BenchRow, SearchError> {
    let words = bits as usize / 64;
    let seed = opts.seed ^ (n as u64) ^ u64::from(bits);
    let cat = data::catalogue(n, words, 20, seed);
    let queries = data::queries(&cat, words, opts.queries, seed);
    let started = Instant::now();
    let index = MultiIndex::from_words(bits, None, cat.ids, cat.codes)?;
    let build = started.elapsed();
    let scan_n = opts.scan_queries.min(queries.len());
    let scan_queries = &queries[..scan_n];

    let mut mismatches = 0;
    let knn = time(&queries, |q| index.knn(q, opts.k))?;
    let knn_scan = time(scan_queries, |q| index.knn_scan(q, opts.k))?;
    for q in scan_queries {
        mismatches += usize::from(index.knn(q, opts.k)? != index.knn_scan(q, opts.k)?);
    }
    let mut radius = Vec::new();
    for &r in &opts.radii {
        let mut hits = 0usize;
        let mih = time(&queries, |q| {
            let h = index.within(q, r)?;
            hits += h.len();
            Ok(h)
        })?;
        let scan = time(scan_queries, |q| index.within_scan(q, r))?;
        for q in scan_queries {
            mismatches += usize::from(index.within(q, r)? != index.within_scan(q, r)?);
        }
        radius.push(RadiusRow {
            radius: r,
            mean_hits: hits as f64 / queries.len().max(1) as f64,
            mih,
            scan,
        });
    }
    Ok(BenchRow {
        bits,
        n,
        substrings: index.substrings(),
        layout: index.layout(),
        build_secs: build.as_secs_f64(),
        bytes_per_code: index.memory_bytes() as f64 / n.max(1) as f64,
        raw_bytes_per_code: (bits / 8 + 8) as f64,
        knn,
        knn_scan,
        radius,
        checked_queries: scan_n,
        mismatches,
    })
}

fn bench_dedup(opts: &BenchOptions, n: usize) -> Result<DedupRow, SearchError> {
    // Copies flip at most radius / 2 bits of their seed, so every two members of a
    // planted cluster are within the radius of each other.
    let cat = data::catalogue(n, 1, opts.dedup_radius / 2, opts.seed ^ 0xD3D0 ^ n as u64);
    let clusters = cat.clusters;
    let index = MultiIndex::from_words(64, None, cat.ids, cat.codes)?;
    let started = Instant::now();
    let groups = duplicate_groups(&index, opts.dedup_radius, &mut |_, _| {})?;
    let secs = started.elapsed().as_secs_f64();
    let group_of: HashMap<u64, usize> = groups
        .iter()
        .enumerate()
        .flat_map(|(g, group)| group.members.iter().map(move |&id| (id, g)))
        .collect();
    let found = clusters
        .iter()
        .filter(|members| {
            let g = group_of.get(&members[0]);
            g.is_some() && members.iter().all(|id| group_of.get(id) == g)
        })
        .count();
    Ok(DedupRow {
        n,
        radius: opts.dedup_radius,
        planted: clusters.len(),
        planted_found: found,
        groups: groups.len(),
        secs,
        threads: rayon::current_num_threads(),
    })
}

/// Times each query on this thread alone.
fn time<T>(
    queries: &[Vec<u8>],
    mut run: impl FnMut(&[u8]) -> Result<T, SearchError>,
) -> Result<QueryStats, SearchError> {
    let mut each = Vec::with_capacity(queries.len());
    let started = Instant::now();
    for q in queries {
        let t = Instant::now();
        std::hint::black_box(run(q)?);
        each.push(t.elapsed());
    }
    let total = started.elapsed();
    Ok(QueryStats::from_samples(&mut each, total))
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
