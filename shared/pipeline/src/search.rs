//! The bridge from a store to a search index: a paged scan of one version's codes into
//! a [`MultiIndex`], so neither the store nor this process ever holds more than a page
//! of records (the index keeps only the packed codes and IDs).

use imgfeat_core::ports::{ResultStore, ScanCursor, StoreError};
use imgfeat_core::{CodeRecord, ImageId, ModelVersion};
use imgfeat_search::{HammingIndex, Hit, MultiIndex, SearchError};

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
