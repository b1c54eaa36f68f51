//! From the codes of one model version to its report.

use std::collections::BTreeMap;

use crate::EvalError;
use crate::metrics::{self, Label};
use crate::report::{RadiusRow, TransformRow, VersionReport};
use crate::transform::TransformKind;

/// A corpus item and the code the pipeline gave it.
#[derive(Debug, Clone)]
pub struct CodedItem {
    pub photo: usize,
    pub copy: Option<usize>,
    /// `None` for originals.
    pub kind: Option<TransformKind>,
    /// Packed code bytes, as stored.
    pub code: Vec<u8>,
}

/// The share of copies the dedup radius must keep.
pub const COPY_SHARE: f64 = 0.99;
/// The share of distinct pairs it may let in (issue 10: under 0.1 %).
pub const DISTINCT_LIMIT: f64 = 0.001;

/// Ranks every code against every copy and builds the version's report. `uncoded`
/// counts the corpus images that got no code (failures of the pipeline).
pub fn evaluate(
    version: &str,
    items: &[CodedItem],
    uncoded: usize,
) -> Result<VersionReport, EvalError> {
    let bits = match items.first() {
        Some(first) => first.code.len() as u32 * 8,
        None => 0,
    };
    if let Some(other) = items.iter().find(|i| i.code.len() as u32 * 8 != bits) {
        return Err(EvalError::MixedLengths(bits, other.code.len() as u32 * 8));
    }
    let labels: Vec<Label> = items
        .iter()
        .map(|i| Label {
            photo: i.photo,
            copy: i.copy,
        })
        .collect();
    let dist = |a: usize, b: usize| {
        items[a]
            .code
            .iter()
            .zip(&items[b].code)
            .map(|(x, y)| (x ^ y).count_ones())
            .sum::<u32>()
    };
    let outcomes = metrics::query_outcomes(&labels, dist);
    let copies = metrics::copy_histogram(&outcomes, bits);
    let distinct = metrics::distinct_histogram(&labels, bits, dist);
    let radius_99 = metrics::radius_keeping(&copies, COPY_SHARE);
    let strict = metrics::largest_radius_below(&distinct, DISTINCT_LIMIT);

    let mut by_kind: BTreeMap<TransformKind, Vec<metrics::QueryOutcome>> = BTreeMap::new();
    for o in &outcomes {
        if let Some(kind) = items[o.query].kind {
            by_kind.entry(kind).or_default().push(*o);
        }
    }
    let per_transform = by_kind
        .into_iter()
        .map(|(kind, os)| {
            let h = metrics::copy_histogram(&os, bits);
            TransformRow {
                transform: kind,
                description: kind.description(),
                retrieval: metrics::summarize(&os),
                median_distance: metrics::radius_keeping(&h, 0.5),
                within_radius_99: radius_99.map(|r| metrics::fraction_within(&h, r)),
            }
        })
        .collect();
    let radius = |r: u32| RadiusRow {
        radius: r,
        copies_kept: metrics::fraction_within(&copies, r),
        distinct_inside: metrics::fraction_within(&distinct, r),
    };
    Ok(VersionReport {
        version: version.to_string(),
        bits,
        photos: labels.iter().filter(|l| l.copy.is_none()).count(),
        copies: outcomes.len(),
        uncoded,
        distinct_pairs: distinct.iter().sum(),
        retrieval: metrics::summarize(&outcomes),
        per_transform,
        radius_99: radius_99.map(radius),
        radius_below_0_1_percent: strict.map(radius),
        sweep: (0..=bits).map(radius).collect(),
        copy_histogram: copies,
        distinct_histogram: distinct,
    })
}
