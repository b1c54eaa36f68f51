//! Retrieval and dedup metrics over codes labelled by photo. Pure functions of a
//! distance function, so the tests feed hand-made distance tables.
//!
//! A query is each copy; every other code (originals and copies) is ranked by its
//! distance to it. The relevant codes are the ones of the copy's own photo: its
//! original and its sibling copies. Ties are broken AGAINST the relevant codes, so the
//! figures are what the worst order among equal distances would give, never flattered
//! by the order of IDs.

use serde::Serialize;

/// One code's label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Label {
    pub photo: usize,
    /// `None` for the original photo.
    pub copy: Option<usize>,
}

/// What one copy's query found.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct QueryOutcome {
    /// Index of the query in the labelled list.
    pub query: usize,
    /// 1-based rank of the first code of the copy's own photo.
    pub first_relevant_rank: usize,
    /// Average precision over every code of its own photo.
    pub average_precision: f64,
    /// Hamming distance to its original (`None` if the original has no code).
    pub to_original: Option<u32>,
}

/// Recall@1, recall@10 and mAP over a set of queries.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Retrieval {
    pub queries: usize,
    pub recall_at_1: f64,
    pub recall_at_10: f64,
    pub map: f64,
}

/// Ranks everything against each copy in `labels`.
pub fn query_outcomes(labels: &[Label], dist: impl Fn(usize, usize) -> u32) -> Vec<QueryOutcome> {
    let mut out = Vec::new();
    let mut row: Vec<(u32, bool)> = Vec::with_capacity(labels.len());
    for (q, ql) in labels.iter().enumerate() {
        if ql.copy.is_none() {
            continue;
        }
        row.clear();
        let mut to_original = None;
        for (i, il) in labels.iter().enumerate() {
            if i == q {
                continue;
            }
            let d = dist(q, i);
            if il.photo == ql.photo && il.copy.is_none() {
                to_original = Some(d);
            }
            row.push((d, il.photo == ql.photo));
        }
        // `false < true`: among equal distances the distinct codes rank first.
        row.sort_unstable();
        let relevant = row.iter().filter(|(_, r)| *r).count();
        if relevant == 0 {
            continue;
        }
        let mut found = 0usize;
        let mut precision_sum = 0.0;
        let mut first = 0usize;
        for (pos, (_, rel)) in row.iter().enumerate() {
            if *rel {
                found += 1;
                precision_sum += found as f64 / (pos + 1) as f64;
                if first == 0 {
                    first = pos + 1;
                }
            }
        }
        out.push(QueryOutcome {
            query: q,
            first_relevant_rank: first,
            average_precision: precision_sum / relevant as f64,
            to_original,
        });
    }
    out
}

/// Aggregates outcomes (all of them, or one transform's).
pub fn summarize<'a>(outcomes: impl IntoIterator<Item = &'a QueryOutcome>) -> Retrieval {
    let (mut n, mut r1, mut r10, mut ap) = (0usize, 0usize, 0usize, 0.0);
    for o in outcomes {
        n += 1;
        r1 += usize::from(o.first_relevant_rank <= 1);
        r10 += usize::from(o.first_relevant_rank <= 10);
        ap += o.average_precision;
    }
    let frac = |k: usize| if n == 0 { 0.0 } else { k as f64 / n as f64 };
    Retrieval {
        queries: n,
        recall_at_1: frac(r1),
        recall_at_10: frac(r10),
        map: if n == 0 { 0.0 } else { ap / n as f64 },
    }
}

/// Counts per Hamming distance `0..=bits`.
pub type Histogram = Vec<u64>;

/// Distances of copies to their originals.
pub fn copy_histogram(outcomes: &[QueryOutcome], bits: u32) -> Histogram {
    let mut h = vec![0u64; bits as usize + 1];
    for d in outcomes.iter().filter_map(|o| o.to_original) {
        h[(d as usize).min(bits as usize)] += 1;
    }
    h
}

/// Distances of every pair of codes from two different photos (copies included: a
/// catalogue holds transformed photos too).
pub fn distinct_histogram(
    labels: &[Label],
    bits: u32,
    dist: impl Fn(usize, usize) -> u32,
) -> Histogram {
    let mut h = vec![0u64; bits as usize + 1];
    for i in 0..labels.len() {
        for j in i + 1..labels.len() {
            if labels[i].photo != labels[j].photo {
                h[(dist(i, j) as usize).min(bits as usize)] += 1;
            }
        }
    }
    h
}

/// Fraction of the histogram's mass at distances `<= radius`.
pub fn fraction_within(h: &[u64], radius: u32) -> f64 {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let inside: u64 = h.iter().take(radius as usize + 1).sum();
    inside as f64 / total as f64
}

