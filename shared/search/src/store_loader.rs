//! The bridge from a store to a search index: a paged scan of one version's codes into
//! a [`MultiIndex`], so neither the store nor this process ever holds more than a page
//! of records (the index keeps only the packed codes and IDs). And the one rule that
//! picks how a radius is served ([`RadiusMethod`]): exact multi-index hashing, or, for
//! copy detection on 128-bit codes (R = 27), the approximate probe per query and the
//! banded join for a whole-catalogue dedup.

use crate::{
    ApproxMultiIndex, DEFAULT_EDGE_RECALL, DuplicateGroup, HammingIndex, Hit, MultiIndex,
    SearchError, duplicate_groups, duplicate_groups_banded,
};
use imgfeat_core::ports::{ResultStore, ScanCursor, StoreError};
use imgfeat_core::{CodeRecord, ImageId, ModelVersion};
use serde::{Deserialize, Serialize};

/// Codes per page of a scan: large enough that SQLite and CQL pages amortise their round
/// trip, small enough that a page of 256-bit codes stays a few hundred KB.
pub const SCAN_PAGE: usize = 5_000;

#[derive(Debug, thiserror::Error)]
pub enum IndexLoadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Search(#[from] SearchError),
    #[error("codes of {version} have {first} and {other} bits: one version must have one length")]
    MixedLengths {
        version: ModelVersion,
        first: u32,
        other: u32,
    },
}

/// Hands every code stored under `version` to `visit`, one page at a time.
pub async fn scan_codes(
    store: &dyn ResultStore,
    version: &ModelVersion,
    mut visit: impl FnMut(Vec<CodeRecord>) -> Result<(), IndexLoadError>,
) -> Result<u64, IndexLoadError> {
    let mut cursor: Option<ScanCursor> = None;
    let mut seen = 0u64;
    loop {
        let page = store.code_page(version, cursor.as_ref(), SCAN_PAGE).await?;
        seen += page.codes.len() as u64;
        visit(page.codes)?;
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(seen),
        }
    }
}

/// The index of every code of `version` for which `keep` holds (a shard's share, or
/// everything); `None` when there is no such code. Built in bulk after the scan: one
/// sort and one table build rather than N inserts.
pub async fn load_index(
    store: &dyn ResultStore,
    version: &ModelVersion,
    keep: impl Fn(ImageId) -> bool,
) -> Result<Option<MultiIndex>, IndexLoadError> {
    let mut bits: Option<u32> = None;
    let mut ids: Vec<u64> = Vec::new();
    let mut bytes: Vec<u8> = Vec::new();
    scan_codes(store, version, |page| {
        for rec in page {
            if !keep(rec.image_id) {
                continue;
            }
            let b = rec.code.bits();
            match bits {
                None => bits = Some(b),
                Some(first) if first != b => {
                    return Err(IndexLoadError::MixedLengths {
                        version: version.clone(),
                        first,
                        other: b,
                    });
                }
                Some(_) => {}
            }
            ids.push(rec.image_id.0);
            bytes.extend_from_slice(rec.code.as_bytes());
        }
        Ok(())
    })
    .await?;
    let Some(bits) = bits else {
        return Ok(None);
    };
    let width = bits.div_ceil(8) as usize;
    let index = MultiIndex::build(bits, ids.into_iter().zip(bytes.chunks_exact(width)))?;
    Ok(Some(index))
}

/// The widest radius exact multi-index hashing is used for on 128-bit and longer codes
/// under [`RadiusMethod::Auto`]. Measured (shared/search/README.md): up to R = 16 on
/// 256-bit codes it is 991x the scan or better; at R = 27 on 128-bit codes only 4-4.7x
/// (p99 69 ms at 100 M), against 19-38x for the approximate probe.
pub const EXACT_RADIUS_MAX: u32 = 16;

/// How radius queries and dedup are run (`search.radius_method`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RadiusMethod {
    /// By code length and radius: on 128-bit and longer codes past
    /// [`EXACT_RADIUS_MAX`], radius queries probe to a smaller certified radius
    /// ([`ApproxMultiIndex`]: measured recall of copies >= 0.99, never a hit beyond the
    /// radius) and a whole-catalogue dedup is the banded self-join (exact, faster);
    /// otherwise exact multi-index hashing.
    #[default]
    Auto,
    /// Exact multi-index hashing for every radius; dedup by one radius query per code.
    Exact,
}

impl RadiusMethod {
    /// Whether a radius of `radius` bits over `bits`-bit codes takes the copy-detection
    /// methods (approximate probe, banded join) rather than exact multi-index hashing.
    pub fn copy_scale(self, bits: u32, radius: u32) -> bool {
        self == Self::Auto && bits >= 128 && radius > EXACT_RADIUS_MAX
    }
}

/// A version's index that answers each radius query by [`RadiusMethod`]: the
/// approximate probe at copy scale, the exact multi-index otherwise. k-NN is always
/// exact. Both are the same tables, so holding it costs no more than a [`MultiIndex`].
pub struct RadiusIndex {
    index: ApproxMultiIndex,
    method: RadiusMethod,
}

