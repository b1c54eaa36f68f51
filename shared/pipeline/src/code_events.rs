//! The extractor's announcement that codes are durable: one `CodeStored` event per code,
//! published (confirmed) after the store write and before the jobs are acked, so a
//! follower (a search shard) hears of every stored code at least once and never of a
//! code that is not stored. A failed announcement fails the jobs like a failed write:
//! they come back, the write is repeated (an idempotent upsert) and announced again.

use imgfeat_core::message::CodeStored;
use imgfeat_core::ports::{JobPublisher, QueueError};
use imgfeat_core::{CodeRecord, now_ms};

/// Announces nothing: for runs nobody follows (the embedded `index`).
pub struct NoAnnouncements;

#[async_trait::async_trait]
impl JobPublisher<CodeStored> for NoAnnouncements {
    async fn publish(&self, _: &[CodeStored]) -> Result<(), QueueError> {
        Ok(())
    }
}

/// Publishes a `CodeStored` for each of `records`, which the store has just confirmed.
pub async fn announce(
    publisher: &dyn JobPublisher<CodeStored>,
    records: &[CodeRecord],
) -> Result<(), QueueError> {
    let stored_at_ms = now_ms();
    let events: Vec<CodeStored> = records
        .iter()
        .map(|r| CodeStored::of(r, stored_at_ms))
        .collect();
    publisher.publish(&events).await
}