/// The smallest radius that keeps at least `share` of the histogram (e.g. 0.99 of the
/// copies); `None` for an empty histogram.
pub fn radius_keeping(h: &[u64], share: f64) -> Option<u32> {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return None;
    }
    let mut inside = 0u64;
    for (r, n) in h.iter().enumerate() {
        inside += n;
        // Integer comparison: no rounding can let 98.99 % pass for 99 %.
        if inside as f64 >= share * total as f64 {
            return Some(r as u32);
        }
    }
    Some(h.len().saturating_sub(1) as u32)
}

/// The largest radius whose share of distinct pairs stays strictly below `limit`
/// (e.g. 0.001); `None` when even radius 0 holds that many.
pub fn largest_radius_below(h: &[u64], limit: f64) -> Option<u32> {
    (0..h.len() as u32)
        .take_while(|&r| fraction_within(h, r) < limit)
        .last()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(photo: usize, copy: Option<usize>) -> Label {
        Label { photo, copy }
    }

    /// Photo 0: original + 2 copies, photo 1: original + 1 copy.
    fn table() -> (Vec<Label>, Vec<Vec<u32>>) {
        let labels = vec![
            l(0, None),
            l(0, Some(0)),
            l(0, Some(1)),
            l(1, None),
            l(1, Some(0)),
        ];
        let d = vec![
            vec![0, 2, 9, 20, 30],
            vec![2, 0, 5, 5, 25],
            vec![9, 5, 0, 4, 30],
            vec![20, 5, 4, 0, 3],
            vec![30, 25, 30, 3, 0],
        ];
        (labels, d)
    }

    #[test]
    fn recall_and_map_on_a_hand_made_table() {
        let (labels, d) = table();
        let out = query_outcomes(&labels, |i, j| d[i][j]);
        assert_eq!(out.len(), 3, "one query per copy");
        // Copy 0 of photo 0: original at 2 (rank 1), then copy 1 at 5 tied with photo
        // 1's original: the tie goes against it, rank 3. AP = (1/1 + 2/3) / 2.
        assert_eq!(out[0].first_relevant_rank, 1);
        assert!((out[0].average_precision - (1.0 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(out[0].to_original, Some(2));
        // Copy 1 of photo 0: photo 1's original (4) comes first, then its sibling (5),
        // then its original (9). AP = (1/2 + 2/3) / 2.
        assert_eq!(out[1].first_relevant_rank, 2);
        assert!((out[1].average_precision - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        // Copy 0 of photo 1: its original at 3, first.
        assert_eq!(out[2].first_relevant_rank, 1);
        assert_eq!(out[2].average_precision, 1.0);

        let s = summarize(&out);
        assert_eq!(s.queries, 3);
        assert!((s.recall_at_1 - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(s.recall_at_10, 1.0);
        let map = ((1.0 + 2.0 / 3.0) / 2.0 + (0.5 + 2.0 / 3.0) / 2.0 + 1.0) / 3.0;
        assert!((s.map - map).abs() < 1e-12);
    }

    #[test]
    fn a_tie_with_a_distinct_code_is_not_a_hit_at_one() {
        let labels = vec![l(0, None), l(0, Some(0)), l(1, None)];
        let d = [[0, 4, 9], [4, 0, 4], [9, 4, 0]];
        let out = query_outcomes(&labels, |i, j| d[i][j]);
        assert_eq!(out[0].first_relevant_rank, 2);
    }

    #[test]
    fn histograms_radius_and_distinct_fraction() {
        let (labels, d) = table();
        let out = query_outcomes(&labels, |i, j| d[i][j]);
        let copies = copy_histogram(&out, 32);
        assert_eq!(copies.iter().sum::<u64>(), 3);
        assert_eq!((copies[2], copies[9], copies[3]), (1, 1, 1));
        let distinct = distinct_histogram(&labels, 32, |i, j| d[i][j]);
        // 3 x 2 cross-photo pairs: 20, 30, 5, 25, 4, 30.
        assert_eq!(distinct.iter().sum::<u64>(), 6);
        assert_eq!(distinct[30], 2);
        // 99 % of three copies needs all three: radius 9; two of six distinct pairs
        // (4 and 5) fall inside it.
        assert_eq!(radius_keeping(&copies, 0.99), Some(9));
        assert_eq!(radius_keeping(&copies, 0.6), Some(3));
        assert!((fraction_within(&distinct, 9) - 2.0 / 6.0).abs() < 1e-12);
        assert_eq!(largest_radius_below(&distinct, 0.1), Some(3));
        assert_eq!(largest_radius_below(&[1, 0], 0.1), None);
        assert_eq!(radius_keeping(&[0, 0], 0.99), None);
    }

    #[test]
    fn the_99_percent_radius_needs_99_percent_not_98() {
        // 100 copies: 98 at distance 1, 1 at 2, 1 at 7.
        let mut h = vec![0u64; 9];
        h[1] = 98;
        h[2] = 1;
        h[7] = 1;
        assert_eq!(radius_keeping(&h, 0.99), Some(2));
        assert_eq!(radius_keeping(&h, 1.0), Some(7));
    }
}
