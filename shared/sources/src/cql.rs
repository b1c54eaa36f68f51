//! Images kept as blobs in a CQL table (as JD keeps them in its distributed database),
//! served through the `ImageSource` port.

use std::sync::Arc;

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, SourceError};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;

use imgfeat_cql::config::{ConfigError, ConsistencyLevel, RetryConfig, check_identifier};
use imgfeat_cql::errors::source_error;
use imgfeat_cql::retry::{classify, with_retries};
use imgfeat_cql::rows::id_to_cql;
use imgfeat_cql::session::{self, ConnectOptions};

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
    pub tls: Option<imgfeat_cql::tls::CqlTls>,
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

#[derive(Debug, thiserror::Error)]
pub enum SourceSetupError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("connecting to the image cluster: {0}")]
    Connect(String),
    #[error("image cluster TLS settings: {0}")]
    Tls(String),
    #[error("preparing {cql}: {error}")]
    Prepare { cql: String, error: String },
}

pub struct CqlImageSource {
    session: Arc<Session>,
    select: PreparedStatement,
    cfg: CqlSourceConfig,
    permits: Semaphore,
}

impl std::fmt::Debug for CqlImageSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlImageSource")
            .field(
                "table",
                &format!("{}.{}", self.cfg.keyspace, self.cfg.table),
            )
            .finish_non_exhaustive()
    }
}

impl CqlImageSource {
    pub async fn connect(cfg: &CqlSourceConfig) -> Result<Self, SourceSetupError> {
        cfg.validate()?;
        let opts = ConnectOptions {
            nodes: &cfg.nodes,
            local_dc: cfg.local_dc.as_deref(),
            username: cfg.username.as_deref(),
            password: cfg.password.as_deref(),
            tls: cfg.tls.as_ref(),
            consistency: cfg.consistency,
            request_timeout: std::time::Duration::from_millis(cfg.request_timeout_ms),
            connect_timeout: std::time::Duration::from_millis(cfg.connect_timeout_ms),
        };
        let session = session::open(&opts).await.map_err(|e| match e {
            session::OpenError::Tls(e) => SourceSetupError::Tls(e.to_string()),
            session::OpenError::Connect(e) => SourceSetupError::Connect(e),
        })?;
        Self::with_session(Arc::new(session), cfg).await
    }

    /// Shares a session opened elsewhere (e.g. the results store's, same cluster). The
    /// statement is prepared here, so a wrong table, column or type fails at start-up.
    pub async fn with_session(
        session: Arc<Session>,
        cfg: &CqlSourceConfig,
    ) -> Result<Self, SourceSetupError> {
        cfg.validate()?;
        let cql = cfg.select_cql();
        let mut select =
            session
                .prepare(cql.clone())
                .await
                .map_err(|e| SourceSetupError::Prepare {
                    cql: cql.clone(),
                    error: e.to_string(),
                })?;
        select.set_is_idempotent(true);
        Ok(Self {
            session,
            select,
            permits: Semaphore::new(cfg.max_concurrent_fetches),
            cfg: cfg.clone(),
        })
    }
}

/// What one row held, decided without a server.
pub fn judge_row(
    id: ImageId,
    rows: Vec<(Option<Vec<u8>>,)>,
    max_bytes: u64,
) -> Result<Vec<u8>, SourceError> {
    let Some((bytes,)) = rows.into_iter().next() else {
        return Err(SourceError::NotFound(
            id,
            "no row in the image table".into(),
        ));
    };
    let Some(bytes) = bytes else {
        return Err(SourceError::NotFound(
            id,
            "the image's bytes are null".into(),
        ));
    };
    let size = bytes.len() as u64;
    if size > max_bytes {
        return Err(SourceError::TooLarge {
            id,
            size,
            limit: max_bytes,
        });
    }
    Ok(bytes)
}

#[async_trait]
impl ImageSource for CqlImageSource {
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| SourceError::Unavailable("image source closed".into()))?;
        let res = match self.cfg.id_type {
            IdType::Bigint => {
                let key = (id_to_cql(id),);
                with_retries(&self.cfg.retries, true, "fetch image", classify, || {
                    self.session.execute_unpaged(&self.select, key)
                })
                .await
            }
            IdType::Text => {
                let key = (id.to_string(),);
                with_retries(&self.cfg.retries, true, "fetch image", classify, || {
                    self.session.execute_unpaged(&self.select, &key)
                })
                .await
            }
        }
        .map_err(|e| source_error(id, &e))?;
        let rows = res
            .into_rows_result()
            .map_err(|e| SourceError::Unavailable(format!("image {id}: {e}")))?;
        let rows = rows
            .rows::<(Option<Vec<u8>>,)>()
            .map_err(|e| SourceError::Unavailable(format!("image {id}: {e}")))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| SourceError::Unavailable(format!("image {id}: {e}")))?;
        judge_row(id, rows, self.cfg.max_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_is_quoted_and_addresses_one_partition() {
        let cfg = CqlSourceConfig {
            keyspace: "jd".into(),
            table: "Images".into(),
            id_column: "sku_image_id".into(),
            bytes_column: "content".into(),
            ..Default::default()
        };
        cfg.validate().unwrap();
        assert_eq!(
            cfg.select_cql(),
            "SELECT \"content\" FROM \"jd\".\"Images\" WHERE \"sku_image_id\" = ?"
        );
    }

    #[test]
    fn names_that_could_inject_are_refused() {
        let cfg = CqlSourceConfig {
            table: "images\" WHERE 1=1 --".into(),
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
        let cfg = CqlSourceConfig {
            max_concurrent_fetches: 0,
            ..Default::default()
        };
        assert!(cfg.validate().is_err());
    }

    #[test]
    fn config_reads_from_toml() {
        let cfg: CqlSourceConfig =
            toml::from_str("table = \"photos\"\nid_type = \"text\"\nmax_bytes = 1000").unwrap();
        assert_eq!(cfg.id_type, IdType::Text);
        assert_eq!(cfg.max_bytes, 1000);
        assert_eq!(cfg.bytes_column, "data");
    }

    #[test]
    fn missing_rows_and_null_bytes_are_not_found_and_permanent() {
        for rows in [vec![], vec![(None,)]] {
            let err = judge_row(ImageId(7), rows, 10).unwrap_err();
            assert!(matches!(err, SourceError::NotFound(ImageId(7), _)), "{err}");
            assert_eq!(err.class(), imgfeat_core::ErrorClass::Permanent);
        }
    }

    #[test]
    fn oversize_images_are_refused() {
        let err = judge_row(ImageId(7), vec![(Some(vec![0; 11]),)], 10).unwrap_err();
        assert!(matches!(
            err,
            SourceError::TooLarge {
                size: 11,
                limit: 10,
                ..
            }
        ));
        assert_eq!(
            judge_row(ImageId(7), vec![(Some(vec![1; 10]),)], 10).unwrap(),
            vec![1; 10]
        );
    }
}
