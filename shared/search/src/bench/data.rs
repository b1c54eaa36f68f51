//! Synthetic catalogue codes: mostly independent random codes plus planted clusters of
//! copies (a seed code with a few bits flipped each), as re-uploads and edits make.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub(crate) struct Catalogue {
    pub ids: Vec<u64>,
    /// `words` words per code, row-aligned with `ids`.
    pub codes: Vec<u64>,
    /// The ids of each planted cluster.
    pub clusters: Vec<Vec<u64>>,
}

/// Share of codes that belong to a planted cluster.
pub(crate) const CLUSTERED: f64 = 0.10;
/// Cluster sizes are uniform in `2..=MAX_CLUSTER`.
pub(crate) const MAX_CLUSTER: usize = 10;

/// Ids are `row * odd constant`: unique, but not in row order, so builds really sort.
pub(crate) fn id_of(row: usize) -> u64 {
    (row as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `n` codes of `words` words; clustered copies flip `0..=max_flip` bits of their seed.
pub(crate) fn catalogue(n: usize, words: usize, max_flip: u32, seed: u64) -> Catalogue {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut codes = Vec::with_capacity(n * words);
    let mut clusters = Vec::new();
    let clustered = (n as f64 * CLUSTERED) as usize;
    let mut row = 0;
    while row < clustered {
        let size = rng
            .random_range(2..=MAX_CLUSTER)
            .min(clustered - row)
            .max(1);
        let seed_code: Vec<u64> = (0..words).map(|_| rng.random()).collect();
        let mut members = Vec::with_capacity(size);
        for _ in 0..size {
            let flips = rng.random_range(0..=max_flip);
            codes.extend(flip_bits(&seed_code, flips, &mut rng));
            members.push(id_of(row));
            row += 1;
        }
        if members.len() >= 2 {
            clusters.push(members);
        }
    }
    while row < n {
        codes.extend((0..words).map(|_| rng.random::<u64>()));
        row += 1;
    }
    Catalogue {
        ids: (0..n).map(id_of).collect(),
        codes,
        clusters,
    }
}

/// Share of queries that are edited copies of stored codes; the rest are random probes.
pub(crate) const QUERY_COPIES: f64 = 0.8;
/// Copy queries flip `0..=QUERY_MAX_FLIP` bits of a stored code.
pub(crate) const QUERY_MAX_FLIP: u32 = 10;

/// Query codes as packed bytes.
pub(crate) fn queries(cat: &Catalogue, words: usize, count: usize, seed: u64) -> Vec<Vec<u8>> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x5EED);
    let n = cat.ids.len();
    (0..count)
        .map(|_| {
            let words_of = if rng.random_bool(QUERY_COPIES) && n > 0 {
                let row = rng.random_range(0..n);
                let flips = rng.random_range(0..=QUERY_MAX_FLIP);
                flip_bits(&cat.codes[row * words..(row + 1) * words], flips, &mut rng)
            } else {
                (0..words).map(|_| rng.random()).collect()
            };
            words_of.iter().flat_map(|w| w.to_be_bytes()).collect()
        })
        .collect()
}

/// A copy of `code` with `flips` distinct bits flipped.
pub(crate) fn flip_bits(code: &[u64], flips: u32, rng: &mut impl Rng) -> Vec<u64> {
    let bits = code.len() * 64;
    let mut out = code.to_vec();
    let mut done = 0;
    while done < flips.min(bits as u32) {
        let b = rng.random_range(0..bits);
        let before = out[b / 64];
        out[b / 64] ^= 1 << (b % 64);
        // Count a bit once, even if drawn again (flipping it back and forth).
        if (before ^ code[b / 64]) >> (b % 64) & 1 == 0 {
            done += 1;
        } else {
            out[b / 64] = before;
        }
    }
    out
}
