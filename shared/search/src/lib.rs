//! Hamming search over the binary codes of one model version.
//!
//! Three methods behind one trait: [`LinearScan`] (the oracle every result is checked
//! against), [`MultiIndex`] (multi-index hashing, Norouzi et al., exact) and
//! [`ApproxMultiIndex`] (the same tables, probed to fewer bits than the radius asked:
//! for R ~ 20-30 on 128-bit codes, with a recall the benchmark measures and never a
//! hit beyond R). All answer radius and k-NN queries sorted by `(distance, id)`, take
//! online inserts and deletes, and save to a compact checksummed file.
//! [`duplicate_groups`] builds near-duplicate groups from any of them, one radius query
//! per code, without an N x N matrix; [`duplicate_groups_banded`] gives the same groups
//! by a banded self-join, which is what a whole-catalogue dedup at R = 27 on 128-bit
//! codes can afford.

mod approx;
mod bench;
mod code;
mod dedup;
mod error;
mod join;
mod linear;
mod memory;
mod mih;
mod persist;
mod popcount;
mod recall;
mod scan;
pub mod store_loader;
mod topk;

pub use approx::{ApproxMultiIndex, DEFAULT_EDGE_RECALL};
pub use bench::{
    BenchOptions, BenchReport, BenchRow, DedupRow, QueryStats, RadiusRow, Run, run_search_bench,
};
pub use dedup::{DuplicateGroup, duplicate_groups};
pub use error::SearchError;
pub use join::{duplicate_groups_banded, duplicate_groups_certified, join_plan};
pub use linear::LinearScan;
pub use mih::MultiIndex;

/// Image ID (`imgfeat_core::ImageId` wraps a `u64`).
pub type ImageKey = u64;

/// One result: an image and its Hamming distance to the probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    pub id: u64,
    pub distance: u32,
}

/// One trait over the search methods. Results are sorted by `(distance, id)`; k-NN
/// ties at the k-th distance are broken by the smaller id.
pub trait HammingIndex: Send + Sync {
    /// Code length: 64, 128 or 256.
    fn bits(&self) -> u32;
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Upsert: an id already present gets the new code.
    fn insert(&mut self, id: u64, code: &[u8]) -> Result<(), SearchError>;
    /// True if the id was present.
    fn remove(&mut self, id: u64) -> bool;
    fn knn(&self, probe: &[u8], k: usize) -> Result<Vec<Hit>, SearchError>;
    fn within(&self, probe: &[u8], radius: u32) -> Result<Vec<Hit>, SearchError>;
    fn code_of(&self, id: u64) -> Option<Vec<u8>>;
    /// Every id held, ascending (what [`duplicate_groups`] walks).
    fn ids(&self) -> Vec<u64>;
}
