//! One typed settings struct, layered: built-in defaults, then an optional TOML file,
//! then `IMGFEAT_*` environment variables (`__` between levels, e.g.
//! `IMGFEAT_PIPELINE__DETECTOR__BATCH__MAX_BATCH=16`), validated at start.

use std::path::{Path, PathBuf};

use crate::layers::load_settings;

use imgfeat_pipeline::PipelineSettings;
use imgfeat_search::store_loader::RadiusMethod;
use serde::{Deserialize, Serialize};

use crate::logging::LogSettings;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppSettings {
    pub store: StoreSettings,
    /// The broker, for `imgfeat dlq`.
    pub amqp: imgfeat_amqp::AmqpConfig,
    pub pipeline: PipelineSettings,
    pub log: LogSettings,
    /// Similar-image search and dedup (`imgfeat similar`, `imgfeat dedup`).
    pub search: SearchSettings,
}

/// How near two codes must be to count as copies of one photo.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// Hamming radius of a near-duplicate; unset means the default for the code length
    /// ([`SearchSettings::dedup_radius_for`]).
    pub dedup_radius: Option<u32>,
    /// `auto`: on 128-bit and longer codes past a radius of 16, radius queries probe a
    /// smaller certified radius (approximate: recall of copies measured >= 0.99, never a
    /// hit beyond the radius) and dedup is the banded self-join (exact, faster); exact
    /// multi-index hashing otherwise. `exact`: exact multi-index hashing always.
    pub radius_method: RadiusMethod,
}

impl SearchSettings {
    /// The configured radius, or the default for `bits`-bit codes: 1/8 of the length
    /// (8 of 64 bits), the largest radius that let in under 0.1 % of distinct pairs with
    /// both seeds of `imgfeat eval` on the 301 catalogue and fixture photos (0.007 % and
    /// 0.091 %; 9 bits already let in 0.103 % with the second). It keeps 73-75 % of the
    /// seeded copies: no radius of the 64-bit SimHash codes keeps 99 % of copies (that
    /// takes 28 bits) with under 0.1 % of distinct pairs (37 % fall within 28), so dedup
    /// errs on the side of never merging distinct photos. 128 and 256 bits scale the
    /// same 1/8 without a measurement of their own (no such head is shipped yet). The
    /// tables are in docs/quality.md.
    pub fn dedup_radius_for(&self, bits: u32) -> u32 {
        self.dedup_radius.unwrap_or(bits / 8)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// One SQLite file (one machine; several processes may share it).
    #[default]
    Embedded,
    /// ScyllaDB or Cassandra (`store.cql.*`).
    Cql,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    pub kind: StoreKind,
    /// The embedded store's file.
    pub path: PathBuf,
    pub cql: imgfeat_cql::CqlConfig,
}

impl Default for StoreSettings {
    fn default() -> Self {
        Self {
            kind: StoreKind::Embedded,
            path: PathBuf::from("imgfeat-data/imgfeat.sqlite3"),
            cql: imgfeat_cql::CqlConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("settings file {0} does not exist")]
    MissingFile(PathBuf),
    #[error("invalid settings: {0}")]
    Invalid(String),
    #[error(
        "{variable} sets {key}, which is not a setting here (`imgfeat config defaults --service NAME` lists them)"
    )]
    UnknownVariable { variable: String, key: String },
}

impl AppSettings {
    pub fn load(file: Option<&Path>) -> Result<Self, SettingsError> {
        let settings: Self = load_settings(file)?;
        settings.validate()?;
        Ok(settings)
    }

    pub fn validate(&self) -> Result<(), SettingsError> {
        self.pipeline.validate().map_err(SettingsError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Environment variables are process-wide; one test covers every layer so tests
    // running in parallel never see each other's variables.
    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("imgfeat.toml");
        std::fs::write(
            &file,
            "[pipeline.detector.batch]\nmax_batch = 6\nmax_wait_ms = 7\n[store]\npath = \"from-file.sqlite3\"\n",
        )
        .unwrap();
        let defaults = AppSettings::load(None).unwrap();
        assert_eq!(defaults.pipeline.detector.batch.max_batch, 2);

        let from_file = AppSettings::load(Some(&file)).unwrap();
        assert_eq!(from_file.pipeline.detector.batch.max_batch, 6);
        assert_eq!(from_file.pipeline.detector.batch.max_wait_ms, 7);
        assert_eq!(from_file.store.path, PathBuf::from("from-file.sqlite3"));

        // Setting process environment variables is unsafe under edition 2024 and racy
        // across parallel tests, so the environment layer is fed its variables directly.
        let layered: AppSettings = crate::settings_from(
            AppSettings::default(),
            Some(&file),
            [(
                "IMGFEAT_PIPELINE__DETECTOR__BATCH__MAX_BATCH".to_string(),
                "16".to_string(),
            )]
            .into_iter(),
        )
        .unwrap();
        assert_eq!(
            layered.pipeline.detector.batch.max_batch, 16,
            "environment wins"
        );
        assert_eq!(
            layered.pipeline.detector.batch.max_wait_ms, 7,
            "file still applies"
        );

        std::fs::write(&file, "[pipeline.detector]\ncrop_jpeg_quality = 0\n").unwrap();
        let err = AppSettings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("crop_jpeg_quality"), "{err}");
        std::fs::write(&file, "[pipeline.detectr]\n").unwrap();
        let err = AppSettings::load(Some(&file)).unwrap_err().to_string();
        assert!(err.contains("detectr"), "{err}");
        assert!(AppSettings::load(Some(&dir.path().join("none.toml"))).is_err());
    }
}
