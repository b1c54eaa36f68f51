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

/// One measurement in the benchmark's JSON summary (`{"runs": [...]}`): a radius query
/// or a dedup, at one size and radius. Fields that do not apply are `null`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Run {
    pub bits: u32,
    pub codes: usize,
    pub radius: u32,
    pub method: String,
    /// The radius the probe certifies (the radius itself when exact).
    pub certified: Option<u32>,
    pub layout: String,
    pub build_seconds: Option<f64>,
    pub bytes_per_code: Option<f64>,
    /// Code and id.
    pub raw_bytes_per_code: f64,
    pub query_p50_ms: Option<f64>,
    pub query_p99_ms: Option<f64>,
    pub query_mean_ms: Option<f64>,
    pub scan_p50_ms: Option<f64>,
    pub scan_p99_ms: Option<f64>,
    /// Queries per second against the scan's.
    pub speedup: Option<f64>,
    pub dedup_seconds: Option<f64>,
    pub threads: Option<usize>,
    /// Query runs: copy probes within the radius of their original, and how many found
    /// it. Dedup runs: planted groups (an original and its copies within the radius),
    /// and how many were found whole.
    pub planted: Option<usize>,
    pub planted_found: Option<usize>,
    pub recall: Option<f64>,
    /// What the uniform-flip model expects `recall` to be.
    pub model_recall: Option<f64>,
    /// Queries also answered by the scan: hits not in the scan's answer (must be 0),
    /// and scan hits the probe missed.
    pub checked_queries: Option<usize>,
    pub false_positives: Option<usize>,
    pub missed_vs_scan: Option<usize>,
    pub groups: Option<usize>,
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
    /// The 128-bit copy-detection measurements.
    pub copies: Vec<Run>,
}

impl BenchReport {
    /// Every measurement as a [`Run`]: the 64/256-bit radius rows and dedups too.
    pub fn runs(&self) -> Vec<Run> {
        let mut runs = Vec::new();
        for row in &self.rows {
            for r in &row.radius {
                runs.push(Run {
                    bits: row.bits,
                    codes: row.n,
                    radius: r.radius,
                    method: "exact multi-index".to_string(),
                    certified: Some(r.radius),
                    layout: row.layout.clone(),
                    build_seconds: Some(row.build_secs),
                    bytes_per_code: Some(row.bytes_per_code),
                    raw_bytes_per_code: row.raw_bytes_per_code,
                    query_p50_ms: Some(r.mih.p50_us / 1e3),
                    query_p99_ms: Some(r.mih.p99_us / 1e3),
                    query_mean_ms: Some(1e3 / r.mih.qps.max(1e-9)),
                    scan_p50_ms: Some(r.scan.p50_us / 1e3),
                    scan_p99_ms: Some(r.scan.p99_us / 1e3),
                    speedup: Some(r.mih.qps / r.scan.qps.max(1e-9)),
                    dedup_seconds: None,
                    threads: None,
                    planted: None,
                    planted_found: None,
                    recall: None,
                    model_recall: None,
                    checked_queries: Some(row.checked_queries),
                    false_positives: None,
                    missed_vs_scan: None,
                    groups: None,
                });
            }
        }
        for d in &self.dedup {
            runs.push(Run::dedup(
                64,
                d,
                "one exact query per code".to_string(),
                Some(d.radius),
                String::new(),
            ));
        }
        runs.extend(self.copies.iter().cloned());
        runs
    }
}

impl Run {
    /// A whole-catalogue dedup of `row.n` codes of `bits` bits at `row.radius` by
    /// `method` (certifying `certified`, `None` when that says nothing: a join): its time,
    /// threads, groups and planted groups found whole; the query fields `null`.
    pub fn dedup(
        bits: u32,
        row: &DedupRow,
        method: String,
        certified: Option<u32>,
        layout: String,
    ) -> Self {
        Self {
            bits,
            codes: row.n,
            radius: row.radius,
            method,
            certified,
            layout,
            build_seconds: None,
            bytes_per_code: None,
            raw_bytes_per_code: f64::from(bits / 8 + 8),
            query_p50_ms: None,
            query_p99_ms: None,
            query_mean_ms: None,
            scan_p50_ms: None,
            scan_p99_ms: None,
            speedup: None,
            dedup_seconds: Some(row.secs),
            threads: Some(row.threads),
            planted: Some(row.planted),
            planted_found: Some(row.planted_found),
            recall: Some(if row.planted == 0 {
                1.0
            } else {
                row.planted_found as f64 / row.planted as f64
            }),
            model_recall: None,
            checked_queries: None,
            false_positives: None,
            missed_vs_scan: None,
            groups: Some(row.groups),
        }
    }

