//! Whether a model thread is busy, for the batcher: a batch closes as soon as the model
//! is free, so the model never idles while work waits (continuous batching).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// Calls in progress on one model (queued or running), shared by its handles.
#[derive(Clone, Default)]
pub struct ModelLoad {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    calls: AtomicUsize,
    freed: Notify,
}

impl ModelLoad {
    pub fn is_idle(&self) -> bool {
        self.inner.calls.load(Ordering::Acquire) == 0
    }

    /// Resolves once no call is in progress.
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
        if self.0.inner.calls.fetch_sub(1, Ordering::AcqRel) == 1 {
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
}
