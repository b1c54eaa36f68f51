//! Graceful stop as a small type passed to every long-running task: a worker stops
//! taking new jobs when it fires, and finishes the ones in hand.

use tokio::sync::watch;

#[derive(Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
    /// Held by a shutdown that never fires, so its channel never closes.
    _never: Option<std::sync::Arc<watch::Sender<bool>>>,
}

pub struct ShutdownTrigger {
    tx: watch::Sender<bool>,
}

pub fn shutdown_pair() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger { tx }, Shutdown { rx, _never: None })
}

impl ShutdownTrigger {
    pub fn trigger(&self) {
        let _ = self.tx.send(true);
    }
}

impl Shutdown {
    /// A shutdown that never fires, for runs that end when their input ends.
    pub fn never() -> Shutdown {
        let (tx, rx) = watch::channel(false);
        Shutdown {
            rx,
            _never: Some(std::sync::Arc::new(tx)),
        }
    }

    pub fn is_triggered(&self) -> bool {
        *self.rx.borrow()
    }

    /// Resolves once shutdown has been triggered (or its trigger dropped).
    pub async fn triggered(&mut self) {
        while !*self.rx.borrow_and_update() {
            if self.rx.changed().await.is_err() {
                return;
            }
        }
    }
}
