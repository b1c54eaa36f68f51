//! Which replica holds which image: `shard = i of S`, by a hash of the image ID so that
//! IDs handed out in runs (ranges, timestamps) still spread evenly over the shards.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ShardSpec {
    /// This replica's shard, `0..count`.
    pub index: u32,
    /// How many shards the version is split into.
    pub count: u32,
}

impl Default for ShardSpec {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl ShardSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.count == 0 || self.index >= self.count {
            return Err(format!(
                "search.shard: index {} of count {} (need 0 <= index < count)",
                self.index, self.count
            ));
        }
        Ok(())
    }

    /// Whether this shard holds `id`.
    pub fn owns(&self, id: u64) -> bool {
        self.count <= 1 || shard_of(id, self.count) == self.index
    }
}

/// SplitMix64's finaliser: every input bit moves every output bit, so consecutive IDs
/// land on unrelated shards.
pub fn shard_of(id: u64, count: u32) -> u32 {
    let mut z = id.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z % u64::from(count.max(1))) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_id_has_exactly_one_shard() {
        for count in [1, 2, 3, 8] {
            for id in (0..2_000).chain([u64::MAX, 1 << 63]) {
                let owners = (0..count)
                    .filter(|&index| ShardSpec { index, count }.owns(id))
                    .count();
                assert_eq!(owners, 1, "id {id} of {count} shards");
            }
        }
    }

    #[test]
    fn consecutive_ids_spread_evenly() {
        let count = 4;
        let mut per = [0u32; 4];
        for id in 1_000_000..1_040_000u64 {
            per[shard_of(id, count) as usize] += 1;
        }
        for n in per {
            assert!((9_000..11_000).contains(&n), "{per:?}");
        }
    }

    #[test]
    fn impossible_specs_are_refused() {
        assert!(ShardSpec { index: 2, count: 2 }.validate().is_err());
        assert!(ShardSpec { index: 0, count: 0 }.validate().is_err());
        assert!(ShardSpec { index: 1, count: 2 }.validate().is_ok());
    }
}
