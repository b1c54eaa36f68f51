//! The 128-bit "is this upload a copy?" measurements: radius queries at R ~ 20-30 by
//! the approximate multi-index (the chosen method) and the exact one (for comparison)
//! against the scan of the same codes, recall of copies planted at the shipped head's
//! measured distances, and the whole-catalogue dedup by the banded join.

use std::collections::HashMap;
use std::time::Instant;

use super::data::{self, Copies};
use super::report::{DedupRow, Run};
use super::{BenchOptions, time};
use crate::{
    ApproxMultiIndex, DuplicateGroup, MultiIndex, SearchError, duplicate_groups,
    duplicate_groups_banded, join_plan,
};

const BITS: u32 = 128;
const WORDS: usize = 2;
/// Untimed queries before each timed set.
const WARM_UP: usize = 16;

/// Query runs on `n` codes: the approximate index at each radius, then the exact one.
pub(super) fn queries(opts: &BenchOptions, n: usize) -> Result<Vec<Run>, SearchError> {
    let seed = opts.seed ^ (n as u64) ^ 0x128;
    let Copies { cat, .. } = data::copies(n, WORDS, seed);
    let uploads = data::uploads(&cat, WORDS, opts.queries, seed);
    let started = Instant::now();
    let index = MultiIndex::from_words(BITS, None, cat.ids, cat.codes)?;
    let build = started.elapsed().as_secs_f64();
    let approx = ApproxMultiIndex::from_index(index, opts.edge_recall);
    let index = approx.inner();
    let probes: Vec<Vec<u8>> = uploads.iter().map(|u| u.probe.clone()).collect();
    let scan_n = opts.scan_queries.min(probes.len());
    let mut runs = Vec::new();
    for &radius in &opts.radius_128 {
        // A few untimed queries first, for the scan and each probe alike: the first
        // touches of the tables would otherwise land in the first timed queries.
        for q in probes.iter().take(WARM_UP) {
            std::hint::black_box(index.within_scan(q, radius)?);
        }
        let scan = time(&probes[..scan_n], |q| index.within_scan(q, radius))?;
        let certified = approx.certified_for(radius);
        for (method, c) in [("approx", certified), ("exact", radius)] {
            for q in probes.iter().take(WARM_UP) {
                std::hint::black_box(index.within_certified(q, radius, c)?);
            }
            let mut found = vec![false; probes.len()];
            let mut at = 0;
            let stats = time(&probes, |q| {
                let hits = index.within_certified(q, radius, c)?;
                if let Some((row, _)) = uploads[at].copy_of {
                    found[at] = hits.iter().any(|h| h.id == data::id_of(row));
                }
                at += 1;
                Ok(hits)
            })?;
            // Checked against the scan: no hit beyond R or with a wrong distance, and
            // what the partial probe missed.
            let (mut false_positives, mut missed) = (0, 0);
            for q in &probes[..scan_n] {
                let exact = index.within_scan(q, radius)?;
                let got = index.within_certified(q, radius, c)?;
                false_positives += got.iter().filter(|h| !exact.contains(h)).count();
                missed += exact.iter().filter(|h| !got.contains(h)).count();
            }
            let planted: Vec<usize> = (0..probes.len())
                .filter(|&i| uploads[i].copy_of.is_some_and(|(_, d)| d <= radius))
                .collect();
            let planted_found = planted.iter().filter(|&&i| found[i]).count();
            runs.push(Run {
                bits: BITS,
                codes: n,
                radius,
                method: format!(
                    "{method} multi-index (certifies {c}{})",
                    if method == "approx" {
                        format!(", edge recall {}", opts.edge_recall)
                    } else {
                        String::new()
                    }
                ),
                certified: Some(c),
                layout: index.layout(),
                build_seconds: Some(build),
                bytes_per_code: Some(index.memory_bytes() as f64 / n.max(1) as f64),
                raw_bytes_per_code: f64::from(BITS / 8 + 8),
                query_p50_ms: Some(stats.p50_us / 1e3),
                query_p99_ms: Some(stats.p99_us / 1e3),
                query_mean_ms: Some(1e3 / stats.qps.max(1e-9)),
                scan_p50_ms: Some(scan.p50_us / 1e3),
                scan_p99_ms: Some(scan.p99_us / 1e3),
                speedup: Some(stats.qps / scan.qps.max(1e-9)),
                dedup_seconds: None,
                threads: None,
                planted: Some(planted.len()),
                planted_found: Some(planted_found),
                recall: Some(ratio(planted_found, planted.len())),
                model_recall: Some(model_recall(&approx, radius, c)),
                checked_queries: Some(scan_n),
                false_positives: Some(false_positives),
                missed_vs_scan: Some(missed),
                groups: None,
            });
        }
    }
    Ok(runs)
}