    /// The run as one JSON object (written by hand: the crate has no JSON dependency).
    pub fn to_json(&self) -> String {
        fn num<T: fmt::Display>(v: Option<T>) -> String {
            v.map_or("null".to_string(), |v| v.to_string())
        }
        fn text(s: &str) -> String {
            let mut out = String::from('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        let fields = [
            ("bits", self.bits.to_string()),
            ("codes", self.codes.to_string()),
            ("radius", self.radius.to_string()),
            ("method", text(&self.method)),
            ("certified", num(self.certified)),
            ("layout", text(&self.layout)),
            ("build_seconds", num(self.build_seconds)),
            ("bytes_per_code", num(self.bytes_per_code)),
            ("raw_bytes_per_code", self.raw_bytes_per_code.to_string()),
            ("query_p50_ms", num(self.query_p50_ms)),
            ("query_p99_ms", num(self.query_p99_ms)),
            ("query_mean_ms", num(self.query_mean_ms)),
            ("scan_p50_ms", num(self.scan_p50_ms)),
            ("scan_p99_ms", num(self.scan_p99_ms)),
            ("speedup", num(self.speedup)),
            ("dedup_seconds", num(self.dedup_seconds)),
            ("threads", num(self.threads)),
            ("planted", num(self.planted)),
            ("planted_found", num(self.planted_found)),
            ("recall", num(self.recall)),
            ("model_recall", num(self.model_recall)),
            ("checked_queries", num(self.checked_queries)),
            ("false_positives", num(self.false_positives)),
            ("missed_vs_scan", num(self.missed_vs_scan)),
            ("groups", num(self.groups)),
        ];
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| format!("\"{k}\": {v}"))
            .collect();
        format!("{{{}}}", body.join(", "))
    }
}

impl BenchReport {
    /// The JSON summary: `{"runs": [...]}`, one object per measurement (see [`Run`]).
    pub fn runs_json(&self) -> String {
        let runs: Vec<String> = self
            .runs()
            .iter()
            .map(|r| format!("    {}", r.to_json()))
            .collect();
        format!("{{\"runs\": [\n{}\n]}}\n", runs.join(",\n"))
    }
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.3}"))
}

