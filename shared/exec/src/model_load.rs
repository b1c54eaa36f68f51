//! Whether a model has a free worker, for the batcher: a batch closes as soon as one is
//! free, so no worker idles while work waits (continuous batching).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Calls in progress on one model (queued or running), shared by its handles.
#[derive(Clone)]
pub struct ModelLoad {
    inner: Arc<Inner>,
}

struct Inner {
    calls: AtomicUsize,
    workers: usize,
    freed: Notify,
}

impl Default for ModelLoad {
    fn default() -> Self {
        Self::with_workers(1)
    }
}

impl ModelLoad {
    /// The load of a model served by `workers` threads.
    pub fn with_workers(workers: usize) -> Self {
        Self {
            inner: Arc::new(Inner {
                calls: AtomicUsize::new(0),
                workers: workers.max(1),
                freed: Notify::new(),
            }),
        }
    }

    pub fn workers(&self) -> usize {
        self.inner.workers
    }

    /// Whether a worker is free (for one worker: no call in progress).
    pub fn is_idle(&self) -> bool {
        self.inner.calls.load(Ordering::Acquire) < self.inner.workers
    }

    /// Resolves once a worker is free.
    pub async fn idle(&self) {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            // Registered before the check, so a call ending in between still wakes us.
            freed.as_mut().enable();
            if self.is_idle() {
                return;
            }
            freed.await;
        }
    }

    /// Marks a call in progress until the returned guard is dropped.
    pub fn begin(&self) -> Busy {
        self.inner.calls.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }
}

/// One call in progress; dropping it (however the call ends) ends the call.
pub struct Busy(ModelLoad);

impl Drop for Busy {
    fn drop(&mut self) {
        let before = self.0.inner.calls.fetch_sub(1, Ordering::AcqRel);
        if before <= self.0.inner.workers {
            self.0.inner.freed.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn idle_resolves_when_the_last_call_ends() {
        let load = ModelLoad::default();
        assert!(load.is_idle());
        load.idle().await;
        let a = load.begin();
        let b = load.begin();
        assert!(!load.is_idle());
        let waiter = tokio::spawn({
            let load = load.clone();
            async move { load.idle().await }
        });
        drop(a);
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "one call is still in progress");
        drop(b);
        waiter.await.unwrap();
        assert!(load.is_idle());
    }

    #[test]
    fn two_workers_are_idle_until_both_are_busy() {
        let load = ModelLoad::with_workers(2);
        let a = load.begin();
        assert!(load.is_idle(), "one worker is still free");
        let b = load.begin();
        assert!(!load.is_idle());
        drop(a);
        assert!(load.is_idle());
        drop(b);
    }
}
