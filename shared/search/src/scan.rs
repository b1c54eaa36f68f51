//! The linear-scan kernel shared by [`crate::LinearScan`], the multi-index's overflow and
//! its fallback when probing would cost more than reading every code.

use crate::Hit;
use crate::code::distance;
use crate::topk::TopK;

/// Deleted rows, one bit each.
#[derive(Debug, Default, Clone)]
pub(crate) struct Tombstones {
    bits: Vec<u64>,
    count: usize,
}

impl Tombstones {
    #[inline]
    pub(crate) fn is_dead(&self, row: usize) -> bool {
        self.bits
            .get(row / 64)
            .is_some_and(|w| w >> (row % 64) & 1 == 1)
    }

    pub(crate) fn kill(&mut self, row: usize) {
        if self.bits.len() <= row / 64 {
            self.bits.resize(row / 64 + 1, 0);
        }
        let w = &mut self.bits[row / 64];
        if *w >> (row % 64) & 1 == 0 {
            *w |= 1 << (row % 64);
            self.count += 1;
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.count
    }
}

/// Offers every live code of `codes` (rows `first..`) to `top`.
#[inline]
pub(crate) fn knn<const W: usize>(
    codes: &[[u64; W]],
    ids: &[u64],
    first: usize,
    probe: &[u64; W],
    dead: &Tombstones,
    top: &mut TopK,
) {
    let mut bound = top.bound();
    for (i, (c, &id)) in codes.iter().zip(ids).enumerate() {
        let d = distance(c, probe);
        if d <= bound && !dead.is_dead(first + i) {
            top.offer(d, id);
            bound = top.bound();
        }
    }
}

/// Pushes every live code within `radius` of the probe.
#[inline]
pub(crate) fn within<const W: usize>(
    codes: &[[u64; W]],
    ids: &[u64],
    first: usize,
    probe: &[u64; W],
    radius: u32,
    dead: &Tombstones,
    out: &mut Vec<Hit>,
) {
    for (i, (c, &id)) in codes.iter().zip(ids).enumerate() {
        let d = distance(c, probe);
        if d <= radius && !dead.is_dead(first + i) {
            out.push(Hit { id, distance: d });
        }
    }
}
