//! Ports: the traits between the pipeline and its adapters. A stage knows these, never
//! an adapter; only the services pick adapters.

pub mod backfill;
pub mod duplicates;
pub mod export;
pub mod paths;
pub mod queue;
pub mod ready;
pub mod source;
pub mod store;

pub use backfill::{BackfillJob, BackfillState, BackfillStore};
pub use duplicates::DuplicateStore;
pub use export::{ExportCursor, ExportStore, ImageResults};
pub use paths::{PathIdConflict, PathRegistry};
pub use queue::{Delivery, DeliveryHandle, JobConsumer, JobPublisher, QueueError};
pub use ready::{BoxFuture, Opened, ReadyCheck};
pub use source::{ImageSource, SourceError};
pub use store::{CodePage, ResultStore, ScanCursor, StoreError};
