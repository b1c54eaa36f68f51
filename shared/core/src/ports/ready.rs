//! Readiness: whether an adapter can serve now. An adapter opened from its settings
//! hands back its port together with the check `/readyz` runs on it ([`Opened`]), so a
//! service lists the checks of what it opened instead of writing them by hand.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::ports::ResultStore;
use crate::{ImageId, ModelVersion};

/// A boxed future, so checks of any shape fit one list.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// One readiness check: `Ok` when the thing it checks can serve, else why not. Cheap
/// to clone; the caller bounds how long it may take.
#[derive(Clone)]
pub struct ReadyCheck(Arc<dyn Fn() -> BoxFuture<Result<(), String>> + Send + Sync>);

impl ReadyCheck {
    pub fn new(f: impl Fn() -> BoxFuture<Result<(), String>> + Send + Sync + 'static) -> Self {
        Self(Arc::new(f))
    }

    /// A check that reads a status kept up to date elsewhere (a watch, a flag): it
    /// never waits and never opens anything, so probes cannot pile up.
    pub fn from_status(f: impl Fn() -> Result<(), String> + Send + Sync + 'static) -> Self {
        Self::new(move || {
            let status = f();
            Box::pin(async move { status })
        })
    }

    /// The store check: one read of one key, which needs a live store and costs nothing.
    pub fn store(results: Arc<dyn ResultStore>) -> Self {
        Self::new(move || {
            let results = results.clone();
            Box::pin(async move {
                let probe = ModelVersion::new("readyz@0").map_err(|e| e.to_string())?;
                results
                    .coded(&[ImageId(0)], &probe)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
    }

    /// Runs the check once.
    pub fn run(&self) -> BoxFuture<Result<(), String>> {
        (self.0)()
    }
}

impl std::fmt::Debug for ReadyCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReadyCheck")
    }
}

/// An adapter opened from its settings: the port, and how `/readyz` asks whether it
/// can serve.
#[derive(Debug, Clone)]
pub struct Opened<P> {
    pub port: P,
    pub ready: ReadyCheck,
}
