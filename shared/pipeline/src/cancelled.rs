//! Which backfill jobs were cancelled: a detector skips what a cancelled job left in
//! the queue instead of working through it. Asked of the store at most once per job
//! per `ttl`, so a queue of a million messages of one job costs a handful of reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use imgfeat_core::ports::{BackfillState, BackfillStore};

pub struct CancelledBackfills {
    store: Arc<dyn BackfillStore>,
    ttl: Duration,
    seen: Mutex<HashMap<String, (Instant, bool)>>,
}

/// Jobs remembered at once; past it the memory starts over (jobs are few; this only
/// bounds what malformed job IDs could make it hold).
const MAX_REMEMBERED: usize = 1024;

impl CancelledBackfills {
    pub fn new(store: Arc<dyn BackfillStore>, ttl: Duration) -> Self {
        Self {
            store,
            ttl,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Whether `job` was cancelled. A job the store does not know, or a store that
    /// cannot be asked, counts as not cancelled: skipping is an optimisation, doing the
    /// work is never wrong.
    pub async fn is_cancelled(&self, job: &str) -> bool {
        let now = Instant::now();
        if let Some(&(at, cancelled)) = self.lock().get(job)
            && now.duration_since(at) < self.ttl
        {
            return cancelled;
        }
        let cancelled = match self.store.backfill(job).await {
            Ok(found) => found.is_some_and(|j| j.state == BackfillState::Cancelled),
            Err(e) => {
                tracing::warn!(job, error = %e, "reading a backfill job's state");
                return false;
            }
        };
        let mut seen = self.lock();
        if seen.len() >= MAX_REMEMBERED {
            seen.clear();
        }
        seen.insert(job.to_owned(), (now, cancelled));
        cancelled
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, bool)>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }
}
