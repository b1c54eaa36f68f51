//! Images kept as blobs in a CQL table (as JD keeps them in its distributed database),
//! served through the `ImageSource` port.

use std::sync::Arc;

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{ImageSource, ReadyCheck, SourceError};
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use tokio::sync::Semaphore;

use imgfeat_cql::config::ConfigError;
use imgfeat_cql::errors::source_error;
use imgfeat_cql::retry::{classify, with_retries};
use imgfeat_cql::rows::id_to_cql;
use imgfeat_cql::session::{self, ConnectOptions};

pub use crate::settings::{CqlSourceConfig, IdType};

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

impl CqlImageSource {
    /// Ready while a node of the image cluster answers a query of its own system table.
    pub fn ready_check(self: &Arc<Self>) -> ReadyCheck {
        let session = self.session.clone();
        ReadyCheck::new(move || {
            let session = session.clone();
            Box::pin(async move {
                session
                    .query_unpaged("SELECT release_version FROM system.local", ())
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("image cluster: {e}"))
            })
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
