//! The settings of every source, built whatever the features: a build without the
//! network sources still reads, checks and prints the same settings.

use std::path::PathBuf;

use imgfeat_cql::config::{ConfigError, ConsistencyLevel, CqlTls, RetryConfig, check_identifier};
use serde::{Deserialize, Serialize};

/// Where workers read images from; [`SourceSettings::open`] opens the one chosen.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum SourceSettings {
    /// A path template with `{id}`, e.g. `/data/images/{id}.jpg`.
    Folder { template: String },
    /// A URL template with `{id}`, fetched with timeouts and bounded concurrency.
    Http(HttpSourceConfig),
    /// A CQL blob table.
    Cql(Box<CqlSourceConfig>),
}

impl Default for SourceSettings {
    fn default() -> Self {
        SourceSettings::Folder {
            template: "images/{id}.jpg".into(),
        }
    }
}

/// An HTTP(S) URL template (see `crate::http`, feature `http`).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSourceConfig {
    /// e.g. `http://images.internal/{id}.jpg` or `https://images.internal/{id}.jpg`
    pub url_template: String,
    pub connect_timeout_ms: u64,
    /// Whole request, headers and body.
    pub timeout_ms: u64,
    pub max_concurrent_fetches: usize,
    /// PEM file of CA certificates trusted for an `https://` template besides the
    /// system's roots: for image servers whose certificates a private CA signs.
    pub ca_file: Option<PathBuf>,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        Self {
            url_template: "http://127.0.0.1:8000/{id}.jpg".into(),
            connect_timeout_ms: 2_000,
            timeout_ms: 10_000,
            max_concurrent_fetches: 16,
            ca_file: None,
        }
    }
}

/// How the table's ID column is typed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IdType {
    /// `bigint`: the u64 image ID bit-cast, as the results store keeps it.
    #[default]
    Bigint,
    /// `text`: the ID in decimal.
    Text,
}

/// A CQL table of encoded images.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct CqlSourceConfig {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// Data centre to read from (token-aware, local only); unset: any.
    pub local_dc: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `LOCAL_QUORUM` by default; `LOCAL_ONE` is enough for write-once image blobs.
    pub consistency: ConsistencyLevel,
    pub request_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub retries: RetryConfig,
    /// Where the images are. Names are used quoted, exactly as given (case-sensitive).
    pub keyspace: String,
    pub table: String,
    /// Partition key column holding the image ID.
    pub id_column: String,
    pub id_type: IdType,
    /// `blob` column holding the encoded image.
    pub bytes_column: String,
    /// Larger images are refused as `TooLarge`. CQL cannot send part of a cell, so the
    /// blob is read before it can be measured; the protocol caps frames at 256 MB anyway.
    pub max_bytes: u64,
    /// Most fetches in flight at once, whatever the callers' concurrency.
    pub max_concurrent_fetches: usize,
    /// `[source.tls]`: connect over TLS, as the results store does; absent: plain TCP.
    pub tls: Option<CqlTls>,
}

impl Default for CqlSourceConfig {
    fn default() -> Self {
        Self {
            nodes: vec!["127.0.0.1:9042".to_string()],
            local_dc: None,
            username: None,
            password: None,
            consistency: ConsistencyLevel::LocalQuorum,
            request_timeout_ms: 5_000,
            connect_timeout_ms: 30_000,
            retries: RetryConfig::default(),
            keyspace: "images".to_string(),
            table: "images".to_string(),
            id_column: "image_id".to_string(),
            id_type: IdType::Bigint,
            bytes_column: "data".to_string(),
            max_bytes: 32 * 1024 * 1024,
            max_concurrent_fetches: 64,
            tls: None,
        }
    }
}

impl CqlSourceConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.nodes.is_empty() {
            return Err(ConfigError("nodes: give at least one host:port".into()));
        }
        check_identifier("keyspace", &self.keyspace, false)?;
        check_identifier("table", &self.table, false)?;
        check_identifier("id_column", &self.id_column, false)?;
        check_identifier("bytes_column", &self.bytes_column, false)?;
        self.consistency.validate()?;
        self.retries.validate()?;
        if self.max_bytes == 0 || self.max_concurrent_fetches == 0 {
            return Err(ConfigError(
                "max_bytes and max_concurrent_fetches must be over 0".into(),
            ));
        }
        if self.request_timeout_ms == 0 || self.connect_timeout_ms == 0 {
            return Err(ConfigError("timeouts must be over 0 ms".into()));
        }
        Ok(())
    }

    /// The one statement the source runs.
    pub fn select_cql(&self) -> String {
        format!(
            "SELECT \"{}\" FROM \"{}\".\"{}\" WHERE \"{}\" = ?",
            self.bytes_column, self.keyspace, self.table, self.id_column
        )
    }
}
