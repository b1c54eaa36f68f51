//! The serve settings: defaults, then `--config FILE`, then `IMGFEAT_*` (so
//! `IMGFEAT_SERVE__MAX_QUEUED=4` works).

use std::path::Path;

use imgfeat_app::logging::LogSettings;
use imgfeat_app::{SettingsError, load_settings};
use imgfeat_http::Token;
pub use imgfeat_http::{HttpSettings, TelemetrySettings};
use imgfeat_infer::EngineSettings;
use imgfeat_pipeline::PipelineSettings;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    /// `/metrics` and the probes.
    pub telemetry: TelemetrySettings,
    /// Models, decoding and the two batch policies (`pipeline.detector.batch`,
    /// `pipeline.extractor.batch`): the same as the workers', so the codes are the same.
    pub pipeline: PipelineSettings,
    pub serve: ServeSettings,
    pub log: LogSettings,
    /// After SIGTERM, how long admitted images may take to finish before the process
    /// exits (the same setting as every service's).
    pub shutdown_grace_ms: u64,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeSettings {
    /// Images admitted at once, queued or in flight, across every model version; the
    /// next gets 429. An admitted image waits at most about `max_queued / throughput`
    /// plus one batch.
    pub max_queued: usize,
    /// How long an image may take from admission to its answer; past it the image is
    /// dropped before inference and the request gets 504. 0: no deadline. A request may
    /// ask for a shorter one (`?deadline_ms=`).
    pub deadline_ms: u64,
    /// Images in one multipart request; unset: 16, or `max_queued` if that is smaller
    /// (a request larger than what may be admitted at once could never be served).
    pub max_images_per_request: Option<usize>,
    /// Detector manifests served side by side, each with its own sessions and batchers;
    /// the first is the default. Empty: `pipeline.models.detector` alone.
    pub detectors: Vec<String>,
    /// `Retry-After` of a 429, in seconds.
    pub retry_after_s: u64,
    /// Base URL of imgfeat-search (`http://imgfeat-search:8080`), asked by code for
    /// `?neighbours=k`. Unset: `?neighbours=` is a 400.
    pub search_url: Option<String>,
    /// How long one request's neighbour lookups may take; past it the answer comes with
    /// `neighbours_error` instead of neighbours.
    pub search_timeout_ms: u64,
    /// The search service's bearer token (`IMGFEAT_SERVE__SEARCH_TOKEN`, from a Secret).
    pub search_token: Option<Token>,
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            max_queued: 32,
            deadline_ms: 10_000,
            max_images_per_request: None,
            detectors: Vec::new(),
            retry_after_s: 1,
            search_url: None,
            search_timeout_ms: 1_000,
            search_token: None,
        }
    }
}

/// compose's ports for serve, so that it runs beside the other services on one host.
impl Default for Settings {
    fn default() -> Self {
        Self {
            http: HttpSettings {
                listen: "0.0.0.0:8082".into(),
                ..HttpSettings::default()
            },
            telemetry: TelemetrySettings::at("0.0.0.0:9468"),
            pipeline: PipelineSettings::default(),
            serve: ServeSettings::default(),
            log: LogSettings::default(),
            shutdown_grace_ms: 30_000,
        }
    }
}

impl ServeSettings {
    /// The effective `max_images_per_request`.
    pub fn images_per_request(&self) -> usize {
        self.max_images_per_request
            .unwrap_or_else(|| self.max_queued.min(16))
    }
}

impl Settings {
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let s: Self = load_settings(file)?;
        s.validate()?;
        Ok(s)
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.shutdown_grace_ms)
    }

    /// What the inference engine takes from these settings.
    pub fn engine(&self) -> EngineSettings {
        EngineSettings {
            pipeline: self.pipeline.clone(),
            max_queued: self.serve.max_queued,
            max_queued_key: "serve.max_queued",
            deadline_ms: self.serve.deadline_ms,
            detectors: self.serve.detectors.clone(),
        }
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.http
            .validate(&self.telemetry)
            .map_err(SettingsError::Invalid)?;
        self.pipeline.validate().map_err(SettingsError::Invalid)?;
        let s = &self.serve;
        let invalid = |m: &str| Err(SettingsError::Invalid(m.into()));
        if s.max_queued == 0 || s.max_queued > 100_000 {
            return invalid("serve.max_queued must be 1..=100000");
        }
        if s.images_per_request() == 0 || s.images_per_request() > s.max_queued {
            return invalid("serve.max_images_per_request must be 1..=serve.max_queued");
        }
        if self.shutdown_grace_ms == 0 {
            return invalid("shutdown_grace_ms must be over 0");
        }
        if s.search_timeout_ms == 0 {
            return invalid("serve.search_timeout_ms must be over 0");
        }
        if let Some(url) = &s.search_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(SettingsError::Invalid(format!(
                "serve.search_url: {url:?} is not an http(s) URL"
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for d in &s.detectors {
            if !seen.insert(d) {
                return Err(SettingsError::Invalid(format!(
                    "serve.detectors names {d} twice"
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_token() -> Settings {
        let mut s = Settings::default();
        s.http.token = Some(imgfeat_http::Token::new("0123456789abcdef"));
        s
    }

    #[test]
    fn defaults_need_a_token_and_bad_limits_are_named() {
        let err = Settings::default().validate().unwrap_err().to_string();
        assert!(err.contains("http.token"), "{err}");
        with_token().validate().unwrap();
        let mut s = with_token();
        s.serve.max_queued = 4;
        s.validate().unwrap();
        assert_eq!(
            s.serve.images_per_request(),
            4,
            "follows a smaller max_queued"
        );
        s.serve.max_images_per_request = Some(5);
        let err = s.validate().unwrap_err().to_string();
        assert!(err.contains("max_images_per_request"), "{err}");
        let mut s = with_token();
        s.serve.detectors = vec!["a.toml".into(), "a.toml".into()];
        assert!(s.validate().unwrap_err().to_string().contains("twice"));
        let mut s = with_token();
        s.serve.search_url = Some("imgfeat-search:8080".into());
        assert!(s.validate().unwrap_err().to_string().contains("search_url"));
        s.serve.search_url = Some("http://imgfeat-search:8080".into());
        s.validate().unwrap();
    }

    #[test]
    fn the_engine_gets_the_serve_limits_and_detectors() {
        let mut s = with_token();
        s.serve.detectors = vec!["b.toml".into()];
        let e = s.engine();
        assert_eq!(e.max_queued, s.serve.max_queued);
        assert_eq!(e.max_queued_key, "serve.max_queued");
        assert_eq!(e.detector_manifests(), vec!["b.toml"]);
    }
}
