//! Near-duplicate groups of a whole catalogue as a banded self-join, for radii where
//! one multi-index query per code costs too much (R ~ 20-30 on 128-bit codes).
//!
//! The code is cut into `m` bands. Two codes within `R` differ in at most `r_j` bits of
//! some band `j` once `sum(r_j + 1) > R` (the pigeonhole bound the multi-index also
//! uses), so every pair within `R` is found by comparing, band by band, the codes of
//! each bucket with those of every bucket whose key differs in at most `r_j` bits.
//! A query would reach those buckets by random reads; here, each band's codes are
//! sorted by its key into one array, and the key is split into a block (high bits) and
//! a bucket within the block (low bits): a block pair sits in the cache while every
//! low-bit flip between them is compared, so the join streams memory instead of
//! chasing it. Pairs are linked in a shared union-find as they are found.
//!
//! Comparisons dominate (about 1e12 at 10 M codes and R = 27): the bands are cut so a
//! bucket holds tens of codes, and one code is checked against a bucket eight words at
//! a time with AVX-512's vector popcount where the CPU has it ([`popcount::wide`]).
//! Copies of one code are linked up front and joined once.
//!
//! With `certified < R`, the bands are probed only to the radii that certify
//! `certified`: pairs up to that distance are all found, pairs beyond it with the
//! probability the uniform-flip model of `recall.rs` gives for those bands, and never a
//! pair beyond `R`.

mod plan;
mod sets;

use rayon::prelude::*;

use crate::code::{self, distance, with_width};
use crate::dedup::{DuplicateGroup, groups_of};
use crate::mih::layout::{Substring, for_each_flip};
use crate::mih::table::Offsets;
use crate::popcount::{self, Compare, Kernel};
use crate::{HammingIndex, SearchError};
use plan::plan;
use sets::SharedSets;

/// Each block pair should fit the cache together with the flips compared between them.
const BLOCK_BYTES: usize = 96 * 1024;
/// Blocks handed to the workers between two progress reports.
const BLOCKS_PER_REPORT: usize = 256;