impl fmt::Display for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(secs) = self.dedup_seconds {
            return writeln!(
                f,
                "dedup {} x {}-bit codes, R = {}, {}: {:.1} s on {} threads, {} groups, {}/{} planted groups found whole",
                self.codes,
                self.bits,
                self.radius,
                self.method,
                secs,
                self.threads.unwrap_or(0),
                self.groups.unwrap_or(0),
                self.planted_found.unwrap_or(0),
                self.planted.unwrap_or(0),
            );
        }
        writeln!(
            f,
            "| {} x {} | R = {} | {} | {} | {:.1} ({:.2}x raw) | {} / {} | {} / {} | {:.1}x | {}/{} = {:.4} (model {:.4}) | {} / {} |",
            self.codes,
            self.bits,
            self.radius,
            self.method,
            self.layout,
            self.bytes_per_code.unwrap_or(0.0),
            self.bytes_per_code.unwrap_or(0.0) / self.raw_bytes_per_code,
            opt_ms(self.query_p50_ms),
            opt_ms(self.query_p99_ms),
            opt_ms(self.scan_p50_ms),
            opt_ms(self.scan_p99_ms),
            self.speedup.unwrap_or(0.0),
            self.planted_found.unwrap_or(0),
            self.planted.unwrap_or(0),
            self.recall.unwrap_or(0.0),
            self.model_recall.unwrap_or(0.0),
            self.false_positives.unwrap_or(0),
            self.missed_vs_scan.unwrap_or(0),
        )
    }
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
        if !self.rows.is_empty() || !self.dedup.is_empty() {
            writeln!(
                f,
                "Data: {:.0}% of codes in planted clusters of 2-{} copies (0-20 bits flipped from a seed), the rest uniform random. \
                 Queries: {:.0}% stored codes with 0-{} bits flipped, the rest uniform random; one thread.\n",
                self.clustered_share * 100.0,
                self.max_cluster,
                self.query_copy_share * 100.0,
                self.query_max_flip
            )?;
        }
        for row in &self.rows {
            writeln!(f, "{row}")?;
        }
        for row in &self.dedup {
            write!(f, "{row}")?;
        }
        if !self.copies.is_empty() {
            writeln!(
                f,
                "128-bit copies: {:.0}% of the codes in planted groups (an original and 1-{} copies at the measured copy \
                 distances), the rest uniform random. Queries: half new copies of stored codes at those distances, half \
                 random; one thread. Recall: copies within R whose original was found. False positives / missed: on the \
                 scan-checked queries.\n",
                self.clustered_share * 100.0,
                self.max_cluster - 1,
            )?;
            writeln!(
                f,
                "| codes | radius | method | tables | B/code | query p50 / p99 ms | scan p50 / p99 ms | speed-up | planted found = recall | false pos. / missed |"
            )?;
            writeln!(f, "|---|---|---|---|---|---|---|---|---|---|")?;
            for run in self.copies.iter().filter(|r| r.dedup_seconds.is_none()) {
                write!(f, "{run}")?;
            }
            for run in self.copies.iter().filter(|r| r.dedup_seconds.is_some()) {
                write!(f, "{run}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn row(planted: usize, planted_found: usize) -> DedupRow {
        DedupRow {
            n: 5_000,
            radius: 9,
            planted,
            planted_found,
            groups: 42,
            secs: 1.5,
            threads: 3,
        }
    }

    #[test]
    fn a_dedup_run_has_the_dedup_fields_and_null_query_fields() {
        let run = Run::dedup(128, &row(4, 3), "banded join".into(), None, "L".into());
        let json = run.to_json();
        for field in [
            "\"bits\": 128",
            "\"codes\": 5000",
            "\"radius\": 9",
            "\"method\": \"banded join\"",
            "\"certified\": null",
            "\"layout\": \"L\"",
            "\"raw_bytes_per_code\": 24",
            "\"dedup_seconds\": 1.5",
            "\"threads\": 3",
            "\"planted\": 4",
            "\"planted_found\": 3",
            "\"recall\": 0.75",
            "\"groups\": 42",
            "\"query_p50_ms\": null",
            "\"scan_p99_ms\": null",
            "\"speedup\": null",
            "\"build_seconds\": null",
            "\"model_recall\": null",
            "\"false_positives\": null",
        ] {
            assert!(json.contains(field), "{field} not in {json}");
        }
        // Nothing planted: nothing missed.
        let none = Run::dedup(64, &row(0, 0), "x".into(), Some(9), String::new());
        assert_eq!(none.recall, Some(1.0));
        assert_eq!(none.raw_bytes_per_code, 16.0);
    }

    #[test]
    fn the_64_bit_dedup_rows_are_runs_of_one_exact_query_per_code() {
        let report = BenchReport {
            options: crate::BenchOptions::default(),
            clustered_share: 0.0,
            max_cluster: 0,
            query_copy_share: 0.0,
            query_max_flip: 0,
            rows: Vec::new(),
            dedup: vec![row(10, 10)],
            copies: Vec::new(),
        };
        let runs = report.runs();
        assert_eq!(runs.len(), 1);
        let want = Run::dedup(
            64,
            &row(10, 10),
            "one exact query per code".into(),
            Some(9),
            String::new(),
        );
        assert_eq!(runs[0].to_json(), want.to_json());
        assert!(runs[0].to_json().contains("\"raw_bytes_per_code\": 16"));
    }
}
