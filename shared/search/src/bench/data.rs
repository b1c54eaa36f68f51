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

/// How far the held-out copies of the catalogue photos lie from their originals under
/// the head the README recommends for "is this upload a copy?" (128-bit
/// `deepbit128_whole_effnet_lite0` on whole images): `copy_histogram[d]`, copies at
/// distance `d`, of 58 photos x 27 copies. Measured, not derived:
/// `imgfeat --json eval ../shared/catalog-photos --part held-out --copies 27 --seed 11
/// --models ssd_mobilenetv2_oidv4_24cls_whole_image.toml,efficientnet_lite0_imagenet.toml,deepbit128_whole_effnet_lite0.toml`
/// (2026-12-06). 99.2 % lie within 27 bits, 98.2 % within 24, half within 7. The one
/// table to replace when the head changes.
pub(crate) const COPY_DISTANCES_128: [u32; 39] = [
    88, 106, 114, 105, 105, 88, 102, 76, 81, 78, 75, 72, 75, 68, 47, 55, 41, 34, 24, 24, 20, 21,
    25, 5, 9, 9, 3, 3, 5, 1, 1, 2, 0, 1, 1, 1, 0, 0, 1,
];

/// A copy's distance to its original, drawn from [`COPY_DISTANCES_128`].
pub(crate) fn copy_distance(rng: &mut impl Rng) -> u32 {
    let total: u32 = COPY_DISTANCES_128.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (d, &count) in COPY_DISTANCES_128.iter().enumerate() {
        if pick < count {
            return d as u32;
        }
        pick -= count;
    }
    COPY_DISTANCES_128.len() as u32 - 1
}

/// A catalogue of uniform random codes with planted copy groups: an original and 1 to
/// `MAX_CLUSTER - 1` copies, each [`copy_distance`] bits from it (bits drawn uniformly).
/// Real catalogue codes are not uniform; random ones put distinct pairs ~64 bits apart,
/// which is what the index's cost depends on.
pub(crate) struct Copies {
    pub cat: Catalogue,
    /// Per planted group: the original's id and its copies' ids with their distances.
    pub groups: Vec<(u64, Vec<(u64, u32)>)>,
}

pub(crate) fn copies(n: usize, words: usize, seed: u64) -> Copies {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut codes = Vec::with_capacity(n * words);
    let mut groups = Vec::new();
    let clustered = (n as f64 * CLUSTERED) as usize;
    let mut row = 0;
    while row + 2 <= clustered {
        let copies = rng.random_range(1..MAX_CLUSTER).min(clustered - row - 1);
        let original: Vec<u64> = (0..words).map(|_| rng.random()).collect();
        codes.extend_from_slice(&original);
        let id = id_of(row);
        row += 1;
        let mut members = Vec::with_capacity(copies);
        for _ in 0..copies {
            let d = copy_distance(&mut rng);
            codes.extend(flip_bits(&original, d, &mut rng));
            members.push((id_of(row), d));
            row += 1;
        }
        groups.push((id, members));
    }
    while row < n {
        codes.extend((0..words).map(|_| rng.random::<u64>()));
        row += 1;
    }
    Copies {
        cat: Catalogue {
            ids: (0..n).map(id_of).collect(),
            codes,
            clusters: Vec::new(),
        },
        groups,
    }
}

/// An upload's code, and for a copy the row it copies and its distance to it.
pub(crate) struct Upload {
    pub probe: Vec<u8>,
    pub copy_of: Option<(usize, u32)>,
}

/// Upload probes: `count` codes, half new copies of stored codes, half uniform random
/// (uploads of new photos).
pub(crate) fn uploads(cat: &Catalogue, words: usize, count: usize, seed: u64) -> Vec<Upload> {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x0C0F);
    let n = cat.ids.len();
    (0..count)
        .map(|i| {
            if i % 2 == 0 && n > 0 {
                let row = rng.random_range(0..n);
                let d = copy_distance(&mut rng);
                let code = flip_bits(&cat.codes[row * words..(row + 1) * words], d, &mut rng);
                Upload {
                    probe: to_bytes(&code),
                    copy_of: Some((row, d)),
                }
            } else {
                let code: Vec<u64> = (0..words).map(|_| rng.random()).collect();
                Upload {
                    probe: to_bytes(&code),
                    copy_of: None,
                }
            }
        })
        .collect()
}

fn to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}
