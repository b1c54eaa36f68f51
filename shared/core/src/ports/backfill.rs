use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::ModelVersion;
use crate::ports::StoreError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Running,
    Done,
    Cancelled,
}

impl BackfillState {
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillState::Running => "running",
            BackfillState::Done => "done",
            BackfillState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Running, Self::Done, Self::Cancelled]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// A backfill of an inclusive ID range, published in chunks. `next` is the first ID not
/// yet confirmed by the broker, so a restarted ingest resumes exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillJob {
    pub id: String,
    pub from: u64,
    pub to: u64,
    pub model: Option<ModelVersion>,
    pub next: u64,
    /// IDs published so far (skipped ones excluded).
    pub published: u64,
    /// IDs skipped because their result already existed.
    pub skipped: u64,
    pub state: BackfillState,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl BackfillJob {
    pub fn total(&self) -> u64 {
        self.to.saturating_sub(self.from).saturating_add(1)
    }

    pub fn done_count(&self) -> u64 {
        self.next.saturating_sub(self.from).min(self.total())
    }
}

/// Durable progress of backfill jobs.
#[async_trait]
pub trait BackfillStore: Send + Sync {
    /// Inserts or replaces the job's row.
    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError>;
    async fn backfill(&self, id: &str) -> Result<Option<BackfillJob>, StoreError>;
    /// Every job, any state, oldest first.
    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError>;
}
