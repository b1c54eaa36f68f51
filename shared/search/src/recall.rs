//! What an approximate probe finds: the probability that a code `d` bits from the probe
//! differs in at most `r_j` bits of some probed band `j`, when its `d` differing bits
//! fall anywhere in the code with equal chance. Counted exactly (multivariate
//! hypergeometric), not sampled. Real copies need not flip bits uniformly: the benchmark
//! measures recall on planted copies; this model is what the planning relies on.

use crate::mih::layout::binomial;

/// `lens`: band lengths covering the code in order; `radii[j]`: how far band `j` is
/// probed (`None`: not at all).
pub(crate) fn found_probability(lens: &[u32], radii: &[Option<u32>], d: u32) -> f64 {
    let bits: u32 = lens.iter().sum();
    if d > bits {
        return 0.0;
    }
    // missed[u]: placements of u differing bits in the bands so far that no probe reaches.
    let mut missed = vec![0.0f64; d as usize + 1];
    missed[0] = 1.0;
    for (&len, r) in lens.iter().zip(radii) {
        // A band probed to radius r misses a code with more than r differing bits in it.
        let from = r.map_or(0, |r| r + 1);
        let mut next = vec![0.0f64; d as usize + 1];
        for (used, &ways) in missed.iter().enumerate() {
            if ways == 0.0 {
                continue;
            }
            for x in from..=len.min(d - used as u32) {
                next[used + x as usize] += ways * binomial(len, x);
            }
        }
        missed = next;
    }
    1.0 - missed[d as usize] / binomial(bits, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pigeonhole_radius_is_certain_and_beyond_it_is_not() {
        // Six bands probed to radius 3: every code within 6 * 4 - 1 = 23 is found.
        let lens = [22, 22, 21, 21, 21, 21];
        let radii = [Some(3); 6];
        for d in 0..=23 {
            assert!(
                (found_probability(&lens, &radii, d) - 1.0).abs() < 1e-12,
                "{d}"
            );
        }
        let p24 = found_probability(&lens, &radii, 24);
        let p27 = found_probability(&lens, &radii, 27);
        assert!(p24 < 1.0 && p27 < p24 && p27 > 0.9, "{p24} {p27}");
    }

    #[test]
    fn one_band_matches_a_direct_count() {
        // Two bands of 4 bits, only the first probed to radius 1, d = 2: found when the
        // first band holds 0 or 1 of the two bits: 1 - C(4,2) / C(8,2) = 1 - 6/28.
        let p = found_probability(&[4, 4], &[Some(1), None], 2);
        assert!((p - (1.0 - 6.0 / 28.0)).abs() < 1e-12);
    }
}
