//! One typed settings struct, layered: built-in defaults, then an optional TOML file,
//! then `IMGFEAT_*` environment variables (`__` between levels, e.g.
//! `IMGFEAT_PIPELINE__DETECTOR__BATCH__MAX_BATCH=16`), validated at start.

use std::path::{Path, PathBuf};

use imgfeat_pipeline::PipelineSettings;
use serde::Deserialize;

use crate::logging::LogSettings;

#[derive(Debug, Clone, Default, Deserialize)]
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
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SearchSettings {
    /// Hamming radius of a near-duplicate; unset means the default for the code length
    /// ([`SearchSettings::dedup_radius_for`]).
    pub dedup_radius: Option<u32>,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// One SQLite file (one machine; several processes may share it).
    #[default]
    Embedded,
    /// ScyllaDB or Cassandra (`store.cql.*`).
    Cql,
}

#[derive(Debug, Clone, Deserialize)]
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
}

/// Loads settings from defaults, then `file` (if given), then the environment.
pub fn load_settings<T>(file: Option<&Path>) -> Result<T, SettingsError>
where
    T: for<'de> Deserialize<'de>,
{
    let mut builder = config::Config::builder();
    if let Some(file) = file {
        if !file.is_file() {
            return Err(SettingsError::MissingFile(file.to_path_buf()));
        }
        builder = builder.add_source(config::File::from(file).format(config::FileFormat::Toml));
    }
    builder = builder.add_source(environment_layer(std::env::vars()));
    Ok(builder.build()?.try_deserialize()?)
}

/// Settings from TOML text alone (defaults, then `text`; no environment), for checks and
/// fuzzing of what a settings file may hold.
pub fn settings_from_toml<T>(text: &str) -> Result<T, SettingsError>
where
    T: for<'de> Deserialize<'de>,
{
    let source = config::File::from_str(text, config::FileFormat::Toml);
    Ok(config::Config::builder()
        .add_source(source)
        .build()?
        .try_deserialize()?)
}

/// Settings from `IMGFEAT_*` variables alone (defaults, then `vars`), for checks of the
/// variables one tool hands to the processes it starts.
pub fn settings_from_vars<T>(
    vars: impl Iterator<Item = (String, String)>,
) -> Result<T, SettingsError>
where
    T: for<'de> Deserialize<'de>,
{
    Ok(config::Config::builder()
        .add_source(environment_layer(vars))
        .build()?
        .try_deserialize()?)
}

/// The `IMGFEAT_SECTION__KEY` variables as a config source. Every setting lives in a
/// section, so variables without `__` (IMGFEAT_ORT_LIB, IMGFEAT_TEST_CQL, IMGFEAT_CONFIG)
/// belong to other tools and are left out rather than refused as unknown settings.
pub fn environment_layer(vars: impl Iterator<Item = (String, String)>) -> config::Environment {
    let settings_vars = vars
        .filter(|(k, _)| k.starts_with("IMGFEAT_") && k.contains("__"))
        .collect();
    config::Environment::with_prefix("IMGFEAT")
        .prefix_separator("_")
        .separator("__")
        .list_separator(",")
        .with_list_parse_key("amqp.retry_delays_ms")
        .with_list_parse_key("store.cql.nodes")
        .try_parsing(true)
        .source(Some(settings_vars))
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
        let env = config::Environment::with_prefix("IMGFEAT")
            .prefix_separator("_")
            .separator("__")
            .try_parsing(true)
            .source(Some(
                [(
                    "IMGFEAT_PIPELINE__DETECTOR__BATCH__MAX_BATCH".to_string(),
                    "16".to_string(),
                )]
                .into_iter()
                .collect(),
            ));
        let layered: AppSettings = config::Config::builder()
            .add_source(config::File::from(file.as_path()).format(config::FileFormat::Toml))
            .add_source(env)
            .build()
            .unwrap()
            .try_deserialize()
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