impl RadiusIndex {
    pub fn new(index: MultiIndex, method: RadiusMethod) -> Self {
        Self {
            index: ApproxMultiIndex::from_index(index, DEFAULT_EDGE_RECALL),
            method,
        }
    }

    pub fn empty(bits: u32, method: RadiusMethod) -> Result<Self, SearchError> {
        Ok(Self::new(MultiIndex::new(bits)?, method))
    }

    pub fn method(&self) -> RadiusMethod {
        self.method
    }

    /// Whether a query of `radius` is answered by the approximate probe.
    pub fn approximate(&self, radius: u32) -> bool {
        self.method.copy_scale(self.index.bits(), radius)
    }

    /// The radius a query of `radius` certifies: every code within it is found
    /// (`radius` itself when the query is exact).
    pub fn certified_for(&self, radius: u32) -> u32 {
        if self.approximate(radius) {
            self.index.certified_for(radius)
        } else {
            radius
        }
    }

    /// The exact index inside.
    pub fn exact(&self) -> &MultiIndex {
        self.index.inner()
    }
}

impl HammingIndex for RadiusIndex {
    fn bits(&self) -> u32 {
        self.index.bits()
    }

    fn len(&self) -> usize {
        self.index.len()
    }

    fn insert(&mut self, id: u64, code: &[u8]) -> Result<(), SearchError> {
        self.index.insert(id, code)
    }

    fn remove(&mut self, id: u64) -> bool {
        self.index.remove(id)
    }

    fn knn(&self, probe: &[u8], k: usize) -> Result<Vec<Hit>, SearchError> {
        self.index.knn(probe, k)
    }

    fn within(&self, probe: &[u8], radius: u32) -> Result<Vec<Hit>, SearchError> {
        if self.approximate(radius) {
            self.index.within(probe, radius)
        } else {
            self.index.inner().within(probe, radius)
        }
    }

    fn code_of(&self, id: u64) -> Option<Vec<u8>> {
        self.index.code_of(id)
    }

    fn ids(&self) -> Vec<u64> {
        self.index.ids()
    }
}

/// Every group of near-duplicates within `radius`: at copy scale by the banded
/// self-join (exact, the same groups; 8.7 min for 10 M 128-bit codes at R = 27, where
/// one query per code takes 36 min or more), otherwise one exact radius query per code. The join needs no query of `index`'s own, so an exact index
/// is fine.
pub fn dedup_groups(
    index: &dyn HammingIndex,
    radius: u32,
    method: RadiusMethod,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<DuplicateGroup>, SearchError> {
    if method.copy_scale(index.bits(), radius) {
        duplicate_groups_banded(index, radius, progress)
    } else {
        duplicate_groups(index, radius, progress)
    }
}

/// The `k` nearest codes to `code`, or with a radius every code within it (at most `k`),
/// leaving out `exclude` (the probe's own image): the one query rule of `imgfeat similar`
/// and the search service.
pub fn neighbours(
    index: &dyn HammingIndex,
    code: &[u8],
    k: usize,
    radius: Option<u32>,
    exclude: Option<u64>,
) -> Result<Vec<Hit>, SearchError> {
    let mut hits = match radius {
        Some(r) => index.within(code, r)?,
        None => index.knn(code, k.saturating_add(usize::from(exclude.is_some())))?,
    };
    hits.retain(|h| Some(h.id) != exclude);
    hits.truncate(k);
    Ok(hits)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn only_long_codes_past_16_bits_take_the_copy_methods_unless_exact() {
        let auto = RadiusMethod::Auto;
        assert!(auto.copy_scale(128, 27));
        assert!(auto.copy_scale(256, 17));
        assert!(!auto.copy_scale(128, 16));
        assert!(!auto.copy_scale(64, 27));
        assert!(!RadiusMethod::Exact.copy_scale(128, 27));
    }

    #[test]
    fn a_radius_index_is_exact_below_copy_scale_and_never_past_the_radius() {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let codes: Vec<(u64, Vec<u8>)> = (0..2_000u64)
            .map(|id| {
                let mut c = next().to_le_bytes().to_vec();
                c.extend_from_slice(&next().to_le_bytes());
                (id, c)
            })
            .collect();
        let index = RadiusIndex::new(
            MultiIndex::build(128, codes.iter().map(|(id, c)| (*id, c.as_slice()))).unwrap(),
            RadiusMethod::Auto,
        );
        let mut scan = crate::LinearScan::new(128).unwrap();
        for (id, c) in &codes {
            scan.insert(*id, c).unwrap();
        }
        assert!(index.approximate(40) && !index.approximate(16));
        for (_, probe) in codes.iter().take(50) {
            assert_eq!(
                index.within(probe, 16).unwrap(),
                scan.within(probe, 16).unwrap()
            );
            let got = index.within(probe, 40).unwrap();
            let all = scan.within(probe, 40).unwrap();
            assert!(got.iter().all(|h| all.contains(h)));
            let certified = index.certified_for(40);
            assert!(
                all.iter()
                    .filter(|h| h.distance <= certified)
                    .all(|h| got.contains(h))
            );
            assert_eq!(index.knn(probe, 5).unwrap(), scan.knn(probe, 5).unwrap());
        }
    }
}
