//! Nearest codes by Hamming distance, over a paged scan of the store.

use imgfeat_core::ports::{ResultStore, ScanCursor, StoreError};
use imgfeat_core::{BinaryCode, CodeRecord, ImageId, ModelVersion};
use serde::Serialize;

/// Codes per page of a scan: large enough that SQLite and CQL pages amortise their round
/// trip, small enough that a page of 256-bit codes stays a few hundred KB.
pub const SCAN_PAGE: usize = 5_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbour {
    pub image_id: ImageId,
    pub distance: u32,
}

/// Hands every code stored under `version` to `visit`, one page at a time, so that no
/// more than a page is held here whatever the size of the version.
pub async fn scan_codes(
    store: &dyn ResultStore,
    version: &ModelVersion,
    mut visit: impl FnMut(Vec<CodeRecord>),
) -> Result<u64, StoreError> {
    let mut cursor: Option<ScanCursor> = None;
    let mut seen = 0u64;
    loop {
        let page = store.code_page(version, cursor.as_ref(), SCAN_PAGE).await?;
        seen += page.codes.len() as u64;
        visit(page.codes);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return Ok(seen),
        }
    }
}

/// The `k` stored codes nearest to `probe` (ties by image ID), leaving out `exclude`.
pub async fn nearest(
    store: &dyn ResultStore,
    probe: &BinaryCode,
    version: &ModelVersion,
    k: usize,
    exclude: Option<ImageId>,
) -> Result<Vec<Neighbour>, StoreError> {
    let mut ranked: Vec<Neighbour> = Vec::new();
    scan_codes(store, version, |page| {
        ranked.extend(
            page.into_iter()
                .filter(|c| Some(c.image_id) != exclude)
                .filter_map(|c| {
                    probe.hamming(&c.code).ok().map(|distance| Neighbour {
                        image_id: c.image_id,
                        distance,
                    })
                }),
        );
        ranked.sort_by_key(|n| (n.distance, n.image_id));
        ranked.truncate(k);
    })
    .await?;
    Ok(ranked)
}
