//! The code scan's token ranges and cursors. Pure, so that covering the ring exactly once
//! and decoding every cursor an attacker or a bug could hand back is tested without a server.
//!
//! A scan walks the Murmur3 ring in [`RANGES`] contiguous slices, each paged by the
//! server. Slices (rather than one full-table page stream) keep each request a bounded
//! token range, which any coordinator serves from its own replicas, and let a loader
//! resume or spread the work by slice.

use imgfeat_core::ports::{ScanCursor, StoreError};

/// Slices of the token ring a scan walks through, in order.
pub const RANGES: u32 = 64;

/// The inclusive token bounds of slice `i` of `n`. Together the slices cover every i64
/// exactly once (Murmur3 never yields `i64::MIN`, but covering it costs nothing).
pub fn token_range(i: u32, n: u32) -> (i64, i64) {
    let width = (u64::MAX / u64::from(n.max(1))) as u128 + 1;
    let lo = i128::from(i64::MIN) + width as i128 * i128::from(i);
    let hi = if i + 1 >= n {
        i128::from(i64::MAX)
    } else {
        lo + width as i128 - 1
    };
    (clamp(lo), clamp(hi))
}

fn clamp(v: i128) -> i64 {
    i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX })
}

/// Where a scan stands: the slice, and the server's paging state within it (empty at the
/// slice's start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub range: u32,
    pub paging: Vec<u8>,
}

impl Position {
    pub fn to_cursor(&self) -> ScanCursor {
        let mut bytes = self.range.to_be_bytes().to_vec();
        bytes.extend_from_slice(&self.paging);
        ScanCursor(bytes)
    }

    pub fn from_cursor(cursor: Option<&ScanCursor>) -> Result<Position, StoreError> {
        let Some(ScanCursor(bytes)) = cursor else {
            return Ok(Position {
                range: 0,
                paging: Vec::new(),
            });
        };
        let bad = || StoreError::Invalid("not a code scan cursor of the CQL store".into());
        let head: [u8; 4] = bytes
            .get(..4)
            .and_then(|h| h.try_into().ok())
            .ok_or_else(bad)?;
        let range = u32::from_be_bytes(head);
        if range >= RANGES {
            return Err(bad());
        }
        Ok(Position {
            range,
            paging: bytes[4..].to_vec(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_ring_exactly_once_in_order() {
        for n in [1, 2, 3, 7, RANGES, 1000] {
            let mut next = i64::MIN;
            for i in 0..n {
                let (lo, hi) = token_range(i, n);
                assert_eq!(lo, next, "slice {i} of {n}");
                assert!(lo <= hi, "slice {i} of {n}");
                if i + 1 < n {
                    next = hi + 1;
                } else {
                    assert_eq!(hi, i64::MAX, "last slice of {n}");
                }
            }
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_bytes_are_refused() {
        for pos in [
            Position {
                range: 0,
                paging: Vec::new(),
            },
            Position {
                range: RANGES - 1,
                paging: vec![0xff; 300],
            },
        ] {
            assert_eq!(Position::from_cursor(Some(&pos.to_cursor())).unwrap(), pos);
        }
        assert_eq!(Position::from_cursor(None).unwrap().range, 0);
        for bad in [
            vec![],
            vec![0, 0, 1],
            RANGES.to_be_bytes().to_vec(),
            vec![0xff; 8],
        ] {
            let err = Position::from_cursor(Some(&ScanCursor(bad))).unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{err}");
        }
    }
}
