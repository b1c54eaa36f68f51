//! Probing the tables in the order of the index's [`super::schedule::Schedule`], which
//! says what each prefix certifies and which step first reaches a code. The radius
//! search runs the prefix that certifies its radius (or a smaller certified radius,
//! still keeping only hits within the radius: the approximate probe); over listed
//! tables it runs as a prefetching pipeline (`pipeline.rs`). k-NN stops as soon as its
//! k-th hit is within what the steps so far certify (Norouzi's stopping rule).
//! When the buckets left to probe would cost more than reading every code, the query
//! reads every code instead: the answer is the same, the cost bounded by the scan's.

use super::layout::{binomial, for_each_flip};
use super::{MultiIndex, Secondary};
use crate::Hit;
use crate::code::{self, distance, with_width};
use crate::topk::{TopK, sort_hits};
use crate::{popcount, scan};

/// A probed bucket and a candidate listed by a table each cost about this many codes of
/// a scan (a cache miss each: ~23 ns against ~1.4 ns per scanned 64-bit code).
const RANDOM_READ_COST: f64 = 16.0;
/// A candidate of table 0 is read in order, like the scan, plus the first-reach check.
const SEQUENTIAL_READ_COST: f64 = 2.0;
/// A candidate of an inline table: a few bytes read in order within its bucket.
const INLINE_READ_COST: f64 = 2.0;
/// How many buckets ahead an inline table's offsets, then its codes, are fetched.
const OFFSETS_AHEAD: usize = 16;
const BUCKET_AHEAD: usize = 8;
/// Probing may spend this share of a full scan before the query reads every code
/// instead, so a query costs at most about 1.5 scans.
const PROBE_BUDGET: f64 = 0.5;

pub(super) fn knn(index: &MultiIndex, probe: &[u64], k: usize) -> Vec<Hit> {
    popcount::fast(
        || with_width!(index.words, W => knn_w::<W>(index, &code::as_probe::<W>(probe), k)),
    )
}

pub(super) fn within(index: &MultiIndex, probe: &[u64], radius: u32) -> Vec<Hit> {
    within_certified(index, probe, radius, radius)
}

pub(super) fn within_certified(
    index: &MultiIndex,
    probe: &[u64],
    radius: u32,
    certified: u32,
) -> Vec<Hit> {
    let mut hits = popcount::fast(
        || with_width!(index.words, W => within_w::<W>(index, &code::as_probe::<W>(probe), radius, certified.min(radius))),
    );
    sort_hits(&mut hits);
    hits
}

impl MultiIndex {
    /// k-NN by reading every code: the linear-scan baseline on this index's own data.
    pub fn knn_scan(&self, probe: &[u8], k: usize) -> Result<Vec<Hit>, crate::SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        Ok(popcount::fast(|| {
            with_width!(self.words, W => {
                let mut top = TopK::new(k);
                scan_all::<W>(self, &code::as_probe::<W>(&probe), &mut top);
                top.into_sorted()
            })
        }))
    }

    /// Radius search by reading every code.
    pub fn within_scan(&self, probe: &[u8], radius: u32) -> Result<Vec<Hit>, crate::SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        let mut hits = Vec::new();
        popcount::fast(|| {
            with_width!(self.words, W => scan::within::<W>(
            code::as_codes::<W>(&self.codes), &self.ids, 0, &code::as_probe::<W>(&probe), radius, &self.dead, &mut hits))
        });
        sort_hits(&mut hits);
        Ok(hits)
    }
}

fn scan_all<const W: usize>(index: &MultiIndex, probe: &[u64; W], top: &mut TopK) {
    scan::knn::<W>(
        code::as_codes::<W>(&index.codes),
        &index.ids,
        0,
        probe,
        &index.dead,
        top,
    );
}

fn scan_overflow<const W: usize>(index: &MultiIndex, probe: &[u64; W], top: &mut TopK) {
    let b = index.base;
    scan::knn::<W>(
        &code::as_codes::<W>(&index.codes)[b..],
        &index.ids[b..],
        b,
        probe,
        &index.dead,
        top,
    );
}

