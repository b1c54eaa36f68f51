use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ports::StoreError;
use crate::{CodeRecord, DetectionRecord, FailureRecord, ImageId};

/// Everything a store holds for one image, under every model version.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageResults {
    pub image_id: ImageId,
    pub detections: Vec<DetectionRecord>,
    pub codes: Vec<CodeRecord>,
    pub failures: Vec<FailureRecord>,
}

/// Where an export stopped, opaque to everyone but the store that made it, and
/// serialisable so that a copy between stores can resume after a restart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportCursor(pub String);

/// Reads a whole store page by page, in the store's own order, for moving results
/// between stores (`imgfeat store copy`).
#[async_trait]
pub trait ExportStore: Send + Sync {
    /// Up to `limit` images after `cursor` (`None`: from the start), and the cursor to
    /// continue from, `None` once the store is exhausted.
    async fn export_page(
        &self,
        cursor: Option<&ExportCursor>,
        limit: usize,
    ) -> Result<(Vec<ImageResults>, Option<ExportCursor>), StoreError>;
}
