//! Multi-index hashing (Norouzi, Punjani, Fleet: "Fast Exact Search in Hamming Space
//! with Multi-Index Hashing"): the code is cut into `m` substrings, each indexed in its
//! own table; a code within distance `r` of the probe matches it in at least one
//! substring within `r / m`, so probing a few buckets per table finds every answer.
//!
//! Storage: codes as `u64` words in one contiguous array, ids in a parallel array.
//! Rows `0..base` are in the first substring's key order, so that table's buckets are
//! runs of rows read in order (no random read per candidate) and it stores only its
//! offsets; `by_id` lists those rows by ascending id (id -> row is a binary search).
//! The other tables either list rows (a random read of the code per candidate) or, for
//! 64-bit codes past ~67 M, hold the codes inline (see [`inline`]), which is what keeps
//! a k-NN query at 100 M codes to a few milliseconds. Online inserts are appended after
//! `base` (the overflow, scanned linearly, with its own id map); deletes are tombstones.
//! When the overflow or the tombstones grow past a fraction of the index,
//! [`MultiIndex::compact`] rebuilds everything
//! (and re-picks `m` for the new size).

mod inline;
pub(crate) mod layout;
mod pipeline;
mod query;
pub(crate) mod schedule;
pub(crate) mod table;

use std::collections::HashMap;
use std::path::Path;

use rayon::prelude::*;

use crate::code;
use crate::scan::Tombstones;
use crate::{HammingIndex, Hit, SearchError, persist};
use inline::InlineTable;
use layout::{Plan, Substring};
use schedule::Schedule;
use table::{Offsets, Primary, Table};

/// The overflow and the tombstones may reach this many rows before a rebuild, however small the index.
const MIN_SLACK: usize = 16 * 1024;
/// Beyond that: overflow up to 1/64 of the index (its scan stays a small part of a query),
/// tombstones up to 1/8 (they only cost skipped candidates).
const OVERFLOW_FRACTION: usize = 64;
const TOMBSTONE_FRACTION: usize = 8;

pub struct MultiIndex {
    bits: u32,
    words: usize,
    /// `Some(m)` when the caller fixed the substring count; otherwise chosen at each rebuild.
    fixed_m: Option<u32>,
    /// Inline tables forced whatever the size (tests of the inline probing).
    fixed_inline: bool,
    subs: Vec<Substring>,
    masks: Vec<u64>,
    /// The first substring's buckets: ranges of rows.
    primary: Offsets,
    /// The other substrings' tables (`subs[1..]`).
    secondary: Secondary,
    schedule: Schedule,
    codes: Vec<u64>,
    ids: Vec<u64>,
    /// Rows `0..base` in ascending id order.
    by_id: Vec<u32>,
    base: usize,
    overflow: HashMap<u64, u32>,
    dead: Tombstones,
    /// Read every code when probing would cost more (off only in tests of the probing).
    scan_fallback: bool,
}

impl MultiIndex {
    /// An empty index; the substring count is chosen from the size at each rebuild.
    pub fn new(bits: u32) -> Result<Self, SearchError> {
        Self::empty(bits, None)
    }

    /// An empty index with `m` substrings (each at most 24 bits long).
    pub fn with_substrings(bits: u32, m: u32) -> Result<Self, SearchError> {
        layout::split(bits, m)?;
        Self::empty(bits, Some(m))
    }

    /// An empty 64-bit index with `m` substrings whose tables after the first are
    /// inline, as chosen by itself for the largest indexes: lets tests check that
    /// probing on small ones. A saved copy keeps `m`, not the inline tables.
    #[doc(hidden)]
    pub fn with_inline_tables(m: u32) -> Result<Self, SearchError> {
        layout::split(64, m)?;
        let mut index = Self::empty(64, Some(m))?;
        index.fixed_inline = true;
        Ok(index)
    }

    /// Bulk build: one sort and one table build instead of N inserts. A repeated id keeps its last code.
    pub fn build<C: AsRef<[u8]>>(
        bits: u32,
        entries: impl IntoIterator<Item = (u64, C)>,
    ) -> Result<Self, SearchError> {
        let words = code::words_for(bits)?;
        let (mut ids, mut codes) = (Vec::new(), Vec::new());
        for (id, c) in entries {
            code::push_words(c.as_ref(), words, &mut codes)?;
            ids.push(id);
        }
        Self::from_words(bits, None, ids, codes)
    }

