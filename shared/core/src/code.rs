use std::fmt;

use serde::{Deserialize, Serialize};

/// A K-bit binary code, packed big-endian within each byte: bit j is bit `7 - j % 8` of
/// byte `j / 8` (numpy `packbits`), so codes compare bit for bit with the Python reference.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinaryCode {
    bits: u32,
    bytes: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodeError {
    #[error("a code of {bits} bits needs {expected} bytes, got {got}")]
    Length {
        bits: u32,
        expected: usize,
        got: usize,
    },
    #[error("a code needs 1..=4096 bits, got {0}")]
    Bits(u32),
    #[error("codes of {0} and {1} bits cannot be compared")]
    Mismatch(u32, u32),
}

impl BinaryCode {
    pub fn from_bytes(bits: u32, bytes: Vec<u8>) -> Result<Self, CodeError> {
        if bits == 0 || bits > 4096 {
            return Err(CodeError::Bits(bits));
        }
        let expected = bits.div_ceil(8) as usize;
        if bytes.len() != expected {
            return Err(CodeError::Length {
                bits,
                expected,
                got: bytes.len(),
            });
        }
        // Padding bits past `bits` must be zero so that equal codes have equal bytes.
        let mut bytes = bytes;
        if !bits.is_multiple_of(8)
            && let Some(last) = bytes.last_mut()
        {
            *last &= 0xffu8 << (8 - bits % 8);
        }
        Ok(Self { bits, bytes })
    }

    /// Packs sign bits: bit j is set when `values[j] > 0`.
    pub fn from_signs(values: &[f32]) -> Result<Self, CodeError> {
        let bits = u32::try_from(values.len()).map_err(|_| CodeError::Bits(u32::MAX))?;
        let mut bytes = vec![0u8; values.len().div_ceil(8)];
        for (j, v) in values.iter().enumerate() {
            if *v > 0.0 {
                bytes[j / 8] |= 1 << (7 - j % 8);
            }
        }
        Self::from_bytes(bits, bytes)
    }

    pub fn bits(&self) -> u32 {
        self.bits
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn bit(&self, j: usize) -> bool {
        j < self.bits as usize && self.bytes[j / 8] & (1 << (7 - j % 8)) != 0
    }

    pub fn hamming(&self, other: &BinaryCode) -> Result<u32, CodeError> {
        if self.bits != other.bits {
            return Err(CodeError::Mismatch(self.bits, other.bits));
        }
        Ok(self
            .bytes
            .iter()
            .zip(&other.bytes)
            .map(|(a, b)| (a ^ b).count_ones())
            .sum())
    }

    /// The code as lowercase hex, the form shown to people and scripts.
    pub fn to_hex(&self) -> String {
        self.bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Splits the code into `chunks` contiguous pieces of whole bytes, for multi-index
    /// hashing: two codes within Hamming distance `chunks - 1` share at least one piece.
    pub fn chunks(&self, chunks: usize) -> Vec<&[u8]> {
        let n = self.bytes.len();
        let chunks = chunks.clamp(1, n.max(1));
        (0..chunks)
            .map(|i| &self.bytes[i * n / chunks..(i + 1) * n / chunks])
            .collect()
    }
}

impl fmt::Debug for BinaryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BinaryCode({} bits, {})", self.bits, self.to_hex())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_like_numpy_packbits() {
        // numpy.packbits([1,0,0,0,0,0,0,1, 0,1]) == [0x81, 0x40]
        let v = [1., -1., -1., -1., -1., -1., -1., 1., -1., 1.];
        let c = BinaryCode::from_signs(&v).unwrap();
        assert_eq!(c.as_bytes(), &[0x81, 0x40]);
        assert_eq!(c.bits(), 10);
        assert!(c.bit(0) && c.bit(7) && c.bit(9) && !c.bit(8) && !c.bit(10));
    }

    #[test]
    fn zero_is_not_positive() {
        let c = BinaryCode::from_signs(&[0.0; 8]).unwrap();
        assert_eq!(c.as_bytes(), &[0]);
    }

    #[test]
    fn hamming_counts_differing_bits_and_refuses_other_lengths() {
        let a = BinaryCode::from_bytes(16, vec![0xff, 0x00]).unwrap();
        let b = BinaryCode::from_bytes(16, vec![0x0f, 0x01]).unwrap();
        assert_eq!(a.hamming(&b).unwrap(), 5);
        assert_eq!(a.hamming(&a).unwrap(), 0);
        let c = BinaryCode::from_bytes(8, vec![0]).unwrap();
        assert_eq!(a.hamming(&c), Err(CodeError::Mismatch(16, 8)));
    }

    #[test]
    fn padding_bits_are_cleared_and_lengths_checked() {
        let a = BinaryCode::from_bytes(4, vec![0xff]).unwrap();
        assert_eq!(a.as_bytes(), &[0xf0]);
        assert!(BinaryCode::from_bytes(16, vec![0]).is_err());
        assert!(BinaryCode::from_bytes(0, vec![]).is_err());
    }

    #[test]
    fn chunks_cover_the_code() {
        let c = BinaryCode::from_bytes(64, (0..8).collect()).unwrap();
        let parts = c.chunks(4);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), c.as_bytes());
        assert_eq!(c.chunks(100).len(), 8);
    }
}
