//! The k smallest hits by (distance, id), kept in a max-heap so a new hit costs one
//! comparison against the current worst.

use std::collections::BinaryHeap;

use crate::Hit;

pub(crate) struct TopK {
    k: usize,
    heap: BinaryHeap<(u32, u64)>,
}

impl TopK {
    pub(crate) fn new(k: usize) -> Self {
        Self {
            k,
            heap: BinaryHeap::with_capacity(k.saturating_add(1).min(1 << 16)),
        }
    }

    /// Distance a hit must not exceed to have a chance of entering (`u32::MAX` while not full).
    #[inline]
    pub(crate) fn bound(&self) -> u32 {
        if self.heap.len() < self.k {
            u32::MAX
        } else {
            self.heap.peek().map_or(u32::MAX, |&(d, _)| d)
        }
    }

    pub(crate) fn is_full(&self) -> bool {
        self.heap.len() >= self.k
    }

    #[inline]
    pub(crate) fn offer(&mut self, distance: u32, id: u64) {
        if self.k == 0 {
            return;
        }
        if self.heap.len() < self.k {
            self.heap.push((distance, id));
        } else if let Some(mut top) = self.heap.peek_mut()
            && (distance, id) < *top
        {
            *top = (distance, id);
        }
    }

    pub(crate) fn into_sorted(self) -> Vec<Hit> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|(distance, id)| Hit { id, distance })
            .collect()
    }
}

pub(crate) fn sort_hits(hits: &mut [Hit]) {
    hits.sort_unstable_by_key(|h| (h.distance, h.id));
}
