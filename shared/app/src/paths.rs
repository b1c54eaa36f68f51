//! The embedded store as the folder indexer's path registry port.

use std::sync::Arc;

use async_trait::async_trait;
use imgfeat_core::ImageId;
use imgfeat_core::ports::{PathIdConflict, PathRegistry, StoreError};
use imgfeat_store::SqliteStore;

pub struct SqlitePathRegistry(pub Arc<SqliteStore>);

#[async_trait]
impl PathRegistry for SqlitePathRegistry {
    async fn register_paths(
        &self,
        paths: &[String],
    ) -> Result<Vec<Result<ImageId, PathIdConflict>>, StoreError> {
        self.0.register_paths(paths).await
    }

    async fn path_of(&self, id: ImageId) -> Result<Option<String>, StoreError> {
        self.0.path_of(id).await
    }
}
