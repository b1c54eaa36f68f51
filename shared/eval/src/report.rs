//! The report: JSON for scripts, a table for people.

use std::fmt::Write as _;

use serde::Serialize;

use crate::metrics::{Histogram, Retrieval};
use crate::transform::TransformKind;

#[derive(Debug, Clone, Serialize)]
pub struct EvalReport {
    pub folder: String,
    pub seed: u64,
    pub copies_per_photo: usize,
    pub photos_skipped: Vec<(String, String)>,
    pub versions: Vec<VersionReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionReport {
    pub version: String,
    pub bits: u32,
    pub photos: usize,
    pub copies: usize,
    /// Corpus images the pipeline gave no code (no object, undecodable...).
    pub uncoded: usize,
    pub distinct_pairs: u64,
    pub retrieval: Retrieval,
    pub per_transform: Vec<TransformRow>,
    /// The smallest radius keeping >= 99 % of the copies within reach of their originals.
    pub radius_99: Option<RadiusRow>,
    /// The largest radius letting in < 0.1 % of the distinct pairs.
    pub radius_below_0_1_percent: Option<RadiusRow>,
    pub sweep: Vec<RadiusRow>,
    /// Copies by distance to their original, index = distance.
    pub copy_histogram: Histogram,
    /// Pairs of codes from different photos by distance.
    pub distinct_histogram: Histogram,
}

#[derive(Debug, Clone, Serialize)]
pub struct TransformRow {
    pub transform: TransformKind,
    pub description: &'static str,
    pub retrieval: Retrieval,
    pub median_distance: Option<u32>,
    /// Share of this transform's copies within the 99 % radius of all copies.
    pub within_radius_99: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct RadiusRow {
    pub radius: u32,
    pub copies_kept: f64,
    pub distinct_inside: f64,
}

/// The report as text tables.
pub fn render_text(r: &EvalReport) -> String {
    let mut s = String::new();
    // Writing into a String cannot fail.
    let _ = writeln!(
        s,
        "near-duplicate evaluation of {} (seed {}, {} copies per photo)",
        r.folder, r.seed, r.copies_per_photo
    );
    for (path, reason) in &r.photos_skipped {
        let _ = writeln!(s, "  skipped {path}: {reason}");
    }
    for v in &r.versions {
        render_version(&mut s, v);
    }
    s
}

fn render_version(s: &mut String, v: &VersionReport) {
    let _ = writeln!(s, "\n{} ({} bits)", v.version, v.bits);
    let _ = writeln!(
        s,
        "  {} photos, {} copies, {} images without a code, {} distinct pairs",
        v.photos, v.copies, v.uncoded, v.distinct_pairs
    );
    let _ = writeln!(
        s,
        "  {:<11} {:>7} {:>9} {:>10} {:>6} {:>7} {:>9}",
        "transform", "copies", "recall@1", "recall@10", "mAP", "median", "in r99"
    );
    let row = |s: &mut String, name: &str, t: &Retrieval, median: Option<u32>, inr: Option<f64>| {
        let _ = writeln!(
            s,
            "  {:<11} {:>7} {:>9.3} {:>10.3} {:>6.3} {:>7} {:>9}",
            name,
            t.queries,
            t.recall_at_1,
            t.recall_at_10,
            t.map,
            median.map_or("-".into(), |m| m.to_string()),
            inr.map_or("-".into(), |f| format!("{:.1} %", f * 100.0)),
        );
    };
    for t in &v.per_transform {
        row(
            s,
            t.transform.name(),
            &t.retrieval,
            t.median_distance,
            t.within_radius_99,
        );
    }
    row(s, "all", &v.retrieval, None, None);
    match v.radius_99 {
        Some(r) => {
            let _ = writeln!(
                s,
                "  radius keeping 99 % of copies: {} ({:.2} % of copies, {:.3} % of distinct pairs inside)",
                r.radius,
                r.copies_kept * 100.0,
                r.distinct_inside * 100.0
            );
        }
        None => {
            let _ = writeln!(s, "  radius keeping 99 % of copies: - (no copy coded)");
        }
    }
    match v.radius_below_0_1_percent {
        Some(r) => {
            let _ = writeln!(
                s,
                "  largest radius with < 0.1 % of distinct pairs: {} ({:.2} % of copies kept, {:.3} % distinct)",
                r.radius,
                r.copies_kept * 100.0,
                r.distinct_inside * 100.0
            );
        }
        None => {
            let _ = writeln!(s, "  largest radius with < 0.1 % of distinct pairs: none");
        }
    }
    let legend: Vec<String> = v
        .per_transform
        .iter()
        .map(|t| format!("{}: {}", t.transform.name(), t.description))
        .collect();
    let _ = writeln!(s, "  ({})", legend.join("; "));
    let _ = writeln!(
        s,
        "  ties are ranked against the copy's own photo; \"in r99\": share of the row's copies within the 99 % radius"
    );
}
