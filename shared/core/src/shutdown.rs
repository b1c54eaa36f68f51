//! Graceful stop as a small value passed to every long-running task (the mini-redis
//! shape): one trigger, many cheap listeners. Every service stops the same way: the
//! shutdown fires (SIGTERM), it stops taking work, finishes what it holds for at most
//! its `shutdown_grace_ms` ([`Shutdown::finish_within`]), then exits.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    /// Held by a shutdown that never fires, so its channel never closes.
    _never: Option<Arc<watch::Sender<bool>>>,
}

/// Fires the shutdown once; every [`Shutdown`] clone sees it.
pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx, _never: None })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        self.tx.send_replace(true);
    }
}

impl Shutdown {
    /// A shutdown that never fires, for runs that end when their input ends.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            rx,
            _never: Some(Arc::new(tx)),
        }
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown is triggered (or its trigger is dropped).
    pub async fn wait(&self) {
        let mut rx = self.rx.clone();
        let _ = rx.wait_for(|stop| *stop).await;
    }

    /// Runs `work` to its end, except that once this shutdown fires it gets at most
    /// `grace` more: `None` when the grace ran out first (the work is dropped, and what
    /// it held unacked is redelivered or redone).
    pub async fn finish_within<T>(
        &self,
        grace: Duration,
        work: impl Future<Output = T>,
    ) -> Option<T> {
        tokio::pin!(work);
        tokio::select! {
            done = &mut work => return Some(done),
            _ = self.wait() => {}
        }
        tokio::time::timeout(grace, work).await.ok()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn every_clone_sees_the_trigger_and_never_does_not_fire() {
        let (trigger, shutdown) = shutdown_pair();
        let other = shutdown.clone();
        assert!(!shutdown.is_triggered());
        let waiting = tokio::spawn(async move { other.wait().await });
        trigger.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .unwrap()
            .unwrap();
        assert!(shutdown.is_triggered());

        let (dropped, orphan) = shutdown_pair();
        drop(dropped);
        tokio::time::timeout(Duration::from_secs(5), orphan.wait())
            .await
            .unwrap();

        let never = Shutdown::never();
        let waited = tokio::time::timeout(Duration::from_millis(50), never.wait()).await;
        assert!(waited.is_err());
        assert!(!never.is_triggered());
    }

    #[tokio::test(start_paused = true)]
    async fn work_gets_the_grace_after_shutdown_and_no_more() {
        let long = || tokio::time::sleep(Duration::from_secs(3600));
        // No shutdown: the work runs as long as it takes.
        let never = Shutdown::never();
        assert_eq!(
            never
                .finish_within(Duration::from_secs(1), async {
                    long().await;
                    7
                })
                .await,
            Some(7)
        );

        let (trigger, shutdown) = shutdown_pair();
        trigger.trigger();
        let start = tokio::time::Instant::now();
        let quick = shutdown.finish_within(Duration::from_secs(10), async {
            tokio::time::sleep(Duration::from_secs(2)).await;
            1
        });
        assert_eq!(
            quick.await,
            Some(1),
            "work that ends within the grace is kept"
        );
        assert_eq!(
            shutdown
                .finish_within(Duration::from_secs(10), long())
                .await,
            None
        );
        assert_eq!(start.elapsed(), Duration::from_secs(12), "cut at the grace");
    }
}
