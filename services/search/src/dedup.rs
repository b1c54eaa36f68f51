//! Continuous dedup: each new code of the version is looked up, within the dedup
//! radius, among the codes THIS shard holds (by `search.radius_method`: at R = 27 on
//! 128-bit codes the approximate probe, which never reports a pair beyond R). Every shard sees every event (fanout), so
//! the union of the shards' answers is the complete set with no fan-out query. What a
//! shard finds is stored (one row per neighbour, so shards never overwrite each other)
//! and announced, before the event is acked.

use std::sync::Arc;

use imgfeat_app::SearchSettings;
use imgfeat_core::ImageId;
use imgfeat_core::message::{CodeStored, DuplicateFound, Neighbour};
use imgfeat_core::ports::{DuplicateStore, JobPublisher, QueueError, StoreError};

use crate::metrics::SearchMetrics;
use crate::shard_index::{QueryError, ShardIndex, ShardQuery};

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("looking up near-duplicates: {0}")]
    Query(#[from] QueryError),
    #[error("storing near-duplicates: {0}")]
    Store(#[from] StoreError),
    #[error("announcing near-duplicates: {0}")]
    Announce(#[from] QueueError),
}

pub struct Dedup {
    pub store: Arc<dyn DuplicateStore>,
    pub announce: Arc<dyn JobPublisher<DuplicateFound>>,
    pub settings: SearchSettings,
    pub metrics: SearchMetrics,
}

impl Dedup {
    /// Records and announces the near-duplicates of `event` in this shard; how many.
    /// Safe to repeat for a redelivered event: the image itself is left out (it may be
    /// in the index already), and the store upserts.
    pub async fn check(&self, index: &ShardIndex, event: &CodeStored) -> Result<usize, DedupError> {
        let code = &event.code;
        let radius = self.settings.dedup_radius_for(code.bits());
        let query = ShardQuery {
            k: usize::MAX,
            radius: Some(radius),
            exclude: Some(event.image_id.0),
        };
        let neighbours: Vec<Neighbour> = index
            .query(code.as_bytes(), query)?
            .into_iter()
            .map(|h| Neighbour {
                image_id: ImageId(h.id),
                distance: h.distance,
            })
            .collect();
        if neighbours.is_empty() {
            return Ok(0);
        }
        self.store
            .put_near_duplicates(event.image_id, &event.code_version, &neighbours)
            .await?;
        let found = DuplicateFound {
            image_id: event.image_id,
            code_version: event.code_version.clone(),
            neighbours,
            shard: index.spec.index,
        };
        self.announce.publish(std::slice::from_ref(&found)).await?;
        let n = found.neighbours.len();
        self.metrics.duplicates_found.inc_by(n as u64);
        tracing::info!(
            image_id = event.image_id.0,
            found = n,
            radius,
            approximate = index.approximate(radius),
            "near-duplicates found"
        );
        Ok(n)
    }
}
