//! Test codes: uniform random ones and clusters of copies (a seed with 0-20 bits flipped).
#![allow(dead_code)]

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

pub fn rng(seed: u64) -> SmallRng {
    SmallRng::seed_from_u64(seed)
}

pub fn random_code(bits: u32, rng: &mut SmallRng) -> Vec<u8> {
    (0..bits / 8).map(|_| rng.random()).collect()
}

/// A copy of `code` with up to `max_flips` bits flipped (a bit may be drawn twice).
pub fn flipped(code: &[u8], max_flips: u32, rng: &mut SmallRng) -> Vec<u8> {
    let mut out = code.to_vec();
    for _ in 0..rng.random_range(0..=max_flips) {
        let b = rng.random_range(0..code.len() * 8);
        out[b / 8] ^= 0x80 >> (b % 8);
    }
    out
}

/// `n` codes, `clustered` of every 100 drawn as copies of earlier codes (0-20 bits flipped).
pub fn codes(bits: u32, n: usize, clustered: u32, rng: &mut SmallRng) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::with_capacity(n);
    for _ in 0..n {
        let code = if !out.is_empty() && rng.random_range(0..100) < clustered {
            let seed = &out[rng.random_range(0..out.len())];
            flipped(seed, 20, rng)
        } else {
            random_code(bits, rng)
        };
        out.push(code);
    }
    out
}

/// Probes: copies of stored codes (0-20 bits flipped) and random codes, half each.
pub fn probes(bits: u32, stored: &[Vec<u8>], n: usize, rng: &mut SmallRng) -> Vec<Vec<u8>> {
    (0..n)
        .map(|_| {
            if !stored.is_empty() && rng.random_bool(0.5) {
                flipped(&stored[rng.random_range(0..stored.len())], 20, rng)
            } else {
                random_code(bits, rng)
            }
        })
        .collect()
}
