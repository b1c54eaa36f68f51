//! How the join cuts the code: the band count whose estimated work is least, and the
//! radius each band is probed to.

use crate::SearchError;
use crate::mih::layout::{MAX_SUBSTRING_BITS, Substring, binomial, split};
use crate::mih::schedule::Schedule;

/// Relative costs, in one code comparison (~0.35 ns with AVX-512; measured on the
/// 2-core EPYC, see README):
/// visiting a pair of buckets, and placing one code in a band's sorted copy.
const VISIT_COST: f64 = 50.0;
const SORT_COST: f64 = 20.0;

pub(crate) struct JoinPlan {
    pub subs: Vec<Substring>,
    /// Radius each band is probed to; `None`: not probed.
    pub radii: Vec<Option<u32>>,
    /// Estimated work, in code comparisons.
    pub cost: f64,
}

/// The cheapest cut of `bits`-bit codes for a join of `n` codes that certifies `certified`.
pub(crate) fn plan(bits: u32, n: usize, certified: u32) -> Result<JoinPlan, SearchError> {
    let mut best: Option<JoinPlan> = None;
    for m in bits.div_ceil(MAX_SUBSTRING_BITS)..=bits.min(32) {
        let subs = split(bits, m)?;
        let lens: Vec<u32> = subs.iter().map(|s| s.len).collect();
        let radii = Schedule::radius_major(&lens).radii_for(certified, lens.len());
        let cost = subs
            .iter()
            .zip(&radii)
            .filter_map(|(s, r)| r.map(|r| band_cost(s.len, r, n)))
            .sum();
        if best.as_ref().is_none_or(|b| cost < b.cost) {
            best = Some(JoinPlan { subs, radii, cost });
        }
    }
    best.ok_or(SearchError::UnsupportedBits(bits))
}

/// Work of one band of `len` bits probed to radius `r` over `n` codes.
pub(crate) fn band_cost(len: u32, r: u32, n: usize) -> f64 {
    let n = n as f64;
    let ball: f64 = (0..=r).map(|k| binomial(len, k)).sum();
    let buckets = (1u64 << len) as f64;
    let visits = buckets * ball / 2.0;
    let comparisons = n * n / 2.0 * ball / buckets;
    n * SORT_COST + visits * VISIT_COST + comparisons
}

impl JoinPlan {
    /// "19/19/18/18/18/18/18 r3/3/3/3/3/3/3": band lengths and probe radii.
    pub(crate) fn describe(&self) -> String {
        let lens: Vec<String> = self.subs.iter().map(|s| s.len.to_string()).collect();
        let radii: Vec<String> = self
            .radii
            .iter()
            .map(|r| r.map_or("-".to_string(), |r| r.to_string()))
            .collect();
        format!("{} r{}", lens.join("/"), radii.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_plans_meet_the_pigeonhole_bound_and_grow_bands_with_n() {
        for bits in [64, 128, 256] {
            for radius in [0, 3, 8, 27, 40] {
                for n in [1_000, 1_000_000, 10_000_000] {
                    let p = plan(bits, n, radius).unwrap();
                    let reach: u32 = p.radii.iter().map(|r| r.map_or(0, |r| r + 1)).sum();
                    assert!(
                        reach > radius,
                        "{bits} bits, R {radius}, n {n}: {}",
                        p.describe()
                    );
                    assert_eq!(p.subs.iter().map(|s| s.len).sum::<u32>(), bits);
                }
            }
        }
        // More codes: longer bands (fewer comparisons per bucket pair).
        let (small, large) = (
            plan(128, 1_000_000, 27).unwrap(),
            plan(128, 10_000_000, 27).unwrap(),
        );
        assert!(small.subs.len() >= large.subs.len());
    }
}
