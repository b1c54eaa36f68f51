//! Layered configuration: defaults, then the `--config` TOML file, then `IMGFEAT_*`
//! environment variables with `__` between levels (`IMGFEAT_AMQP__URL`,
//! `IMGFEAT_BACKFILL__RATE_PER_SEC`). Lists in the environment are comma-separated
//! (`IMGFEAT_AMQP__RETRY_DELAYS_MS=1000,5000`). Validated once, at start.

use std::path::{Path, PathBuf};

use imgfeat_amqp::AmqpConfig;
use imgfeat_app::logging::LogSettings;
pub use imgfeat_app::settings::{StoreKind, StoreSettings};
use imgfeat_core::ModelVersion;
pub use imgfeat_http::{AuthMode, HttpSettings, MIN_TOKEN_LEN, TelemetrySettings, Token};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub amqp: AmqpConfig,
    pub http: HttpSettings,
    /// `/metrics` and the probes.
    pub telemetry: TelemetrySettings,
    /// Where backfill progress is kept and skip-done looks for codes: the fleet's own
    /// store (`kind = "cql"` in production), so skip-done sees the workers' results.
    pub store: StoreSettings,
    pub limits: Limits,
    pub backfill: BackfillSettings,
    pub uploads: UploadsSettings,
    pub watch: WatchSettings,
    pub log: LogSettings,
    /// How long SIGTERM may take: running chunks finish and are saved, the upload
    /// batch in hand is forwarded and acked, then the process exits regardless.
    pub shutdown_grace_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            amqp: AmqpConfig::default(),
            // compose's ports for ingest.
            http: HttpSettings::default(),
            telemetry: TelemetrySettings::at("0.0.0.0:9464"),
            store: StoreSettings::default(),
            limits: Limits::default(),
            backfill: BackfillSettings::default(),
            uploads: UploadsSettings::default(),
            watch: WatchSettings::default(),
            // Backfill progress and refusals are worth reading by default.
            log: LogSettings {
                level: "info".into(),
                ..LogSettings::default()
            },
            shutdown_grace_ms: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Most IDs one `POST /v1/images` may carry.
    pub max_ids_per_request: usize,
    /// Most IDs one backfill may cover (`to - from + 1`).
    pub max_backfill_range: u64,
    /// Most backfills running at once; one more gets 429 until one ends or is cancelled.
    pub max_running_backfills: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_ids_per_request: 10_000,
            max_backfill_range: 1_000_000_000,
            max_running_backfills: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BackfillSettings {
    /// IDs per confirmed chunk; progress is saved after each, so a crash repeats at
    /// most one chunk.
    pub chunk_size: u64,
    /// IDs per second each job publishes (skipped IDs count too); 0 means unlimited.
    pub rate_per_sec: u64,
    /// Default of a request's `skip_done`: leave out IDs that already have a code under
    /// the job's `model`.
    pub skip_done: bool,
    /// Publishing pauses while the backfill queue holds this many messages or more...
    pub high_water: u64,
    /// ...and resumes once it holds this many or fewer. The defaults keep 17-33 minutes
    /// of work queued for one 2-core worker (~50 images/s) and 10-20 s for a hundred of
    /// them at the default publishing rate, instead of the whole backfill.
    pub low_water: u64,
}

impl Default for BackfillSettings {
    fn default() -> Self {
        Self {
            chunk_size: 1_000,
            rate_per_sec: 5_000,
            skip_done: false,
            high_water: 100_000,
            low_water: 50_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadsSettings {
    /// Forward upload events from `<prefix>.uploads` to the live queue.
    pub enabled: bool,
    /// Most events forwarded in one confirmed publish.
    pub max_batch: usize,
}

impl Default for UploadsSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            max_batch: 256,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchSettings {
    /// A folder whose new files `<id>.<ext>` become live jobs (the folder source).
    pub dir: Option<PathBuf>,
    /// How often the folder is scanned.
    pub interval_ms: u64,
    /// Also publish the files already there at start (off: only new files).
    pub publish_existing: bool,
    /// Model version sent with watched jobs, if any.
    pub model: Option<ModelVersion>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            dir: None,
            interval_ms: 1_000,
            publish_existing: false,
            model: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error(transparent)]
    Load(#[from] imgfeat_app::SettingsError),
    #[error(transparent)]
    Amqp(#[from] imgfeat_amqp::ConfigError),
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then `file` (if given), then the `IMGFEAT_*` environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        // The services' one loader: only IMGFEAT_SECTION__KEY variables are settings,
        // so IMGFEAT_ORT_LIB and friends don't fail the start.
        let settings: Settings = imgfeat_app::load_settings(file)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.amqp.validate()?;
        let invalid = |m: &str| Err(SettingsError::Invalid(m.to_owned()));
        self.http
            .validate(&self.telemetry)
            .map_err(SettingsError::Invalid)?;
        if self.limits.max_ids_per_request == 0
            || self.limits.max_backfill_range == 0
            || self.limits.max_running_backfills == 0
        {
            return invalid(
                "limits.max_ids_per_request, limits.max_backfill_range and limits.max_running_backfills must be >= 1",
            );
        }
        if self.backfill.chunk_size == 0 {
            return invalid("backfill.chunk_size must be >= 1");
        }
        if self.backfill.low_water >= self.backfill.high_water {
            return invalid("backfill.low_water must be below backfill.high_water");
        }
        if self.uploads.max_batch == 0 {
            return invalid("uploads.max_batch must be >= 1");
        }
        if self.watch.interval_ms == 0 {
            return invalid("watch.interval_ms must be >= 1");
        }
        if self.shutdown_grace_ms == 0 {
            return invalid("shutdown_grace_ms must be >= 1");
        }
        Ok(())
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shutdown_grace_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token() -> Settings {
        let mut s = Settings::default();
        s.http.token = Some(Token::new("0123456789abcdef"));
        s
    }

    #[test]
    fn defaults_with_a_token_validate() {
        with_token().validate().unwrap();
    }

    #[test]
    fn no_token_refuses_to_start_unless_auth_is_none() {
        let mut s = Settings::default();
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("http.token is not set"), "{err}");
        s.http.token = Some(Token::new("short"));
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("at least 16"), "{err}");
        s.http.token = None;
        s.http.auth = AuthMode::None;
        s.validate().unwrap();
        s.http.token = Some(Token::new("0123456789abcdef"));
        let err = s.validate().unwrap_err().to_string();
        assert!(
            err.contains("auth = \"none\" but http.token is set"),
            "{err}"
        );
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let shown = format!("{:?}", with_token());
        assert!(!shown.contains("0123456789abcdef"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn metrics_need_their_own_port() {
        let mut s = with_token();
        s.telemetry.listen = Some(s.http.listen.clone());
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("own port"), "{err}");
        // Port 0 twice means two different free ports.
        s.http.listen = "127.0.0.1:0".into();
        s.telemetry.listen = Some("127.0.0.1:0".into());
        s.validate().unwrap();
    }

    #[test]
    fn bad_values_name_their_key() {
        let mut s = with_token();
        s.backfill.chunk_size = 0;
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("backfill.chunk_size")
        );
        s.backfill.chunk_size = 1;
        s.http.listen = "nowhere".into();
        assert!(
            s.validate()
                .unwrap_err()
                .to_string()
                .contains("http.listen")
        );
    }
}
