//! The detector's and extractor's settings: read by the workers, and by anything that
//! lists or checks them (`imgfeat config defaults`) without running a worker.

use std::path::Path;

use imgfeat_amqp::AmqpConfig;
use imgfeat_pipeline::PipelineSettings;
use imgfeat_sources::SourceSettings;
use serde::{Deserialize, Serialize};

use crate::layers::settings_from;
use crate::logging::LogSettings;
use crate::settings::{SettingsError, StoreSettings};
pub use imgfeat_http::TelemetrySettings;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerSettings {
    pub amqp: AmqpConfig,
    pub store: StoreSettings,
    /// Where the detector reads images (unused by the extractor).
    pub source: SourceSettings,
    pub pipeline: PipelineSettings,
    pub log: LogSettings,
    pub telemetry: TelemetrySettings,
    /// After SIGTERM, how long the batch in hand may take to finish before exit.
    pub shutdown_grace_ms: u64,
    pub worker: StagesHere,
}

/// Which stages this process runs besides its own.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StagesHere {
    /// The detector also runs the extractor, in its own process, and no extract queue
    /// is used (`IMGFEAT_WORKER__EXTRACT_HERE=true`). It spares the broker one
    /// persistent, confirmed message per image; each detect message is then acked only
    /// once its code is stored. Keep the split fleet to scale the two stages apart, or
    /// when the backbone runs on other hardware. The extractor service ignores it.
    pub extract_here: bool,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            amqp: AmqpConfig::default(),
            store: StoreSettings::default(),
            source: SourceSettings::default(),
            pipeline: PipelineSettings::default(),
            log: LogSettings::default(),
            telemetry: TelemetrySettings::default(),
            shutdown_grace_ms: 30_000,
            worker: StagesHere::default(),
        }
    }
}

impl WorkerSettings {
    /// The detector service's defaults: its metrics on compose's port for it.
    pub fn detector_defaults() -> Self {
        Self {
            telemetry: TelemetrySettings::at("0.0.0.0:9465"),
            ..Self::default()
        }
    }

    /// The extractor service's defaults.
    pub fn extractor_defaults() -> Self {
        Self {
            telemetry: TelemetrySettings::at("0.0.0.0:9466"),
            ..Self::default()
        }
    }

    /// Settings over the library's defaults (no metrics endpoint), for in-process use.
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        Self::load_over(Self::default(), file)
    }

    /// `base` (a service's defaults), then `file`, then the environment.
    pub fn load_over(base: Self, file: Option<&Path>) -> Result<Self, SettingsError> {
        // No retry settings to copy into the stages: they ask each delivery whether it
        // is the last, and `[amqp]` holds the one policy.
        let s: Self = settings_from(base, file, std::env::vars())?;
        s.validate()?;
        Ok(s)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.pipeline.validate().map_err(SettingsError::Invalid)?;
        self.amqp
            .validate()
            .map_err(|e| SettingsError::Invalid(e.to_string()))?;
        let prefetch = self.amqp.prefetch as usize;
        for (name, batch) in [
            ("detector", self.pipeline.detector.batch.max_batch),
            ("extractor", self.pipeline.extractor.batch.max_batch),
        ] {
            // One batch inferring while the next fills: otherwise the broker starves
            // the batcher and every batch closes on its time-out.
            if prefetch < batch * 2 {
                return Err(SettingsError::Invalid(format!(
                    "amqp.prefetch ({prefetch}) must be at least 2 x pipeline.{name}.batch.max_batch ({batch})"
                )));
            }
        }
        Ok(())
    }
}
