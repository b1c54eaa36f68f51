//! Graceful stop as a small value passed to every long-running task (the mini-redis
//! shape): one trigger, many cheap listeners. A worker stops taking new jobs when it
//! fires and finishes the ones in hand; ingest's loops and HTTP server stop likewise.

use std::sync::Arc;

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
}
