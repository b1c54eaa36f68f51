//! Opening the store and the image source the settings name.

use std::sync::Arc;

use imgfeat_core::ports::{
    BackfillStore, DuplicateStore, ExportStore, ImageSource, ResultStore, StoreError,
};
use imgfeat_store::SqliteStore;
use serde::{Deserialize, Serialize};

use crate::settings::{StoreKind, StoreSettings};
use imgfeat_sources::{CqlSourceConfig, HttpSourceConfig, TemplateSource};

pub fn open_embedded(settings: &StoreSettings) -> Result<Arc<SqliteStore>, StoreError> {
    Ok(Arc::new(SqliteStore::open(&settings.path)?))
}

/// Every store port of one store, as trait objects.
#[derive(Clone)]
pub struct OpenStore {
    pub results: Arc<dyn ResultStore>,
    pub backfills: Arc<dyn BackfillStore>,
    pub export: Arc<dyn ExportStore>,
    pub duplicates: Arc<dyn DuplicateStore>,
    /// The same store as its SQLite type, when it is the embedded one: for what only it
    /// has (the path registry, the code generation).
    pub embedded: Option<Arc<SqliteStore>>,
}

pub async fn open_store(settings: &StoreSettings) -> Result<OpenStore, StoreError> {
    match settings.kind {
        StoreKind::Embedded => {
            let s = open_embedded(settings)?;
            Ok(OpenStore {
                results: s.clone(),
                backfills: s.clone(),
                export: s.clone(),
                duplicates: s.clone(),
                embedded: Some(s),
            })
        }
        #[cfg(not(feature = "cql"))]
        StoreKind::Cql => Err(StoreError::Invalid(not_built(
            "store.kind = \"cql\"",
            "cql",
        ))),
        #[cfg(feature = "cql")]
        StoreKind::Cql => {
            let s = Arc::new(imgfeat_cql::CqlStore::connect(&settings.cql).await?);
            Ok(OpenStore {
                results: s.clone(),
                backfills: s.clone(),
                export: s.clone(),
                duplicates: s,
                embedded: None,
            })
        }
    }
}

/// What a build without the adapter answers when the settings choose it.
#[cfg(not(all(feature = "cql", feature = "http-source")))]
fn not_built(setting: &str, feature: &str) -> String {
    format!(
        "{setting}: this binary was built without the `{feature}` feature of imgfeat-app; \
         build it with that feature (the services and the default `imgfeat` build have it)"
    )
}

/// Where workers read images from.
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

#[derive(Debug, thiserror::Error)]
pub enum SourceSetupError {
    #[error("source.template: {0}")]
    Folder(String),
    #[error("source (http): {0}")]
    Http(String),
    #[error("source (cql): {0}")]
    Cql(String),
}

pub async fn open_source(
    settings: &SourceSettings,
    max_bytes: u64,
) -> Result<Arc<dyn ImageSource>, SourceSetupError> {
    Ok(match settings {
        SourceSettings::Folder { template } => Arc::new(
            TemplateSource::new(template.clone(), max_bytes).map_err(SourceSetupError::Folder)?,
        ),
        #[cfg(feature = "http-source")]
        SourceSettings::Http(cfg) => Arc::new(
            imgfeat_sources::HttpSource::new(cfg.clone(), max_bytes)
                .map_err(|e| SourceSetupError::Http(e.to_string()))?,
        ),
        #[cfg(not(feature = "http-source"))]
        SourceSettings::Http(_) => {
            return Err(SourceSetupError::Http(not_built(
                "source.kind = \"http\"",
                "http-source",
            )));
        }
        #[cfg(feature = "cql")]
        SourceSettings::Cql(cfg) => Arc::new(
            imgfeat_sources::CqlImageSource::connect(cfg)
                .await
                .map_err(|e| SourceSetupError::Cql(e.to_string()))?,
        ),
        #[cfg(not(feature = "cql"))]
        SourceSettings::Cql(_) => {
            return Err(SourceSetupError::Cql(not_built(
                "source.kind = \"cql\"",
                "cql",
            )));
        }
    })
}