/// Every group of two or more ids linked by pairs within `radius`: the same groups as
/// [`crate::duplicate_groups`], by a self-join of the whole index instead of one query
/// per code (at R = 27 on 128-bit codes: 10 M codes in minutes, see the README).
/// `progress(done, total)` counts blocks of bands done.
pub fn duplicate_groups_banded(
    index: &dyn HammingIndex,
    radius: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DuplicateGroup>, SearchError> {
    duplicate_groups_certified(index, radius, radius, progress)
}

/// [`duplicate_groups_banded`] that certifies only pairs within `certified` and finds
/// pairs between that and `radius` with a probability below one: cheaper, and every
/// linked pair is still within `radius`, so groups can only be split, never joined
/// wrongly.
pub fn duplicate_groups_certified(
    index: &dyn HammingIndex,
    radius: u32,
    certified: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DuplicateGroup>, SearchError> {
    let words = code::words_for(index.bits())?;
    let mut ids = index.ids();
    let mut codes = Vec::with_capacity(ids.len() * words);
    let mut held = Vec::with_capacity(ids.len());
    for id in ids.drain(..) {
        if let Some(c) = index.code_of(id) {
            code::push_words(&c, words, &mut codes)?;
            held.push(id);
        }
    }
    groups_from_words(index.bits(), &held, &codes, radius, certified, progress)
}

/// The bands a join of `n` distinct `bits`-bit codes would use (for the benchmark's report).
#[doc(hidden)]
pub fn join_plan(bits: u32, n: usize, radius: u32, certified: u32) -> Result<String, SearchError> {
    Ok(plan(bits, n, certified.min(radius))?.describe())
}

/// The join over `codes` (`bits / 64` words each, row-aligned with ascending `ids`).
pub(crate) fn groups_from_words(
    bits: u32,
    ids: &[u64],
    codes: &[u64],
    radius: u32,
    certified: u32,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DuplicateGroup>, SearchError> {
    let words = code::words_for(bits)?;
    let sets = SharedSets::new(ids.len());
    let certified = certified.min(radius);
    with_width!(words, W => join::<W>(bits, code::as_codes::<W>(codes), radius, certified, &sets, progress))?;
    Ok(groups_of(&sets.roots(), ids))
}

fn join<const W: usize>(
    bits: u32,
    codes: &[[u64; W]],
    radius: u32,
    certified: u32,
    sets: &SharedSets,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(), SearchError> {
    // Copies of one code are linked once here and joined as one row: a catalogue with
    // many identical codes (placeholders, re-uploads) would otherwise compare every
    // copy with every other in every band.
    let mut order: Vec<u32> = (0..codes.len() as u32).collect();
    order.par_sort_unstable_by_key(|&r| codes[r as usize]);
    let mut reps: Vec<u32> = Vec::with_capacity(order.len());
    for (i, &r) in order.iter().enumerate() {
        match i.checked_sub(1).map(|p| order[p]) {
            Some(prev) if codes[prev as usize] == codes[r as usize] => sets.union(prev, r),
            _ => reps.push(r),
        }
    }
    drop(order);
    let plan = plan(bits, reps.len(), certified)?;
    tracing::debug!(codes = reps.len(), plan = %plan.describe(), cost = plan.cost, "banded join");
    let bands: Vec<(Substring, u32)> = plan
        .subs
        .iter()
        .zip(&plan.radii)
        .filter_map(|(s, r)| r.map(|r| (*s, r)))
        .collect();
    let total: usize = bands
        .iter()
        .map(|(s, _)| 1usize << s.len.saturating_sub(block_bits::<W>(s.len, reps.len())))
        .sum();
    let mut done = 0;
    for (sub, r) in bands {
        band::<W>(codes, &reps, sub, r, radius, sets, &mut |blocks| {
            done += blocks;
            progress(done, total);
        });
    }
    Ok(())
}

/// Low key bits that make a block: about [`BLOCK_BYTES`] of the band's codes.
fn block_bits<const W: usize>(len: u32, n: usize) -> u32 {
    let entry = (8 * W + 4) as f64;
    let per_bucket = (n.max(1) as f64 / (1u64 << len) as f64).max(1.0 / 64.0);
    let buckets = BLOCK_BYTES as f64 / entry / per_bucket;
    (buckets.log2().floor().max(0.0) as u32).min(len)
}

/// Links every pair of `reps` whose codes are within `radius` and whose keys under
/// `sub` differ in at most `r` bits.
fn band<const W: usize>(
    codes: &[[u64; W]],
    reps: &[u32],
    sub: Substring,
    r: u32,
    radius: u32,
    sets: &SharedSets,
    report: &mut dyn FnMut(usize),
) {
    // The band's codes sorted by key (counting sort), with the row each came from.
    let offsets = Offsets::count(
        sub.len,
        reps.iter().map(|&row| sub.key(&codes[row as usize])),
    );
    let mut next: Vec<u32> = (0..1u32 << sub.len)
        .map(|k| offsets.range(k).start as u32)
        .collect();
    let mut sorted = vec![[0u64; W]; reps.len()];
    let mut rows = vec![0u32; reps.len()];
    for &row in reps {
        let c = &codes[row as usize];
        let slot = &mut next[sub.key(c) as usize];
        sorted[*slot as usize] = *c;
        rows[*slot as usize] = row;
        *slot += 1;
    }
    drop(next);
    let lo = block_bits::<W>(sub.len, reps.len());
    let hi = sub.len - lo;
    let flips = |len: u32| -> Vec<Vec<u32>> {
        (0..=r.min(len))
            .map(|k| {
                let mut f = Vec::new();
                for_each_flip(len, k, |x| f.push(x));
                f
            })
            .collect()
    };
    let band = Band {
        offsets: &offsets,
        codes: &sorted,
        rows: &rows,
        hi_flips: flips(hi),
        lo_flips: flips(lo),
        lo,
        r,
        radius,
        sets,
    };
    let blocks: Vec<u32> = (0..1u32 << hi).collect();
    for chunk in blocks.chunks(BLOCKS_PER_REPORT) {
        chunk
            .par_iter()
            .for_each(|&block| popcount::wide(&band, block));
        report(chunk.len());
    }
}

struct Band<'a, const W: usize> {
    offsets: &'a Offsets,
    codes: &'a [[u64; W]],
    rows: &'a [u32],
    /// Flips of the block bits and of the bucket-in-block bits, by weight.
    hi_flips: Vec<Vec<u32>>,
    lo_flips: Vec<Vec<u32>>,
    lo: u32,
    r: u32,
    radius: u32,
    sets: &'a SharedSets,
}

impl<const W: usize> Kernel for Band<'_, W> {
    type Out = ();

    /// Every pair of buckets between `block` and the blocks at or after it within the
    /// band's radius: both blocks stay in the cache while each low-bit flip runs.
    #[inline(always)]
    fn run<C: Compare>(&self, block: u32) {
        for (kh, fhs) in self.hi_flips.iter().enumerate() {
            for &fh in fhs {
                let other = block ^ fh;
                if other < block {
                    continue;
                }
                let weights = (self.r as usize - kh).min(self.lo_flips.len() - 1);
                for fls in &self.lo_flips[..=weights] {
                    for &fl in fls {
                        self.block_pair::<C>(block << self.lo, other << self.lo, 1 << self.lo, fl);
                    }
                }
            }
        }
    }
}

impl<const W: usize> Band<'_, W> {
    /// Compares bucket `a + b` with bucket `c + (b ^ flip)` for every `b < len`; within
    /// one block (`a == c`) each pair of buckets once, and a bucket with itself.
    #[inline(always)]
    fn block_pair<C: Compare>(&self, a: u32, c: u32, len: u32, flip: u32) {
        for b in 0..len {
            let (x, y) = (a + b, c + (b ^ flip));
            if a == c && x > y {
                continue;
            }
            let xs = self.offsets.range(x);
            let ys = self.offsets.range(y);
            if xs.is_empty() || ys.is_empty() {
                continue;
            }
            for i in xs {
                let from = if x == y { i + 1 } else { ys.start };
                self.link::<C>(i, from..ys.end);
            }
        }
    }

    /// Links code `i` with every code of `js` within the radius. Whether any is near
    /// is asked first, by a loop without branches that vectorizes; pairs are rare, so
    /// the second pass that finds them rarely runs.
    #[inline(always)]
    fn link<C: Compare>(&self, i: usize, js: std::ops::Range<usize>) {
        let x = &self.codes[i];
        let ys = &self.codes[js.clone()];
        if !C::any_near(x, ys, self.radius) {
            return;
        }
        for (j, y) in js.zip(ys) {
            if distance(x, y) <= self.radius {
                self.sets.union(self.rows[i], self.rows[j]);
            }
        }
    }
}
