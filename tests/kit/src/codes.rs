//! Synthetic 128-bit codes for the copy-search tests: a deterministic generator,
//! random codes, copies at an exact Hamming distance, and the records to store them.

use std::collections::BTreeSet;

use imgfeat_core::{BinaryCode, CodeRecord, ImageId, ModelVersion};

pub type Code128 = [u8; 16];

/// A small deterministic generator (SplitMix64), so the data is the same every run.
pub struct Rng(pub u64);

impl Rng {
    // An endless generator, not an iterator: `next` never ends, so no `Option`.
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniformly random 128-bit code.
    pub fn code128(&mut self) -> Code128 {
        let mut c = [0u8; 16];
        c[..8].copy_from_slice(&self.next().to_le_bytes());
        c[8..].copy_from_slice(&self.next().to_le_bytes());
        c
    }

    /// `code` with `d` distinct bits flipped, chosen uniformly.
    pub fn copy_at(&mut self, code: &Code128, d: u32) -> Code128 {
        let mut flipped = BTreeSet::new();
        while flipped.len() < d as usize {
            flipped.insert((self.next() % 128) as usize);
        }
        let mut out = *code;
        for bit in flipped {
            out[bit / 8] ^= 0x80 >> (bit % 8);
        }
        out
    }
}

pub fn distance(a: &Code128, b: &Code128) -> u32 {
    a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum()
}

/// The records that store `codes` (image ID, code) under `version`.
pub fn code_records(version: &ModelVersion, codes: &[(u64, Code128)]) -> Vec<CodeRecord> {
    codes
        .iter()
        .map(|(id, code)| CodeRecord {
            image_id: ImageId(*id),
            model_version: version.clone(),
            code: BinaryCode::from_bytes(128, code.to_vec()).expect("16 bytes are 128 bits"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_exactly_d_bits_away() {
        let mut rng = Rng(3);
        let code = rng.code128();
        for d in [0, 1, 27, 128] {
            assert_eq!(distance(&code, &rng.copy_at(&code, d)), d);
        }
    }
}