    /// Bulk build from codes already in word form (`bits / 64` big-endian words each).
    pub(crate) fn from_words(
        bits: u32,
        fixed_m: Option<u32>,
        ids: Vec<u64>,
        codes: Vec<u64>,
    ) -> Result<Self, SearchError> {
        let mut index = Self::empty(bits, fixed_m)?;
        if ids.len() >= u32::MAX as usize {
            return Err(SearchError::Full {
                max: u32::MAX as usize - 1,
            });
        }
        let (ids, codes) = sort_unique(ids, codes, index.words);
        index.ids = ids;
        index.codes = codes;
        index.rebuild_tables()?;
        Ok(index)
    }

    fn empty(bits: u32, fixed_m: Option<u32>) -> Result<Self, SearchError> {
        Ok(Self {
            bits,
            words: code::words_for(bits)?,
            fixed_m,
            fixed_inline: false,
            subs: Vec::new(),
            masks: Vec::new(),
            primary: Offsets::default(),
            secondary: Secondary::Listed(Vec::new()),
            schedule: Schedule::radius_major(&[]),
            codes: Vec::new(),
            ids: Vec::new(),
            by_id: Vec::new(),
            base: 0,
            overflow: HashMap::new(),
            dead: Tombstones::default(),
            scan_fallback: true,
        })
    }

    /// Always probe, however many buckets: lets tests check the probing on small indexes,
    /// where reading every code is cheaper and would otherwise answer.
    #[doc(hidden)]
    pub fn without_scan_fallback(mut self) -> Self {
        self.scan_fallback = false;
        self
    }

