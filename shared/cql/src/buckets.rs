//! Multi-index hashing keys. A code cut into `m` pieces lands in `m` buckets, one per
//! piece; two codes within Hamming distance `m - 1` agree on at least one whole piece
//! (pigeonhole), so reading the probe's `m` buckets finds every such neighbour without
//! scanning the table.
//!
//! Bucket partitions hold about `N / 2^(bits/m)` rows each: 500 M images with 64-bit
//! codes and `m = 4` give ~7,600 rows (~300 KB) a partition, comfortably small.

use imgfeat_core::BinaryCode;

/// `(chunk_index, chunk bytes)` for every bucket `code` belongs to.
pub fn bucket_keys(code: &BinaryCode, chunks: usize) -> Vec<(i32, Vec<u8>)> {
    code.chunks(chunks)
        .into_iter()
        .enumerate()
        .map(|(i, piece)| (i32::try_from(i).unwrap_or(i32::MAX), piece.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(v: u64) -> BinaryCode {
        BinaryCode::from_bytes(64, v.to_be_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_64_bit_code_gives_four_two_byte_keys() {
        let keys = bucket_keys(&code(0x0102_0304_0506_0708), 4);
        assert_eq!(
            keys,
            vec![
                (0, vec![1, 2]),
                (1, vec![3, 4]),
                (2, vec![5, 6]),
                (3, vec![7, 8])
            ]
        );
    }

    #[test]
    fn every_code_within_distance_three_shares_a_bucket() {
        // A cheap deterministic generator: flip up to 3 pseudo-random bits, many times.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..5_000 {
            let base = next();
            let mut other = base;
            for _ in 0..(next() % 4) {
                other ^= 1 << (next() % 64);
            }
            let a = bucket_keys(&code(base), 4);
            let b = bucket_keys(&code(other), 4);
            assert!(a.iter().any(|k| b.contains(k)), "{base:x} vs {other:x}");
        }
    }

    #[test]
    fn distance_four_can_escape_every_bucket() {
        let a = bucket_keys(&code(0), 4);
        let b = bucket_keys(&code(0x0001_0001_0001_0001), 4);
        assert!(!a.iter().any(|k| b.contains(k)));
    }
}
