use async_trait::async_trait;

use crate::message::Neighbour;
use crate::ports::StoreError;
use crate::{ImageId, ModelVersion};

/// Near-duplicates found for new uploads, keyed by (image, code version): one row per
/// neighbour, so that each search shard writes the neighbours it holds without
/// overwriting another shard's. Writes are idempotent upserts (the latest distance
/// wins), which makes a redelivered event harmless.
#[async_trait]
pub trait DuplicateStore: Send + Sync {
    /// Records `neighbours` of `image`; returns once they are durable.
    async fn put_near_duplicates(
        &self,
        image: ImageId,
        version: &ModelVersion,
        neighbours: &[Neighbour],
    ) -> Result<(), StoreError>;

    /// Every neighbour recorded for `image` under `version`, nearest first (distance,
    /// then image ID in u64 order).
    async fn near_duplicates(
        &self,
        image: ImageId,
        version: &ModelVersion,
    ) -> Result<Vec<Neighbour>, StoreError>;
}
