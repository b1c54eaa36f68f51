//! Radius probing of listed tables as a software pipeline: every bucket to visit is
//! known up front, so its offsets, then its rows (or, in table 0, its codes), then each
//! candidate's code are fetched a fixed number of items ahead of their use. A query at
//! R ~ 20-30 on 128-bit codes is tens of thousands of independent cache misses;
//! overlapping them instead of paying each in turn halves its time.

use std::collections::VecDeque;

use super::MultiIndex;
use super::layout::for_each_flip;
use super::query::first_reached;
use super::table::{Offsets, Table};
use crate::Hit;
use crate::code::{self, distance};
use crate::memory;
use crate::popcount::{self, Compare, Kernel};

/// Buckets ahead whose offsets are fetched, then whose first rows (or codes) are.
const OFFSETS_AHEAD: usize = 32;
const ROWS_AHEAD: usize = 16;
/// Candidates whose codes are in flight before the oldest is compared.
const CODES_AHEAD: usize = 8;

/// Every live code within `radius` first reached by one of `steps`, pushed to `hits`.
pub(super) fn within_listed<const W: usize>(
    index: &MultiIndex,
    tables: &[Table],
    probe: &[u64; W],
    keys: &[u32],
    steps: &[(u32, usize)],
    radius: u32,
    hits: &mut Vec<Hit>,
) {
    // (bucket key, step) of every bucket, in schedule order.
    let mut items: Vec<(u32, u32)> = Vec::new();
    for (s, &(r, j)) in steps.iter().enumerate() {
        for_each_flip(index.subs[j].len, r, |flip| {
            items.push((keys[j] ^ flip, s as u32))
        });
    }
    let query = Listed {
        index,
        tables,
        probe,
        steps,
        radius,
        items,
    };
    hits.extend(popcount::scalar(&query, 0));
}

struct Listed<'a, const W: usize> {
    index: &'a MultiIndex,
    tables: &'a [Table],
    probe: &'a [u64; W],
    steps: &'a [(u32, usize)],
    radius: u32,
    items: Vec<(u32, u32)>,
}

impl<const W: usize> Kernel for Listed<'_, W> {
    type Out = Vec<Hit>;

    #[inline(always)]
    fn run<C: Compare>(&self, _: u32) -> Vec<Hit> {
        let codes = code::as_codes::<W>(&self.index.codes);
        let items = &self.items;
        let mut hits = Vec::new();
        let mut pending: VecDeque<(u32, u32)> = VecDeque::with_capacity(CODES_AHEAD * 4);
        for i in 0..items.len() {
            if let Some(&(key, s)) = items.get(i + OFFSETS_AHEAD) {
                self.offsets(s).prefetch(key);
            }
            if let Some(&(key, s)) = items.get(i + ROWS_AHEAD) {
                let start = self.offsets(s).range(key).start;
                match self.steps[s as usize].1 {
                    0 => {
                        if let Some(c) = codes.get(start) {
                            memory::prefetch(c);
                        }
                    }
                    j => self.tables[j - 1].prefetch_rows(start),
                }
            }
            let (key, s) = items[i];
            let range = self.offsets(s).range(key);
            match self.steps[s as usize].1 {
                // Table 0's bucket is a run of rows: read in order.
                0 => {
                    for row in range {
                        self.visit(codes, row, s, &mut hits);
                    }
                }
                j => {
                    for &row in self.tables[j - 1].rows(range) {
                        memory::prefetch(&codes[row as usize]);
                        pending.push_back((row, s));
                        if pending.len() > CODES_AHEAD
                            && let Some((row, s)) = pending.pop_front()
                        {
                            self.visit(codes, row as usize, s, &mut hits);
                        }
                    }
                }
            }
        }
        for (row, s) in pending {
            self.visit(codes, row as usize, s, &mut hits);
        }
        hits
    }
}

impl<const W: usize> Listed<'_, W> {
    #[inline(always)]
    fn offsets(&self, step: u32) -> &Offsets {
        match self.steps[step as usize].1 {
            0 => &self.index.primary,
            j => self.tables[j - 1].offsets(),
        }
    }

    /// Takes the code of `row` if it is live, within the radius, and first reached here.
    #[inline(always)]
    fn visit(&self, codes: &[[u64; W]], row: usize, step: u32, hits: &mut Vec<Hit>) {
        let c = &codes[row];
        let d = distance(c, self.probe);
        let (r, j) = self.steps[step as usize];
        if d > self.radius
            || self.index.dead.is_dead(row)
            || !first_reached::<W>(self.index, c, self.probe, r, j)
        {
            return;
        }
        hits.push(Hit {
            id: self.index.ids[row],
            distance: d,
        });
    }
}
