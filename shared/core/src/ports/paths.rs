use async_trait::async_trait;

use crate::ImageId;
use crate::ports::StoreError;

/// Two files that would share one image ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("path {path:?} would get image ID {id}, which already belongs to {other:?}")]
pub struct PathIdConflict {
    pub path: String,
    pub id: ImageId,
    /// The path registered earlier with that ID.
    pub other: String,
}

/// Maps files to image IDs for the folder source: a numeric file stem is the ID; any
/// other file gets a stable ID assigned once and kept with its path.
#[async_trait]
pub trait PathRegistry: Send + Sync {
    async fn register_paths(
        &self,
        paths: &[String],
    ) -> Result<Vec<Result<ImageId, PathIdConflict>>, StoreError>;

    async fn path_of(&self, id: ImageId) -> Result<Option<String>, StoreError>;
}
