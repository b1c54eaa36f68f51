use std::collections::HashSet;

use async_trait::async_trait;

use crate::{CodeRecord, DetectionRecord, ErrorClass, FailureRecord, ImageId, ModelVersion};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or timed out; retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Stored data that does not decode, or a request the store refuses; retrying won't help.
    #[error("store data or request invalid: {0}")]
    Invalid(String),
}

impl StoreError {
    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::Unavailable(_) => ErrorClass::Transient,
            StoreError::Invalid(_) => ErrorClass::Permanent,
        }
    }
}

/// Durable results keyed by (image ID, model version). Every write is an idempotent
/// upsert: writing the same record twice leaves the same state as writing it once, which
/// makes at-least-once delivery safe.
#[async_trait]
pub trait ResultStore: Send + Sync {
    /// Stores detections and crops; returns only when they are durable.
    async fn put_detections(&self, records: &[DetectionRecord]) -> Result<(), StoreError>;

    /// Stores codes; a stored code clears earlier failures of that (image, version).
    async fn put_codes(&self, records: &[CodeRecord]) -> Result<(), StoreError>;

    /// Records failures (latest reason per image, version and stage wins).
    async fn put_failures(&self, records: &[FailureRecord]) -> Result<(), StoreError>;

    async fn detection(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<DetectionRecord>, StoreError>;

    async fn code(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<CodeRecord>, StoreError>;

    /// Every recorded failure of an image, under any model version.
    async fn failures(&self, id: ImageId) -> Result<Vec<FailureRecord>, StoreError>;

    /// The subset of `ids` that already have a code under `version`.
    async fn coded(
        &self,
        ids: &[ImageId],
        version: &ModelVersion,
    ) -> Result<HashSet<ImageId>, StoreError>;

    /// One page of the codes stored under `version`, in the store's own scan order,
    /// starting where `after` (a cursor from the previous page) stopped; `None` starts
    /// from the beginning. At most `limit` codes come back; a page may be short while
    /// `next` still says there is more, but an empty page is always the last (`next` is
    /// `None`), so a version with no codes ends at its first page. This is how a search
    /// index loads a version without any store holding all of it in memory at once.
    async fn code_page(
        &self,
        version: &ModelVersion,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<CodePage, StoreError>;
}

/// Where a paged scan of codes stopped: opaque bytes that only the store which made them
/// understands (an image ID for SQLite, a token range and paging state for CQL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanCursor(pub Vec<u8>);

/// A page of a code scan and where the next one starts (`None`: the scan is complete).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CodePage {
    pub codes: Vec<CodeRecord>,
    pub next: Option<ScanCursor>,
}
