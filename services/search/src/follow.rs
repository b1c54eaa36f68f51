//! Keeping the shard current: the follower's queue is bound BEFORE the store is read,
//! so a code stored during (or after) the read is either in the read or in the queue;
//! both is harmless (inserts are upserts). Events are applied after the load, each
//! acked only once applied; one that cannot be applied yet (store away) goes back to
//! the queue after a back-off.

use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::{EventFollower, Followed};
use imgfeat_core::backoff::Backoff;
use imgfeat_core::message::CodeStored;
use imgfeat_core::now_ms;
use imgfeat_core::ports::ResultStore;
use imgfeat_core::shutdown::Shutdown;

use crate::dedup::{Dedup, DedupError};
use crate::metrics::SearchMetrics;
use crate::shard::ShardSpec;
use crate::shard_index::{Inserted, ShardIndex};

/// The name of a shard's follower queue: one per (version, shard), kept across
/// restarts so that nothing published while the replica is down is missed.
pub fn follower_name(version: &imgfeat_core::ModelVersion, spec: ShardSpec) -> String {
    format!("search.{version}.{}-of-{}", spec.index, spec.count)
}

/// The follower queue of replica `replica` of a shard: each replica has its own (a
/// shared one would hand each replica only part of the new codes); replica 0's is
/// the shard's name of before replicas.
pub fn replica_follower_name(
    version: &imgfeat_core::ModelVersion,
    spec: ShardSpec,
    replica: u32,
) -> String {
    match replica {
        0 => follower_name(version, spec),
        r => format!("{}.replica-{r}", follower_name(version, spec)),
    }
}

/// What became of one event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Inserted in this shard's index.
    Inserted,
    /// Another shard's image (still checked for near-duplicates here).
    OtherShard,
    /// Another code version: not this index's business.
    OtherVersion,
}

impl Applied {
    pub fn as_str(self) -> &'static str {
        match self {
            Applied::Inserted => "inserted",
            Applied::OtherShard => "other_shard",
            Applied::OtherVersion => "other_version",
        }
    }
}

pub struct Follow {
    pub index: Arc<ShardIndex>,
    /// Replica 0 of each shard only: every replica sees every code, and one
    /// announcement per near-duplicate is what followers expect.
    pub dedup: Option<Dedup>,
    pub metrics: SearchMetrics,
}

impl Follow {
    /// Near-duplicates first (the image itself is excluded), then the insert: either
    /// order gives the same answer, and a redelivery repeats both harmlessly.
    pub async fn apply(&self, event: &CodeStored) -> Result<Applied, DedupError> {
        if event.code_version != self.index.version {
            return Ok(Applied::OtherVersion);
        }
        if let Some(dedup) = &self.dedup {
            dedup.check(&self.index, event).await?;
        }
        let code = &event.code;
        let applied = match self
            .index
            .insert(event.image_id.0, code.as_bytes(), code.bits())?
        {
            Inserted::Held => {
                self.metrics
                    .index_codes
                    .set(i64::try_from(self.index.len()).unwrap_or(i64::MAX));
                Applied::Inserted
            }
            Inserted::NotOurs => Applied::OtherShard,
        };
        Ok(applied)
    }

    /// Binds, loads the shard from the store, then applies events until `shutdown`.
    pub async fn run(
        self,
        mut events: EventFollower<CodeStored>,
        store: Arc<dyn ResultStore>,
        shutdown: Shutdown,
    ) {
        let stop = events.stopper();
        {
            let shutdown = shutdown.clone();
            tokio::spawn(async move {
                shutdown.wait().await;
                stop.stop();
            });
        }
        if let Err(e) = events.bind().await {
            tracing::info!(error = %e, "not following events");
            return;
        }
        tracing::info!(queue = %events.queue_name(), "following stored codes");
        if !load(&self.index, store.as_ref(), &self.metrics).await {
            return;
        }
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        while let Some(followed) = events.next().await {
            if self.settle(followed).await {
                backoff.reset();
            } else {
                let wait = backoff.next_delay();
                tokio::select! {
                    _ = shutdown.wait() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    /// Applies and acks one event, or sends it back; whether it was applied.
    async fn settle(&self, followed: Followed<CodeStored>) -> bool {
        let event = &followed.event;
        match self.apply(event).await {
            Ok(applied) => {
                let lag = now_ms().saturating_sub(event.stored_at_ms) as f64 / 1e3;
                self.metrics.applied(applied.as_str(), Some(lag));
                if let Err(e) = followed.ack().await {
                    // Applied all the same; it comes back and is applied again, harmlessly.
                    tracing::warn!(error = %e, "ack of an applied event failed");
                }
                true
            }
            Err(e) => {
                self.metrics.applied("failed", None);
                tracing::warn!(image_id = event.image_id.0, error = %e, "event not applied; it comes back");
                if let Err(e) = followed.requeue().await {
                    tracing::warn!(error = %e, "requeueing an event failed; the broker redelivers it");
                }
                false
            }
        }
    }
}

/// Loads the shard from the store (a paged scan); whether it succeeded.
pub async fn load(index: &ShardIndex, store: &dyn ResultStore, metrics: &SearchMetrics) -> bool {
    let started = std::time::Instant::now();
    match index.load(store).await {
        Ok(n) => {
            metrics
                .index_codes
                .set(i64::try_from(n).unwrap_or(i64::MAX));
            tracing::info!(codes = n, shard = ?index.spec, version = %index.version,
                seconds = started.elapsed().as_secs_f64(), "index loaded");
            true
        }
        Err(why) => {
            tracing::error!(%why, "loading the index failed");
            false
        }
    }
}
