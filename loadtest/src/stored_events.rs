//! When each code became durable, as the extractor announces it: a follower of the
//! "code stored" fanout, bound before the first ID is published. Polling the store
//! instead adds up to a polling period (and the poll's own reads) to every latency;
//! an event arrives about a broker hop after the commit. The store poll stays the
//! completion check, and the fallback for an ID whose event did not come.
//!
//! The same follower times the search's duplicate-found events (`dedup.rs`):
//! [`StoredEvents::follow_events`] follows any event exchange keyed by image ID.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use imgfeat_amqp::{AmqpConnection, ConsumerStop, EventExchange, EventFollower};
use imgfeat_core::ImageId;
use imgfeat_core::message::CodeStored;
use serde::de::DeserializeOwned;

/// The follower's name; its queues go with the run's others in the clean-up, which runs
/// whether the run succeeded or not.
pub const FOLLOWER: &str = "loadtest";

type Seen = Arc<Mutex<HashMap<ImageId, Instant>>>;

pub struct StoredEvents {
    conn: AmqpConnection,
    stop: ConsumerStop,
    seen: Seen,
    task: tokio::task::JoinHandle<()>,
}

impl StoredEvents {
    pub async fn follow(url: &str, prefix: &str) -> anyhow::Result<Self> {
        Self::follow_events(
            url,
            prefix,
            EventExchange::CodeStored,
            FOLLOWER,
            |e: &CodeStored| e.image_id,
        )
        .await
    }

    /// Follows `exchange` as `follower` (its queues are the caller's to delete), noting
    /// when the first event of each image (`id_of`) came.
    pub async fn follow_events<M: DeserializeOwned + Send + 'static>(
        url: &str,
        prefix: &str,
        exchange: EventExchange,
        follower: &str,
        id_of: fn(&M) -> ImageId,
    ) -> anyhow::Result<Self> {
        let conn = crate::broker::connect(url, prefix).await?;
        let mut follower = EventFollower::<M>::new(&conn, exchange, follower);
        tokio::time::timeout(Duration::from_secs(20), follower.bind())
            .await
            .with_context(|| format!("binding the follower of {exchange:?}"))??;
        let stop = follower.stopper();
        let seen: Seen = Arc::default();
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                while let Some(e) = follower.next().await {
                    let now = Instant::now();
                    if let Ok(mut seen) = seen.lock() {
                        seen.entry(id_of(&e.event)).or_insert(now);
                    }
                    let _ = e.ack().await;
                }
            }
        });
        Ok(Self {
            conn,
            stop,
            seen,
            task,
        })
    }

    /// When each of `ids` was announced; waits a moment for the announcements of codes
    /// the store poll has already seen.
    pub async fn finish(self, ids: &[ImageId]) -> anyhow::Result<HashMap<ImageId, Instant>> {
        let deadline = Instant::now() + Duration::from_secs(2);
        let count = || {
            self.seen
                .lock()
                .map(|s| ids.iter().filter(|id| s.contains_key(id)).count())
                .unwrap_or(0)
        };
        while count() < ids.len() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.stop();
        let _ = self.task.await;
        self.conn.close().await;
        let seen = self
            .seen
            .lock()
            .map_err(|_| anyhow::anyhow!("event map poisoned"))?;
        Ok(ids
            .iter()
            .filter_map(|id| seen.get(id).map(|t| (*id, *t)))
            .collect())
    }
}
