//! The substrings' hash tables, as counting-sort (CSR) arrays so a bucket is a contiguous
//! slice. The index keeps its rows in the first substring's key order, so that table is
//! only its offsets: a bucket is a run of rows, read in order. Every other table lists
//! its rows (4 bytes per code) bucket by bucket.

use std::ops::Range;

use rayon::prelude::*;

use super::layout::Substring;
use crate::memory;

/// Where each key's bucket starts: `2^len + 1` offsets.
#[derive(Default)]
pub(crate) struct Offsets(Vec<u32>);

impl Offsets {
    /// Counts of each key among `keys`, accumulated: bucket `k` is `[o[k], o[k + 1])`.
    pub(crate) fn count(len: u32, keys: impl Iterator<Item = u32>) -> Self {
        let buckets = 1usize << len;
        let mut offsets = vec![0u32; buckets + 1];
        memory::advise_huge_pages(&offsets);
        for key in keys {
            offsets[key as usize + 1] += 1;
        }
        for b in 0..buckets {
            offsets[b + 1] += offsets[b];
        }
        Self(offsets)
    }

    #[inline]
    pub(crate) fn range(&self, key: u32) -> Range<usize> {
        let k = key as usize;
        self.0[k] as usize..self.0[k + 1] as usize
    }

    pub(crate) fn bytes(&self) -> usize {
        self.0.len() * 4
    }

    /// Fetches the start of bucket `key` into the cache ahead of its use.
    #[inline]
    pub(crate) fn prefetch(&self, key: u32) {
        if let Some(o) = self.0.get(key as usize) {
            memory::prefetch(o);
        }
    }
}

/// Rows `0..n` of `codes` (`words` words each, sorted by id) reordered by their key under
/// the first substring. Returns the reordered codes and ids, the table's offsets, and for
/// each id rank the row it moved to (the id -> row map: ascending ids, so a binary search).
pub(crate) struct Primary {
    pub codes: Vec<u64>,
    pub ids: Vec<u64>,
    pub offsets: Offsets,
    pub by_id: Vec<u32>,
}

impl Primary {
    pub(crate) fn build(sub: &Substring, codes: &[u64], ids: &[u64], words: usize) -> Self {
        let n = ids.len();
        let offsets = Offsets::count(sub.len, codes.chunks_exact(words).map(|c| sub.key(c)));
        let mut next: Vec<u32> = offsets.0[..offsets.0.len() - 1].to_vec();
        let mut out_codes = vec![0u64; codes.len()];
        memory::advise_huge_pages(&out_codes);
        let mut out_ids = vec![0u64; n];
        let mut by_id = vec![0u32; n];
        for (rank, (code, &id)) in codes.chunks_exact(words).zip(ids).enumerate() {
            let slot = &mut next[sub.key(code) as usize];
            let row = *slot as usize;
            *slot += 1;
            out_codes[row * words..(row + 1) * words].copy_from_slice(code);
            out_ids[row] = id;
            by_id[rank] = row as u32;
        }
        Self {
            codes: out_codes,
            ids: out_ids,
            offsets,
            by_id,
        }
    }

    /// As [`Primary::build`] for 64-bit codes, with each bucket's rows also sorted by
    /// code (ties in id order), so a code is found in its bucket by binary search: what
    /// inline tables, which store no rows, resolve their candidates through. The first
    /// substring starts at bit 0, so key order then code order is plain code order.
    pub(crate) fn build_by_code(sub: &Substring, codes: &[u64], ids: &[u64]) -> Self {
        let mut order: Vec<u128> = codes
            .par_iter()
            .enumerate()
            .map(|(rank, &c)| (u128::from(c) << 64) | rank as u128)
            .collect();
        order.par_sort_unstable();
        let n = ids.len();
        let mut out_codes = Vec::with_capacity(n);
        memory::advise_huge_pages(&out_codes);
        let mut out_ids = Vec::with_capacity(n);
        let mut by_id = vec![0u32; n];
        for (row, v) in order.into_iter().enumerate() {
            let rank = v as u64 as usize;
            out_codes.push((v >> 64) as u64);
            out_ids.push(ids[rank]);
            by_id[rank] = row as u32;
        }
        let offsets = Offsets::count(sub.len, out_codes.iter().map(|&c| sub.key(&[c])));
        Self {
            codes: out_codes,
            ids: out_ids,
            offsets,
            by_id,
        }
    }
}

pub(crate) struct Table {
    offsets: Offsets,
    rows: Vec<u32>,
}

impl Table {
    /// Buckets rows `0..n` of `codes` (`words` words each) by their key under `sub`.
    pub(crate) fn build(sub: &Substring, codes: &[u64], words: usize) -> Self {
        let n = codes.len() / words;
        let offsets = Offsets::count(sub.len, codes.chunks_exact(words).map(|c| sub.key(c)));
        let mut next: Vec<u32> = offsets.0[..offsets.0.len() - 1].to_vec();
        let mut rows = vec![0u32; n];
        memory::advise_huge_pages(&rows);
        for (row, code) in codes.chunks_exact(words).enumerate() {
            let slot = &mut next[sub.key(code) as usize];
            rows[*slot as usize] = row as u32;
            *slot += 1;
        }
        Self { offsets, rows }
    }

    #[inline]
    pub(crate) fn bucket(&self, key: u32) -> &[u32] {
        &self.rows[self.offsets.range(key)]
    }

    #[inline]
    pub(crate) fn offsets(&self) -> &Offsets {
        &self.offsets
    }

    /// Fetches the first rows of the bucket that starts at `start`.
    #[inline]
    pub(crate) fn prefetch_rows(&self, start: usize) {
        if let Some(r) = self.rows.get(start) {
            memory::prefetch(r);
        }
    }

    #[inline]
    pub(crate) fn rows(&self, range: Range<usize>) -> &[u32] {
        &self.rows[range]
    }

    pub(crate) fn bytes(&self) -> usize {
        self.offsets.bytes() + self.rows.len() * 4
    }
}
