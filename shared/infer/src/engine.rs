//! The engine as one value a service holds: the model versions (loaded in the
//! background; absent until then), admission in front of them, and the deadline rule.
//! A request is admitted for all its images or none, then each image goes through its
//! version's batchers; images of different requests share batches.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use imgfeat_pipeline::parts::LoadError;
use tokio::time::Instant;

use crate::admission::{Admission, Refused};
use crate::metrics::EngineMetrics;
use crate::models::Models;
use crate::settings::EngineSettings;
use crate::variant::{InferError, Inferred, Variant};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("loading the models: {0}")]
    Load(#[from] LoadError),
    #[error("the model loader stopped: {0}")]
    Loader(String),
}

#[derive(Clone)]
pub struct Engine {
    /// Empty while the models load.
    models: Arc<OnceLock<Models>>,
    admission: Admission,
    settings: Arc<EngineSettings>,
    metrics: EngineMetrics,
}

impl Engine {
    /// An engine with no model yet: [`Engine::load`] loads them.
    pub fn new(settings: EngineSettings, metrics: EngineMetrics) -> Self {
        metrics
            .admission_limit
            .set(i64::try_from(settings.max_queued).unwrap_or(i64::MAX));
        let admission = Admission::new(
            settings.max_queued,
            settings.max_queued_key,
            metrics.admitted.clone(),
        );
        Self {
            models: Arc::new(OnceLock::new()),
            admission,
            settings: Arc::new(settings),
            metrics,
        }
    }

    /// Loads every configured version on a blocking thread and starts their batchers on
    /// the current runtime; resolves once they serve (or could not be loaded).
    pub async fn load(&self) -> Result<(), EngineError> {
        let (settings, models, batch) = (
            self.settings.clone(),
            self.models.clone(),
            self.metrics.batch.clone(),
        );
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || -> Result<(), EngineError> {
            let loaded = Models::load(&settings, &batch, &runtime)?;
            for (stage, v) in loaded.versions().iter().enumerate() {
                tracing::info!(stage, version = %v, "serving");
            }
            let _ = models.set(loaded);
            Ok(())
        })
        .await
        .map_err(|e| EngineError::Loader(e.to_string()))?
    }

    /// The versions served, once loaded.
    pub fn models(&self) -> Option<&Models> {
        self.models.get()
    }

    pub fn admission(&self) -> &Admission {
        &self.admission
    }

    pub fn settings(&self) -> &EngineSettings {
        &self.settings
    }

    /// `Ok` once the models serve and admission is open; why not otherwise (`/readyz`).
    pub fn readiness(&self) -> Result<(), String> {
        if self.admission.is_closing() {
            Err("shutting down".into())
        } else if self.models.get().is_some() {
            Ok(())
        } else {
            Err("loading the models".into())
        }
    }

    /// The deadline of an image admitted now: the earlier of the engine's and the one
    /// the request asked for.
    pub fn deadline(&self, asked_ms: Option<u64>) -> Option<Instant> {
        deadline(self.settings.deadline_ms, asked_ms, Instant::now())
    }

    /// Admits every image of a request at once, or refuses them all; then infers each
    /// through `variant` (sharing batches with other requests) and answers in the order
    /// given. The places are given back when this returns.
    pub async fn infer_all(
        &self,
        variant: &Arc<Variant>,
        images: Vec<Arc<[u8]>>,
        deadline: Option<Instant>,
    ) -> Result<Vec<Result<Inferred, InferError>>, Refused> {
        let admitted = self.admission.admit(images.len())?;
        let mut set = tokio::task::JoinSet::new();
        for (index, bytes) in images.into_iter().enumerate() {
            let variant = variant.clone();
            set.spawn(async move { (index, variant.infer(bytes, deadline).await) });
        }
        let mut results: Vec<(usize, Result<Inferred, InferError>)> = Vec::new();
        let mut failed = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => results.push(r),
                Err(e) => failed.push(e.to_string()),
            }
        }
        drop(admitted);
        results.sort_by_key(|(i, _)| *i);
        let mut out: Vec<Result<Inferred, InferError>> =
            results.into_iter().map(|(_, r)| r).collect();
        // A task that panicked or was cancelled took its index with it: its image, and
        // so the request, failed inside the service.
        for why in failed {
            out.push(Err(InferError::Internal(format!(
                "an image's task failed: {why}"
            ))));
        }
        Ok(out)
    }
}

/// The earlier of the server's deadline (`server_ms`, 0: none) and the one asked for.
pub fn deadline(server_ms: u64, asked_ms: Option<u64>, now: Instant) -> Option<Instant> {
    let ms = match (server_ms, asked_ms) {
        (0, asked) => asked?,
        (server, Some(asked)) => server.min(asked),
        (server, None) => server,
    };
    Some(now + Duration::from_millis(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_earlier_deadline_wins_and_zero_means_none() {
        let now = Instant::now();
        let at = |ms| Some(now + Duration::from_millis(ms));
        assert_eq!(deadline(0, None, now), None);
        assert_eq!(deadline(0, Some(5), now), at(5));
        assert_eq!(deadline(100, None, now), at(100));
        assert_eq!(deadline(100, Some(5), now), at(5));
        assert_eq!(deadline(100, Some(500), now), at(100));
    }

    #[tokio::test]
    async fn an_engine_without_models_is_unready_and_closing_says_so() {
        let metrics = EngineMetrics::register(&prometheus::Registry::new(), "t").unwrap();
        let engine = Engine::new(
            EngineSettings::of_pipeline(Default::default(), 3, "t.max_queued"),
            metrics.clone(),
        );
        assert_eq!(metrics.admission_limit.get(), 3);
        assert!(engine.models().is_none());
        assert!(engine.readiness().unwrap_err().contains("loading"));
        engine.admission().close();
        assert!(engine.readiness().unwrap_err().contains("shutting down"));
    }
}
