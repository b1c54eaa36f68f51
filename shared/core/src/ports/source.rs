use async_trait::async_trait;

use crate::{ErrorClass, FailureKind, FailureReason, ImageId};

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("image {0} not found: {1}")]
    NotFound(ImageId, String),
    #[error("image {id} has {size} bytes, over the limit of {limit}")]
    TooLarge { id: ImageId, size: u64, limit: u64 },
    #[error("image source unavailable: {0}")]
    Unavailable(String),
}

impl SourceError {
    pub fn class(&self) -> ErrorClass {
        self.reason().class()
    }

    pub fn reason(&self) -> FailureReason {
        let kind = match self {
            SourceError::NotFound(..) => FailureKind::NotFound,
            SourceError::TooLarge { .. } => FailureKind::TooLarge,
            SourceError::Unavailable(_) => FailureKind::Unavailable,
        };
        FailureReason::new(kind, self.to_string())
    }
}

/// Where image bytes live: a folder, an HTTP store, a CQL blob table.
#[async_trait]
pub trait ImageSource: Send + Sync {
    /// The encoded bytes of an image. Implementations refuse images over their byte
    /// limit without reading them whole.
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError>;
}