    /// Radius search that probes only the buckets certifying `certified` bits (at most
    /// `radius`): every code within `certified` is returned, a code between that and
    /// `radius` with the probability [`Self::found_probability`] gives, and no code
    /// beyond `radius`. `certified == radius` is [`HammingIndex::within`]. At R = 27 on
    /// 10 M 128-bit codes the exact probe costs a quarter of a scan, one certifying 20
    /// bits a 26th (see the README).
    pub fn within_certified(
        &self,
        probe: &[u8],
        radius: u32,
        certified: u32,
    ) -> Result<Vec<Hit>, SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        Ok(query::within_certified(self, &probe, radius, certified))
    }

    /// The probability that [`Self::within_certified`] returns a code `distance` bits
    /// from the probe, when those bits are anywhere in the code with equal chance (the
    /// model: real copies need not flip bits uniformly; the benchmark measures them).
    pub fn found_probability(&self, certified: u32, distance: u32) -> f64 {
        if distance > self.bits {
            return 0.0;
        }
        // Codes in no table yet (the overflow) are scanned, so found for sure.
        if distance <= certified || self.subs.is_empty() {
            return 1.0;
        }
        let lens: Vec<u32> = self.subs.iter().map(|s| s.len).collect();
        let radii = self.schedule.radii_for(certified, lens.len());
        crate::recall::found_probability(&lens, &radii, distance)
    }

    /// Substring count of the current tables (0 before the first build).
    pub fn substrings(&self) -> u32 {
        self.subs.len() as u32
    }

    /// The substrings' lengths, and "inline" when the tables after the first hold their codes.
    pub fn layout(&self) -> String {
        let lens: Vec<String> = self.subs.iter().map(|s| s.len.to_string()).collect();
        let kind = match self.secondary {
            Secondary::Inline(_) => " inline",
            Secondary::Listed(_) => "",
        };
        format!("{}{kind}", lens.join("/"))
    }

    /// Heap bytes held: codes, ids, tables, overflow map and tombstones.
    pub fn memory_bytes(&self) -> usize {
        self.codes.capacity() * 8
            + self.ids.capacity() * 8
            + self.by_id.capacity() * 4
            + self.primary.bytes()
            + self.secondary.bytes()
            + self.overflow.capacity() * 16
            + self.dead.count() / 8
    }

    /// Folds the overflow into the tables and drops tombstones. Runs by itself when
    /// either grows too large; call it after many inserts to make queries fastest.
    pub fn compact(&mut self) -> Result<(), SearchError> {
        let w = self.words;
        let live = self.live_by_id();
        let mut codes = Vec::with_capacity(live.len() * w);
        for &(_, row) in &live {
            let row = row as usize;
            codes.extend_from_slice(&self.codes[row * w..(row + 1) * w]);
        }
        self.ids = live.into_iter().map(|(id, _)| id).collect();
        self.codes = codes;
        self.overflow = HashMap::new();
        self.dead = Tombstones::default();
        self.rebuild_tables()
    }

    /// Rebuilds every table from `ids`/`codes`, which must be sorted by id and unique.
    fn rebuild_tables(&mut self) -> Result<(), SearchError> {
        let n = self.ids.len();
        let plan = match self.fixed_m {
            Some(m) => Plan {
                subs: layout::split(self.bits, m)?,
                inline: self.fixed_inline,
            },
            None => layout::plan(self.bits, n)?,
        };
        self.subs = plan.subs;
        self.masks = layout::masks(&self.subs, self.words);
        self.secondary = Secondary::Listed(Vec::new());
        let primary = if plan.inline {
            Primary::build_by_code(&self.subs[0], &self.codes, &self.ids)
        } else {
            Primary::build(&self.subs[0], &self.codes, &self.ids, self.words)
        };
        self.codes = primary.codes;
        self.ids = primary.ids;
        self.by_id = primary.by_id;
        self.primary = primary.offsets;
        let (codes, words) = (&self.codes, self.words);
        self.secondary = if plan.inline {
            Secondary::Inline(
                self.subs[1..]
                    .par_iter()
                    .map(|sub| InlineTable::build(sub, codes))
                    .collect(),
            )
        } else {
            Secondary::Listed(
                self.subs[1..]
                    .par_iter()
                    .map(|sub| Table::build(sub, codes, words))
                    .collect(),
            )
        };
        self.base = n;
        let lens: Vec<u32> = self.subs.iter().map(|s| s.len).collect();
        self.schedule = if plan.inline {
            Schedule::cheapest_first(&lens, |r, j| query::step_cost(self, r, j))
        } else {
            Schedule::radius_major(&lens)
        };
        tracing::debug!(codes = n, layout = %self.layout(), "hamming index rebuilt");
        Ok(())
    }

    /// The rows holding exactly this 64-bit code: the first table's bucket is sorted by
    /// code when the other tables are inline.
    fn rows_of_code(&self, c: u64) -> std::ops::Range<usize> {
        let bucket = self.primary.range(self.subs[0].key(&[c]));
        let codes = &self.codes[bucket.clone()];
        let lo = codes.partition_point(|&x| x < c);
        let hi = lo + codes[lo..].partition_point(|&x| x == c);
        bucket.start + lo..bucket.start + hi
    }

    fn live_row(&self, id: u64) -> Option<usize> {
        if let Some(&row) = self.overflow.get(&id) {
            return Some(row as usize);
        }
        let rank = self
            .by_id
            .binary_search_by_key(&id, |&row| self.ids[row as usize])
            .ok()?;
        let row = self.by_id[rank] as usize;
        (!self.dead.is_dead(row)).then_some(row)
    }

    /// Every live `(id, row)`, ascending by id.
    fn live_by_id(&self) -> Vec<(u64, u32)> {
        let overflow = self.base as u32..self.ids.len() as u32;
        let mut live: Vec<(u64, u32)> = self
            .by_id
            .iter()
            .copied()
            .chain(overflow)
            .filter(|&row| !self.dead.is_dead(row as usize))
            .map(|row| (self.ids[row as usize], row))
            .collect();
        if self.base < self.ids.len() {
            live.sort_unstable();
        }
        live
    }

    fn compact_if_needed(&mut self) -> Result<(), SearchError> {
        let live = self.len();
        let overflow = self.ids.len() - self.base;
        if overflow > MIN_SLACK.max(live / OVERFLOW_FRACTION)
            || self.dead.count() > MIN_SLACK.max(live / TOMBSTONE_FRACTION)
        {
            self.compact()?;
        }
        Ok(())
    }

    pub fn save(&self, path: &Path) -> Result<(), SearchError> {
        // Saved compacted (live codes sorted by id) so loading needs no sort.
        let w = self.words;
        let live = self.live_by_id();
        let ids: Vec<u64> = live.iter().map(|&(id, _)| id).collect();
        let mut codes = Vec::with_capacity(live.len() * w);
        for &(_, row) in &live {
            let row = row as usize;
            codes.extend_from_slice(&self.codes[row * w..(row + 1) * w]);
        }
        persist::save(
            path,
            self.bits,
            persist::Kind::Multi,
            self.fixed_m.unwrap_or(0),
            &ids,
            &codes,
        )
    }

    pub fn load(path: &Path) -> Result<Self, SearchError> {
        let file = persist::load(path)?;
        let fixed_m = (file.substrings != 0).then_some(file.substrings);
        Self::from_words(file.bits, fixed_m, file.ids, file.codes).map_err(|e| match e {
            SearchError::Substrings { .. } => SearchError::BadFile {
                path: path.to_path_buf(),
                reason: e.to_string(),
            },
            other => other,
        })
    }
}

