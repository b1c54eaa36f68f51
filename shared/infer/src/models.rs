//! The model versions served side by side, chosen per request (`?model=` of
//! imgfeat-serve).

use std::sync::Arc;

use imgfeat_exec::cpu_pool::CpuPool;
use imgfeat_pipeline::parts::{self, LoadError};

use crate::metrics::BatchMetrics;
use crate::settings::EngineSettings;
use crate::variant::Variant;

pub struct Models {
    /// The default first.
    variants: Vec<Arc<Variant>>,
}

impl Models {
    /// Loads every configured detector with an extractor of its own (blocking).
    pub fn load(
        settings: &EngineSettings,
        metrics: &BatchMetrics,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, LoadError> {
        let pool: CpuPool = parts::cpu_pool(&settings.pipeline)?;
        let capacity = settings.max_queued;
        let mut variants = Vec::new();
        for manifest in settings.detector_manifests() {
            let mut pipeline = settings.pipeline.clone();
            pipeline.models.detector = manifest;
            let v = Variant::load(&pipeline, pool.clone(), capacity, metrics, runtime)?;
            tracing::info!(detector = %v.detector_version, code = %v.code_version, "model loaded");
            variants.push(Arc::new(v));
        }
        Ok(Self { variants })
    }

    /// The version a request asked for, by detector version (`name@1`), code version
    /// or detector name; the default when it asked for none.
    pub fn choose(&self, wanted: Option<&str>) -> Option<&Arc<Variant>> {
        let Some(wanted) = wanted else {
            return self.variants.first();
        };
        self.variants.iter().find(|v| {
            let detector = v.detector_version.as_str();
            detector == wanted
                || v.code_version.as_str() == wanted
                || detector.split('@').next() == Some(wanted)
        })
    }

    pub fn versions(&self) -> Vec<String> {
        self.variants
            .iter()
            .map(|v| v.detector_version.to_string())
            .collect()
    }
}
