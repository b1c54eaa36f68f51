//! The benchmark's results and their Markdown rendering.

use std::fmt;
use std::time::Duration;

use super::BenchOptions;

#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct QueryStats {
    pub queries: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    /// Queries per second on one core.
    pub qps: f64,
}

impl QueryStats {
    pub(crate) fn from_samples(each: &mut [Duration], total: Duration) -> Self {
        each.sort_unstable();
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        Self {
            queries: each.len(),
            p50_us: us(super::percentile(each, 0.50)),
            p99_us: us(super::percentile(each, 0.99)),
            qps: each.len() as f64 / total.as_secs_f64().max(1e-9),
        }
    }
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct RadiusRow {
    pub radius: u32,
    pub mean_hits: f64,
    pub mih: QueryStats,
    pub scan: QueryStats,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchRow {
    pub bits: u32,
    pub n: usize,
    pub substrings: u32,
    /// Substring lengths, "inline" when the tables after the first hold their codes.
    pub layout: String,
    pub build_secs: f64,
    pub bytes_per_code: f64,
    pub raw_bytes_per_code: f64,
    pub knn: QueryStats,
    pub knn_scan: QueryStats,
    pub radius: Vec<RadiusRow>,
    /// Queries whose multi-index answer was compared with the scan's.
    pub checked_queries: usize,
    /// Answers that differed (must be 0: the method is exact).
    pub mismatches: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DedupRow {
    pub n: usize,
    pub radius: u32,
    pub planted: usize,
    pub planted_found: usize,
    pub groups: usize,
    pub secs: f64,
    pub threads: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct BenchReport {
    pub options: BenchOptions,
    pub clustered_share: f64,
    pub max_cluster: usize,
    pub query_copy_share: f64,
    pub query_max_flip: u32,
    pub rows: Vec<BenchRow>,
    pub dedup: Vec<DedupRow>,
}

fn ms(us: f64) -> String {
    format!("{:.3}", us / 1000.0)
}

fn line(
    f: &mut fmt::Formatter<'_>,
    what: &str,
    mih: &QueryStats,
    scan: &QueryStats,
) -> fmt::Result {
    writeln!(
        f,
        "| {what} | {} / {} | {:.0} | {} / {} | {:.1} | {:.0}x |",
        ms(mih.p50_us),
        ms(mih.p99_us),
        mih.qps,
        ms(scan.p50_us),
        ms(scan.p99_us),
        scan.qps,
        mih.qps / scan.qps.max(1e-9),
    )
}

impl fmt::Display for BenchRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "### {} x {}-bit codes: tables {}, build {:.1} s, {:.1} B/code ({:.2}x raw {} B), {} of {} answers differ from the scan",
            self.n,
            self.bits,
            self.layout,
            self.build_secs,
            self.bytes_per_code,
            self.bytes_per_code / self.raw_bytes_per_code,
            self.raw_bytes_per_code,
            self.mismatches,
            self.checked_queries * (1 + self.radius.len()),
        )?;
        writeln!(
            f,
            "| query | MIH p50 / p99 ms | MIH q/s | scan p50 / p99 ms | scan q/s | speed-up |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|")?;
        line(f, "k = 10", &self.knn, &self.knn_scan)?;
        for r in &self.radius {
            line(
                f,
                &format!("R = {} ({:.1} hits)", r.radius, r.mean_hits),
                &r.mih,
                &r.scan,
            )?;
        }
        Ok(())
    }
}

impl fmt::Display for DedupRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "dedup {} codes, R = {}: {:.1} s on {} threads, {} groups, {}/{} planted groups found whole",
            self.n,
            self.radius,
            self.secs,
            self.threads,
            self.groups,
            self.planted_found,
            self.planted
        )
    }
}

impl fmt::Display for BenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "Data: {:.0}% of codes in planted clusters of 2-{} copies (0-20 bits flipped from a seed), the rest uniform random. \
             Queries: {:.0}% stored codes with 0-{} bits flipped, the rest uniform random; one thread.\n",
            self.clustered_share * 100.0,
            self.max_cluster,
            self.query_copy_share * 100.0,
            self.query_max_flip
        )?;
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        for row in &self.dedup {
            write!(f, "{row}")?;
        }
        Ok(())
    }
}