/// Estimated cost of step `(r, j)` in scanned-code units.
pub(super) fn step_cost(index: &MultiIndex, r: u32, j: usize) -> f64 {
    let len = index.subs[j].len;
    let buckets = binomial(len, r);
    let per_bucket = index.base as f64 / (1u64 << len) as f64;
    let per_candidate = match (j, &index.secondary) {
        (0, _) => SEQUENTIAL_READ_COST,
        (_, Secondary::Inline(_)) => INLINE_READ_COST,
        (_, Secondary::Listed(_)) => RANDOM_READ_COST,
    };
    buckets * (RANDOM_READ_COST + per_bucket * per_candidate)
}

/// The steps that certify every code within `radius`, in probing order.
fn steps_for(index: &MultiIndex, radius: u32) -> &[(u32, usize)] {
    &index.schedule.steps()[..index.schedule.prefix_for(radius)]
}

fn certify_cost(index: &MultiIndex, radius: u32) -> f64 {
    steps_for(index, radius)
        .iter()
        .map(|&(r, j)| step_cost(index, r, j))
        .sum()
}

/// Where the k-th of `base` uniform random codes is expected: the radius at which
/// `base x P(distance <= r)` reaches k. Clustered copies only come closer, so probing is
/// priced for the far case up front instead of discovering it after half a scan.
fn expected_kth_radius(index: &MultiIndex, k: usize) -> u32 {
    let space = 2f64.powi(index.bits as i32);
    let mut within = 0.0;
    for r in 0..=index.bits {
        within += binomial(index.bits, r);
        if index.base as f64 * within / space >= k as f64 {
            return r;
        }
    }
    index.bits
}

#[inline]
fn knn_w<const W: usize>(index: &MultiIndex, probe: &[u64; W], k: usize) -> Vec<Hit> {
    let mut top = TopK::new(k);
    if k == 0 {
        return Vec::new();
    }
    scan_overflow::<W>(index, probe, &mut top);
    if index.base == 0 {
        return top.into_sorted();
    }
    let keys: Vec<u32> = index.subs.iter().map(|s| s.key(probe)).collect();
    let budget = index.base as f64 * PROBE_BUDGET;
    if index.scan_fallback && certify_cost(index, expected_kth_radius(index, k)) > budget {
        // The overflow is in the full scan too: start from an empty list.
        let mut top = TopK::new(k);
        scan_all::<W>(index, probe, &mut top);
        return top.into_sorted();
    }
    let mut spent = 0.0;
    for (s, &(r, j)) in index.schedule.steps().iter().enumerate() {
        spent += step_cost(index, r, j);
        if spent > budget && index.scan_fallback {
            let mut top = TopK::new(k);
            scan_all::<W>(index, probe, &mut top);
            return top.into_sorted();
        }
        probe_step::<W>(index, probe, keys[j], r, j, |d, row| {
            if d <= top.bound() {
                top.offer(d, index.ids[row]);
            }
            top.bound()
        });
        if top.is_full() && top.bound() <= index.schedule.certified(s) {
            return top.into_sorted();
        }
    }
    top.into_sorted()
}

#[inline]
fn within_w<const W: usize>(
    index: &MultiIndex,
    probe: &[u64; W],
    radius: u32,
    certified: u32,
) -> Vec<Hit> {
    let mut hits = Vec::new();
    let b = index.base;
    let codes = code::as_codes::<W>(&index.codes);
    scan::within::<W>(
        &codes[b..],
        &index.ids[b..],
        b,
        probe,
        radius,
        &index.dead,
        &mut hits,
    );
    if b == 0 {
        return hits;
    }
    if certify_cost(index, certified) > b as f64 * PROBE_BUDGET && index.scan_fallback {
        scan::within::<W>(
            &codes[..b],
            &index.ids[..b],
            0,
            probe,
            radius,
            &index.dead,
            &mut hits,
        );
        return hits;
    }
    let keys: Vec<u32> = index.subs.iter().map(|s| s.key(probe)).collect();
    if let Secondary::Listed(tables) = &index.secondary {
        super::pipeline::within_listed::<W>(
            index,
            tables,
            probe,
            &keys,
            steps_for(index, certified),
            radius,
            &mut hits,
        );
        return hits;
    }
    for &(r, j) in steps_for(index, certified) {
        probe_step::<W>(index, probe, keys[j], r, j, |d, row| {
            if d <= radius {
                hits.push(Hit {
                    id: index.ids[row],
                    distance: d,
                });
            }
            radius
        });
    }
    hits
}