/// The tables after the first.
enum Secondary {
    /// Buckets list rows; each candidate's code is a random read.
    Listed(Vec<Table>),
    /// Buckets hold the codes (64-bit codes only).
    Inline(Vec<InlineTable>),
}

impl Secondary {
    fn bytes(&self) -> usize {
        match self {
            Self::Listed(t) => t.iter().map(Table::bytes).sum(),
            Self::Inline(t) => t.iter().map(InlineTable::bytes).sum(),
        }
    }
}

/// Sorts rows by id, keeping the last code of a repeated id (upsert order).
fn sort_unique(ids: Vec<u64>, codes: Vec<u64>, words: usize) -> (Vec<u64>, Vec<u64>) {
    if ids.is_sorted_by(|a, b| a < b) {
        return (ids, codes);
    }
    let mut order: Vec<(u64, u32)> = ids
        .iter()
        .enumerate()
        .map(|(r, &id)| (id, r as u32))
        .collect();
    drop(ids);
    order.sort_unstable();
    let mut out_ids = Vec::with_capacity(order.len());
    let mut out_codes = Vec::with_capacity(codes.len());
    for (i, &(id, row)) in order.iter().enumerate() {
        if order.get(i + 1).is_some_and(|next| next.0 == id) {
            continue;
        }
        let row = row as usize;
        out_ids.push(id);
        out_codes.extend_from_slice(&codes[row * words..(row + 1) * words]);
    }
    (out_ids, out_codes)
}

impl HammingIndex for MultiIndex {
    fn bits(&self) -> u32 {
        self.bits
    }

    fn len(&self) -> usize {
        self.ids.len() - self.dead.count()
    }

    fn insert(&mut self, id: u64, code: &[u8]) -> Result<(), SearchError> {
        let new = code::probe_words(code, self.words)?;
        let w = self.words;
        match self.live_row(id) {
            // Overflow rows are in no table: their code can change in place.
            Some(row) if row >= self.base => {
                self.codes[row * w..(row + 1) * w].copy_from_slice(&new);
                return Ok(());
            }
            Some(row) => self.dead.kill(row),
            None => {}
        }
        if self.ids.len() >= u32::MAX as usize - 1 {
            return Err(SearchError::Full {
                max: u32::MAX as usize - 1,
            });
        }
        self.overflow.insert(id, self.ids.len() as u32);
        self.ids.push(id);
        self.codes.extend_from_slice(&new);
        self.compact_if_needed()
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(row) = self.live_row(id) else {
            return false;
        };
        self.overflow.remove(&id);
        self.dead.kill(row);
        if let Err(e) = self.compact_if_needed() {
            // Only a bad substring count can fail a rebuild, and it was valid at creation.
            tracing::warn!(error = %e, "hamming index compaction failed; index left uncompacted");
        }
        true
    }

    fn knn(&self, probe: &[u8], k: usize) -> Result<Vec<Hit>, SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        Ok(query::knn(self, &probe, k))
    }

    fn within(&self, probe: &[u8], radius: u32) -> Result<Vec<Hit>, SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        Ok(query::within(self, &probe, radius))
    }

    fn code_of(&self, id: u64) -> Option<Vec<u8>> {
        let row = self.live_row(id)?;
        Some(code::to_bytes(
            &self.codes[row * self.words..(row + 1) * self.words],
        ))
    }

    fn ids(&self) -> Vec<u64> {
        self.live_by_id().into_iter().map(|(id, _)| id).collect()
    }
}
