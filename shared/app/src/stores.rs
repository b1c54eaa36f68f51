//! Opening the store the settings name, with its readiness check.

use std::sync::Arc;

use imgfeat_core::ports::{
    BackfillStore, DuplicateStore, ExportStore, ReadyCheck, ResultStore, StoreError,
};
use imgfeat_store::SqliteStore;

use crate::settings::{StoreKind, StoreSettings};

/// Every store port of one store, as trait objects, and its readiness check.
#[derive(Clone)]
pub struct OpenStore {
    pub results: Arc<dyn ResultStore>,
    pub backfills: Arc<dyn BackfillStore>,
    pub export: Arc<dyn ExportStore>,
    pub duplicates: Arc<dyn DuplicateStore>,
    /// What `/readyz` asks of the store: one read of one key.
    pub ready: ReadyCheck,
    /// The same store as its SQLite type, when it is the embedded one: for what only it
    /// has (the path registry, the code generation).
    pub embedded: Option<Arc<SqliteStore>>,
}

impl OpenStore {
    fn of<S>(store: Arc<S>, embedded: Option<Arc<SqliteStore>>) -> Self
    where
        S: ResultStore + BackfillStore + ExportStore + DuplicateStore + 'static,
    {
        Self {
            ready: ReadyCheck::store(store.clone()),
            results: store.clone(),
            backfills: store.clone(),
            export: store.clone(),
            duplicates: store,
            embedded,
        }
    }
}

impl StoreSettings {
    /// Opens the store `kind` names. A build without the `cql` feature still reads
    /// these settings and answers `kind = "cql"` with a clear error.
    pub async fn open(&self) -> Result<OpenStore, StoreError> {
        match self.kind {
            StoreKind::Embedded => {
                let s = self.open_embedded()?;
                Ok(OpenStore::of(s.clone(), Some(s)))
            }
            #[cfg(not(feature = "cql"))]
            StoreKind::Cql => Err(StoreError::Invalid(
                "store.kind = \"cql\": this binary was built without the `cql` feature of \
                 imgfeat-app; build it with that feature (the services and the default \
                 `imgfeat` build have it)"
                    .into(),
            )),
            #[cfg(feature = "cql")]
            StoreKind::Cql => Ok(OpenStore::of(
                Arc::new(imgfeat_cql::CqlStore::connect(&self.cql).await?),
                None,
            )),
        }
    }

    /// The embedded store at `path`, whatever `kind` says.
    pub fn open_embedded(&self) -> Result<Arc<SqliteStore>, StoreError> {
        Ok(Arc::new(SqliteStore::open(&self.path)?))
    }
}