/// What the model expects of a probe certifying `certified`, over the copies within
/// `radius` at the measured distances.
fn model_recall(approx: &ApproxMultiIndex, radius: u32, certified: u32) -> f64 {
    let (mut weight, mut found) = (0.0, 0.0);
    for (d, &count) in data::COPY_DISTANCES_128.iter().enumerate() {
        let d = d as u32;
        if d <= radius {
            weight += f64::from(count);
            found += f64::from(count) * approx.inner().found_probability(certified, d);
        }
    }
    found / weight.max(1.0)
}

/// Whole-catalogue dedup of `n` codes at each radius by the banded join (`per_query`:
/// one approximate query per code instead, the rejected way, for comparison).
pub(super) fn dedup(
    opts: &BenchOptions,
    n: usize,
    per_query: bool,
) -> Result<Vec<Run>, SearchError> {
    let seed = opts.seed ^ (n as u64) ^ 0xD128;
    let Copies { cat, groups } = data::copies(n, WORDS, seed);
    let index = MultiIndex::from_words(BITS, None, cat.ids, cat.codes)?;
    let approx = ApproxMultiIndex::from_index(index, opts.edge_recall);
    let mut runs = Vec::new();
    for &radius in &opts.radius_128 {
        let started = Instant::now();
        let (found, method) = if per_query {
            let c = approx.certified_for(radius);
            (
                duplicate_groups(&approx, radius, &mut |_, _| {})?,
                format!("one approx query per code (certifies {c})"),
            )
        } else {
            let plan = join_plan(BITS, n, radius, radius)?;
            (
                duplicate_groups_banded(approx.inner(), radius, &mut |_, _| {})?,
                format!("banded join, exact (bands {plan})"),
            )
        };
        let secs = started.elapsed().as_secs_f64();
        let (planted, whole) = planted_whole(&groups, &found, radius);
        let row = DedupRow {
            n,
            radius,
            planted,
            planted_found: whole,
            groups: found.len(),
            secs,
            threads: rayon::current_num_threads(),
        };
        runs.push(Run::dedup(
            BITS,
            &row,
            method,
            None,
            approx.inner().layout(),
        ));
    }
    Ok(runs)
}

/// Planted groups (an original and its copies within `radius` of it, two or more) and
/// how many of them lie whole inside one found group.
fn planted_whole(
    groups: &[(u64, Vec<(u64, u32)>)],
    found: &[DuplicateGroup],
    radius: u32,
) -> (usize, usize) {
    let group_of: HashMap<u64, usize> = found
        .iter()
        .enumerate()
        .flat_map(|(g, group)| group.members.iter().map(move |&id| (id, g)))
        .collect();
    let mut planted = 0;
    let mut whole = 0;
    for (original, copies) in groups {
        let members: Vec<u64> = copies
            .iter()
            .filter(|(_, d)| *d <= radius)
            .map(|(id, _)| *id)
            .collect();
        if members.is_empty() {
            continue;
        }
        planted += 1;
        let g = group_of.get(original);
        whole += usize::from(g.is_some() && members.iter().all(|id| group_of.get(id) == g));
    }
    (planted, whole)
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn dedup_runs_of_128_bit_codes_are_dedup_runs_of_what_was_found() {
        let opts = BenchOptions {
            radius_128: vec![27],
            ..BenchOptions::default()
        };
        for per_query in [false, true] {
            let runs = dedup(&opts, 3_000, per_query).unwrap();
            assert_eq!(runs.len(), 1);
            let run = &runs[0];
            assert_eq!((run.bits, run.codes, run.radius), (128, 3_000, 27));
            assert_eq!(run.raw_bytes_per_code, 24.0);
            assert!(run.dedup_seconds.is_some() && run.threads.is_some());
            assert!(run.query_p50_ms.is_none() && run.speedup.is_none());
            assert_eq!(run.certified, None);
            let (planted, found) = (run.planted.unwrap(), run.planted_found.unwrap());
            assert!(planted > 0 && found <= planted, "{planted} {found}");
            assert_eq!(run.recall, Some(ratio(found, planted)));
            assert!(run.groups.unwrap() > 0);
            let method = if per_query {
                "one approx query"
            } else {
                "banded join"
            };
            assert!(run.method.starts_with(method), "{}", run.method);
        }
    }
}
