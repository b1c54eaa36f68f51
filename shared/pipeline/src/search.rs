//! Nearest codes by Hamming distance, over whatever candidates the store offers.

use imgfeat_core::ports::{ResultStore, StoreError};
use imgfeat_core::{BinaryCode, ImageId, ModelVersion};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Neighbour {
    pub image_id: ImageId,
    pub distance: u32,
}

/// The `k` stored codes nearest to `probe` (ties by image ID), leaving out `exclude`.
pub async fn nearest(
    store: &dyn ResultStore,
    probe: &BinaryCode,
    version: &ModelVersion,
    k: usize,
    exclude: Option<ImageId>,
) -> Result<Vec<Neighbour>, StoreError> {
    let candidates = store.candidate_codes(probe, version).await?;
    let mut ranked: Vec<Neighbour> = candidates
        .into_iter()
        .filter(|c| Some(c.image_id) != exclude)
        .filter_map(|c| {
            probe.hamming(&c.code).ok().map(|distance| Neighbour {
                image_id: c.image_id,
                distance,
            })
        })
        .collect();
    ranked.sort_by_key(|n| (n.distance, n.image_id));
    ranked.dedup_by_key(|n| n.image_id);
    ranked.truncate(k);
    Ok(ranked)
}
