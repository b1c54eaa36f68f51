//! The baseline: every code in one contiguous array, read in full for each query.

use std::collections::HashMap;
use std::path::Path;

use crate::code::{self, with_width};
use crate::popcount;
use crate::scan::{self, Tombstones};
use crate::topk::{TopK, sort_hits};
use crate::{HammingIndex, Hit, SearchError, persist};

#[derive(Debug, Clone)]
pub struct LinearScan {
    bits: u32,
    words: usize,
    codes: Vec<u64>,
    ids: Vec<u64>,
    row_of: HashMap<u64, usize>,
}

impl LinearScan {
    pub fn new(bits: u32) -> Result<Self, SearchError> {
        Ok(Self {
            bits,
            words: code::words_for(bits)?,
            codes: Vec::new(),
            ids: Vec::new(),
            row_of: HashMap::new(),
        })
    }

    pub fn save(&self, path: &Path) -> Result<(), SearchError> {
        persist::save(
            path,
            self.bits,
            persist::Kind::Linear,
            0,
            &self.ids,
            &self.codes,
        )
    }

    pub fn load(path: &Path) -> Result<Self, SearchError> {
        let file = persist::load(path)?;
        let mut index = Self::new(file.bits)?;
        index.row_of.reserve(file.ids.len());
        for (row, &id) in file.ids.iter().enumerate() {
            if index.row_of.insert(id, row).is_some() {
                return Err(SearchError::BadFile {
                    path: path.to_path_buf(),
                    reason: format!("id {id} appears twice"),
                });
            }
        }
        index.ids = file.ids;
        index.codes = file.codes;
        Ok(index)
    }
}

impl HammingIndex for LinearScan {
    fn bits(&self) -> u32 {
        self.bits
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn insert(&mut self, id: u64, code: &[u8]) -> Result<(), SearchError> {
        let words = code::probe_words(code, self.words)?;
        match self.row_of.get(&id) {
            Some(&row) => {
                self.codes[row * self.words..(row + 1) * self.words].copy_from_slice(&words)
            }
            None => {
                self.row_of.insert(id, self.ids.len());
                self.ids.push(id);
                self.codes.extend_from_slice(&words);
            }
        }
        Ok(())
    }

    fn remove(&mut self, id: u64) -> bool {
        let Some(row) = self.row_of.remove(&id) else {
            return false;
        };
        let last = self.ids.len() - 1;
        if row != last {
            // Move the last code into the hole so the array stays dense.
            let moved = self.ids[last];
            self.ids[row] = moved;
            self.codes
                .copy_within(last * self.words..(last + 1) * self.words, row * self.words);
            self.row_of.insert(moved, row);
        }
        self.ids.pop();
        self.codes.truncate(last * self.words);
        true
    }

    fn knn(&self, probe: &[u8], k: usize) -> Result<Vec<Hit>, SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        let mut top = TopK::new(k);
        let none = Tombstones::default();
        popcount::fast(|| {
            with_width!(self.words, W => scan::knn::<W>(
            code::as_codes::<W>(&self.codes), &self.ids, 0, &code::as_probe::<W>(&probe), &none, &mut top))
        });
        Ok(top.into_sorted())
    }

    fn within(&self, probe: &[u8], radius: u32) -> Result<Vec<Hit>, SearchError> {
        let probe = code::probe_words(probe, self.words)?;
        let mut hits = Vec::new();
        let none = Tombstones::default();
        popcount::fast(|| {
            with_width!(self.words, W => scan::within::<W>(
            code::as_codes::<W>(&self.codes), &self.ids, 0, &code::as_probe::<W>(&probe), radius, &none, &mut hits))
        });
        sort_hits(&mut hits);
        Ok(hits)
    }

    fn code_of(&self, id: u64) -> Option<Vec<u8>> {
        let row = *self.row_of.get(&id)?;
        Some(code::to_bytes(
            &self.codes[row * self.words..(row + 1) * self.words],
        ))
    }

    fn ids(&self) -> Vec<u64> {
        let mut ids = self.ids.clone();
        ids.sort_unstable();
        ids
    }
}
