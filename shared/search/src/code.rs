//! Codes as fixed-width words: packed bytes (numpy `packbits`, big-endian bits) read as
//! big-endian `u64`s, so bit `p` of the code is bit `63 - p % 64` of word `p / 64`.

use crate::SearchError;

/// Number of `u64` words in a code of `bits` bits.
pub(crate) fn words_for(bits: u32) -> Result<usize, SearchError> {
    match bits {
        64 | 128 | 256 => Ok(bits as usize / 64),
        other => Err(SearchError::UnsupportedBits(other)),
    }
}

/// Appends the words of `code` to `out`, refusing a code of the wrong length.
pub(crate) fn push_words(code: &[u8], words: usize, out: &mut Vec<u64>) -> Result<(), SearchError> {
    if code.len() != words * 8 {
        return Err(SearchError::CodeLength {
            expected: words * 8,
            got: code.len(),
        });
    }
    out.extend(code.chunks_exact(8).map(|c| {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        u64::from_be_bytes(b)
    }));
    Ok(())
}

/// The probe as words, checked against the index's width.
pub(crate) fn probe_words(code: &[u8], words: usize) -> Result<Vec<u64>, SearchError> {
    let mut out = Vec::with_capacity(words);
    push_words(code, words, &mut out)?;
    Ok(out)
}

pub(crate) fn to_bytes(words: &[u64]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_be_bytes()).collect()
}

#[inline(always)]
pub(crate) fn distance<const W: usize>(a: &[u64; W], b: &[u64; W]) -> u32 {
    let mut d = 0;
    for i in 0..W {
        d += (a[i] ^ b[i]).count_ones();
    }
    d
}

/// Runs `$body` with `$w` bound as a const width (1, 2 or 4 words), so the popcount loop
/// is unrolled for the index's code length instead of looping over a runtime width.
macro_rules! with_width {
    ($words:expr, $w:ident => $body:expr) => {
        match $words {
            1 => {
                const $w: usize = 1;
                $body
            }
            2 => {
                const $w: usize = 2;
                $body
            }
            _ => {
                const $w: usize = 4;
                $body
            }
        }
    };
}
pub(crate) use with_width;

/// `codes` seen as codes of `W` words (a trailing partial code cannot exist: we only push whole ones).
#[inline]
pub(crate) fn as_codes<const W: usize>(codes: &[u64]) -> &[[u64; W]] {
    codes.as_chunks::<W>().0
}

#[inline]
pub(crate) fn as_probe<const W: usize>(probe: &[u64]) -> [u64; W] {
    let mut p = [0u64; W];
    p.copy_from_slice(&probe[..W]);
    p
}
