//! One substring's hash table: rows bucketed by key in counting-sort (CSR) arrays, so a
//! bucket is a contiguous slice and the table costs 4 bytes per code plus its offsets.

use super::layout::Substring;

pub(crate) struct Table {
    offsets: Vec<u32>,
    rows: Vec<u32>,
}

impl Table {
    /// Buckets rows `0..n` of `codes` (`words` words each) by their key under `sub`.
    pub(crate) fn build(sub: &Substring, codes: &[u64], words: usize) -> Self {
        let n = codes.len() / words;
        let buckets = 1usize << sub.len;
        let mut offsets = vec![0u32; buckets + 1];
        for code in codes.chunks_exact(words) {
            offsets[sub.key(code) as usize + 1] += 1;
        }
        for b in 0..buckets {
            offsets[b + 1] += offsets[b];
        }
        let mut next = offsets[..buckets].to_vec();
        let mut rows = vec![0u32; n];
        for (row, code) in codes.chunks_exact(words).enumerate() {
            let slot = &mut next[sub.key(code) as usize];
            rows[*slot as usize] = row as u32;
            *slot += 1;
        }
        Self { offsets, rows }
    }

    #[inline]
    pub(crate) fn bucket(&self, key: u32) -> &[u32] {
        let k = key as usize;
        &self.rows[self.offsets[k] as usize..self.offsets[k + 1] as usize]
    }

    pub(crate) fn bytes(&self) -> usize {
        (self.offsets.len() + self.rows.len()) * 4
    }
}
