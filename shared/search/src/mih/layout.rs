//! How a code is cut into substrings, one per hash table.

use crate::SearchError;

/// Longest substring a table is built for: its bucket offsets take `4 x 2^bits` bytes.
pub(crate) const MAX_SUBSTRING_BITS: u32 = 24;

/// Bits `[start, start + len)` of the code, in packbits order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Substring {
    pub start: u32,
    pub len: u32,
}

impl Substring {
    /// The substring of a code as a table key.
    #[inline]
    pub(crate) fn key(&self, code: &[u64]) -> u32 {
        let word = (self.start / 64) as usize;
        let off = self.start % 64;
        let mask = (1u64 << self.len) - 1;
        let v = if off + self.len <= 64 {
            code[word] >> (64 - off - self.len)
        } else {
            // Straddles two words: read them as one 128-bit value.
            let pair = (u128::from(code[word]) << 64) | u128::from(code[word + 1]);
            (pair >> (128 - off - self.len)) as u64
        };
        (v & mask) as u32
    }

    /// The substring's bits as a mask over the code's words.
    fn word_mask(&self, words: usize) -> Vec<u64> {
        let mut mask = vec![0u64; words];
        for p in self.start..self.start + self.len {
            mask[(p / 64) as usize] |= 1 << (63 - p % 64);
        }
        mask
    }
}

/// `m` substrings of near-equal length covering the code (the first `bits % m` one bit longer).
pub(crate) fn split(bits: u32, m: u32) -> Result<Vec<Substring>, SearchError> {
    let min_m = bits.div_ceil(MAX_SUBSTRING_BITS);
    if m < min_m || m > bits {
        return Err(SearchError::Substrings {
            bits,
            substrings: m,
            max: MAX_SUBSTRING_BITS,
        });
    }
    let (base, extra) = (bits / m, bits % m);
    let mut start = 0;
    Ok((0..m)
        .map(|j| {
            let len = base + u32::from(j < extra);
            let s = Substring { start, len };
            start += len;
            s
        })
        .collect())
}

/// The tables of an index: their substrings, and whether the tables after the first
/// hold their codes ([`super::inline::InlineTable`]) or list rows.
pub(crate) struct Plan {
    pub subs: Vec<Substring>,
    pub inline: bool,
}

/// 64-bit codes in a 16-bit first table and two 24-bit inline tables, which store the
/// other 40 bits of each code in 5 bytes.
const INLINE_LENS: [u32; 3] = [16, 24, 24];
/// Per code: the code and id (16), the id -> row map (4) and 5 bytes in each inline table.
const INLINE_BYTES_PER_CODE: usize = 16 + 4 + 5 + 5;

/// The layout for `n` codes. Inline tables need no random read per candidate, which is
/// what a query spends its time on once tables list tens of millions of rows; their
/// 24-bit offsets take a fixed 134 MB, so they are used from the size where the whole
/// index stays within twice the raw codes and ids (about 67 M codes).
pub(crate) fn plan(bits: u32, n: usize) -> Result<Plan, SearchError> {
    if bits == 64 && inline_fits(n) {
        return Ok(Plan {
            subs: from_lens(&INLINE_LENS),
            inline: true,
        });
    }
    Ok(Plan {
        subs: split(bits, substrings_for(bits, n))?,
        inline: false,
    })
}

fn inline_fits(n: usize) -> bool {
    let offsets: usize = INLINE_LENS
        .iter()
        .map(|&len| ((1usize << len) + 1) * 4)
        .sum();
    INLINE_BYTES_PER_CODE * n + offsets <= 2 * 16 * n
}

/// Consecutive substrings of the given lengths.
fn from_lens(lens: &[u32]) -> Vec<Substring> {
    let mut start = 0;
    lens.iter()
        .map(|&len| {
            let s = Substring { start, len };
            start += len;
            s
        })
        .collect()
}

/// Norouzi et al.'s choice: substrings of about log2(N) bits, so a bucket holds about one
/// code, capped so the bucket offsets stay small.
pub(crate) fn substrings_for(bits: u32, n: usize) -> u32 {
    let log2n = (n.max(2) as f64).log2().round() as u32;
    let s = log2n.clamp(8, MAX_SUBSTRING_BITS);
    bits.div_ceil(s)
}

/// Every substring's mask, flattened `m x words`.
pub(crate) fn masks(subs: &[Substring], words: usize) -> Vec<u64> {
    subs.iter().flat_map(|s| s.word_mask(words)).collect()
}

/// Calls `f` with every `len`-bit mask of exactly `r` set bits (Gosper's hack).
#[inline]
pub(crate) fn for_each_flip(len: u32, r: u32, mut f: impl FnMut(u32)) {
    if r > len {
        return;
    }
    if r == 0 {
        f(0);
        return;
    }
    let end = 1u64 << len;
    let mut v: u64 = (1 << r) - 1;
    while v < end {
        f(v as u32);
        let t = v | (v - 1);
        v = (t + 1) | (((!t & (t + 1)) - 1) >> (v.trailing_zeros() + 1));
    }
}

/// C(n, r) as a float: only used to price a probing step.
pub(crate) fn binomial(n: u32, r: u32) -> f64 {
    if r > n {
        return 0.0;
    }
    let r = r.min(n - r);
    (0..r).fold(1.0, |acc, i| acc * f64::from(n - i) / f64::from(i + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flips_enumerate_each_mask_once() {
        for len in [1, 5, 13] {
            for r in 0..=len {
                let mut seen = Vec::new();
                for_each_flip(len, r, |m| seen.push(m));
                assert!(seen.iter().all(|m| m.count_ones() == r && *m < (1 << len)));
                let n = seen.len();
                seen.sort_unstable();
                seen.dedup();
                assert_eq!(seen.len(), n);
                assert_eq!(n as f64, binomial(len, r));
            }
        }
    }

    #[test]
    fn keys_read_packbits_order_across_words() {
        // Bit 60..68 straddles the first two words: set code bits 60 and 67.
        let code = [0b1000u64, 1u64 << 60];
        let s = Substring { start: 60, len: 8 };
        assert_eq!(s.key(&code), 0b1000_0001);
        let masks = masks(&[s], 2);
        assert_eq!(masks, vec![0xF, 0xF << 60]);
    }

    #[test]
    fn inline_tables_from_the_size_that_fits_twice_the_raw_codes() {
        assert!(!plan(64, 60_000_000).unwrap().inline);
        let big = plan(64, 100_000_000).unwrap();
        assert!(big.inline);
        let lens: Vec<u32> = big.subs.iter().map(|s| s.len).collect();
        assert_eq!(lens, vec![16, 24, 24]);
        assert_eq!(big.subs[2].start, 40);
        assert!(!plan(256, 100_000_000).unwrap().inline);
        let small = plan(64, 1_000_000).unwrap();
        assert!(!small.inline && small.subs.len() == 4);
    }

    #[test]
    fn split_covers_the_code() {
        let subs = split(64, 3).unwrap();
        assert_eq!(
            subs.iter().map(|s| s.len).collect::<Vec<_>>(),
            vec![22, 21, 21]
        );
        assert!(split(64, 2).is_err());
        assert!(split(64, 65).is_err());
    }
}