/// Visits the codes first reached at step `(r, j)`, calling `take(distance, row)` for
/// each live one within the bound `take` last returned. Table 0's buckets are runs of
/// rows, read in order; listed tables' buckets name rows, each a random read; inline
/// tables' buckets hold the codes, and only a code within the bound is looked up.
#[inline]
fn probe_step<const W: usize>(
    index: &MultiIndex,
    probe: &[u64; W],
    key: u32,
    r: u32,
    j: usize,
    mut take: impl FnMut(u32, usize) -> u32,
) {
    let codes = code::as_codes::<W>(&index.codes);
    let mut bound = u32::MAX;
    let len = index.subs[j].len;
    let mut visit = |row: usize| {
        let c = &codes[row];
        let d = distance(c, probe);
        if d > bound || index.dead.is_dead(row) || !first_reached::<W>(index, c, probe, r, j) {
            return;
        }
        bound = take(d, row);
    };
    match (j, &index.secondary) {
        (0, _) => for_each_flip(len, r, |flip| {
            for row in index.primary.range(key ^ flip) {
                visit(row);
            }
        }),
        (_, Secondary::Listed(tables)) => {
            let table = &tables[j - 1];
            for_each_flip(len, r, |flip| {
                for &row in table.bucket(key ^ flip) {
                    visit(row as usize);
                }
            });
        }
        (_, Secondary::Inline(tables)) => {
            let table = &tables[j - 1];
            // Each bucket is two dependent cache misses (its offset, then its codes):
            // fetching both a few buckets ahead overlaps them instead of paying each
            // in turn.
            let mut keys = Vec::with_capacity(binomial(len, r) as usize);
            for_each_flip(len, r, |flip| keys.push(key ^ flip));
            for (i, &bucket) in keys.iter().enumerate() {
                if let Some(&ahead) = keys.get(i + OFFSETS_AHEAD) {
                    table.prefetch_offsets(ahead);
                }
                if let Some(&ahead) = keys.get(i + BUCKET_AHEAD) {
                    table.prefetch_bucket(ahead);
                }
                // Copies of one code are adjacent: the first resolves them all.
                let mut last = None;
                table.for_each_code(bucket, |c| {
                    if last == Some(c) {
                        return;
                    }
                    last = Some(c);
                    // Inline tables exist for 64-bit codes only (W = 1).
                    let mut cw = [0u64; W];
                    cw[0] = c;
                    let d = distance(&cw, probe);
                    if d > bound || !first_reached::<W>(index, &cw, probe, r, j) {
                        return;
                    }
                    for row in index.rows_of_code(c) {
                        if !index.dead.is_dead(row) {
                            bound = take(d, row);
                        }
                    }
                });
            }
        }
    }
}

/// Whether `(r, j)` is the first step of the schedule that reaches this code.
#[inline(always)]
pub(super) fn first_reached<const W: usize>(
    index: &MultiIndex,
    c: &[u64; W],
    probe: &[u64; W],
    r: u32,
    j: usize,
) -> bool {
    let mut x = [0u64; W];
    for i in 0..W {
        x[i] = c[i] ^ probe[i];
    }
    let here = index.schedule.pos(r, j);
    for (t, mask) in index.masks.chunks_exact(W).enumerate() {
        if t == j {
            continue;
        }
        let mut d = 0;
        for i in 0..W {
            d += (x[i] & mask[i]).count_ones();
        }
        if index.schedule.pos(d, t) < here {
            return false;
        }
    }
    true
}
