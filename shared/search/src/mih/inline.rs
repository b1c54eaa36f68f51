//! A table that holds its codes instead of pointing at them (64-bit codes only).
//!
//! A listed table costs a random read of the code for every candidate, and at 100 M
//! codes those reads are the whole query. An inline table stores, bucket by bucket,
//! each code's bits outside its substring, packed in as few bytes as they need (40 bits
//! in 5 bytes for a 24-bit key): the bucket's key plus the stored bits give the code, so
//! a candidate's distance costs no read beyond the bucket. It stores no row either:
//! a code within reach is found through the first table, whose buckets are runs of
//! rows sorted by code (see [`super::table::Primary`]). Within a bucket the codes are
//! sorted, so copies of one code are adjacent and resolved once.

use rayon::prelude::*;

use super::layout::Substring;
use super::table::Offsets;
use crate::memory;

pub(crate) struct InlineTable {
    offsets: Offsets,
    /// Bits of the code below the substring.
    low: u32,
    /// Bits of the code above the substring (`start`).
    high: u32,
    /// Bytes per stored code.
    width: usize,
    /// `width` bytes per code, bucket order, then 8 bytes of padding so every code
    /// reads as one unaligned `u64`.
    data: Vec<u8>,
}

impl InlineTable {
    pub(crate) fn build(sub: &Substring, codes: &[u64]) -> Self {
        let low = 64 - sub.start - sub.len;
        let width = (64 - sub.len).div_ceil(8) as usize;
        let mut table = Self {
            offsets: Offsets::default(),
            low,
            high: sub.start,
            width,
            data: Vec::new(),
        };
        // Rotating the key to the top turns (key, rest) order into plain integer order.
        let mut rotated: Vec<u64> = codes
            .par_iter()
            .map(|&c| (u64::from(sub.key(&[c])) << (64 - sub.len)) | table.rest(c))
            .collect();
        rotated.par_sort_unstable();
        table.offsets = Offsets::count(
            sub.len,
            rotated.iter().map(|&v| (v >> (64 - sub.len)) as u32),
        );
        let mut data = vec![0u8; rotated.len() * width + 8];
        memory::advise_huge_pages(&data);
        data.par_chunks_mut(width)
            .zip(rotated.par_iter())
            .for_each(|(out, &v)| out.copy_from_slice(&v.to_le_bytes()[..width]));
        table.data = data;
        table
    }

    /// The code's bits outside the substring, as one number.
    #[inline]
    fn rest(&self, code: u64) -> u64 {
        let below = code & low_mask(self.low);
        let above = if self.high == 0 {
            0
        } else {
            code >> (64 - self.high)
        };
        (above << self.low) | below
    }

    /// The code whose key is `key` and whose other bits are `rest`.
    #[inline]
    fn code(&self, key: u32, rest: u64) -> u64 {
        let below = rest & low_mask(self.low);
        let above = if self.high == 0 {
            0
        } else {
            (rest >> self.low) << (64 - self.high)
        };
        above | (u64::from(key) << self.low) | below
    }

    /// Calls `f` with every code in the bucket of `key`, in ascending order of the bits
    /// outside the substring (so equal codes are adjacent).
    #[inline]
    pub(crate) fn for_each_code(&self, key: u32, mut f: impl FnMut(u64)) {
        let range = self.offsets.range(key);
        let mask = low_mask(self.width as u32 * 8);
        for i in range {
            let at = i * self.width;
            let mut word = [0u8; 8];
            word.copy_from_slice(&self.data[at..at + 8]);
            f(self.code(key, u64::from_le_bytes(word) & mask));
        }
    }

    pub(crate) fn bytes(&self) -> usize {
        self.offsets.bytes() + self.data.len()
    }

    /// Fetches where bucket `key` starts; a few keys later [`Self::prefetch_bucket`]
    /// finds it in the cache.
    #[inline]
    pub(crate) fn prefetch_offsets(&self, key: u32) {
        self.offsets.prefetch(key);
    }

    /// Fetches the first codes of bucket `key`.
    #[inline]
    pub(crate) fn prefetch_bucket(&self, key: u32) {
        let start = self.offsets.range(key).start;
        if let Some(b) = self.data.get(start * self.width) {
            memory::prefetch(b);
        }
    }
}

/// The `n` lowest bits set (`n` <= 64).
#[inline]
fn low_mask(n: u32) -> u64 {
    if n >= 64 { u64::MAX } else { (1u64 << n) - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_come_back_whole_from_their_buckets() {
        let codes: Vec<u64> = vec![
            0,
            u64::MAX,
            0x0123_4567_89AB_CDEF,
            0xFEDC_BA98_7654_3210,
            0x0123_4567_89AB_CDEF,
            1 << 63,
            1,
        ];
        for (start, len) in [(0, 16), (16, 24), (40, 24), (8, 8), (21, 21)] {
            let sub = Substring { start, len };
            let table = InlineTable::build(&sub, &codes);
            assert_eq!(table.width, (64 - len).div_ceil(8) as usize);
            for &c in &codes {
                let key = sub.key(&[c]);
                let mut bucket = Vec::new();
                table.for_each_code(key, |got| bucket.push(got));
                assert!(bucket.contains(&c), "{c:x} at {start}+{len}");
                assert!(bucket.iter().all(|&got| sub.key(&[got]) == key));
                assert!(bucket.is_sorted_by_key(|&got| table.rest(got)));
            }
            // The duplicated code sits twice in its bucket.
            let key = sub.key(&[codes[2]]);
            let mut copies = 0;
            table.for_each_code(key, |got| copies += usize::from(got == codes[2]));
            assert_eq!(copies, 2);
        }
    }
}
