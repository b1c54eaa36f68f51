//! The bottom layer of imgfeat: domain types, their errors, and the ports (traits) that
//! the pipeline talks to. Nothing here knows about ONNX Runtime, SQLite, RabbitMQ or CQL;
//! adapters implement the ports in crates above this one.

pub mod backoff;
pub mod code;
pub mod detection;
pub mod failure;
pub mod ids;
pub mod message;
pub mod ports;
pub mod records;
pub mod retry;
pub mod shutdown;

pub use code::BinaryCode;
pub use detection::{BoundingBox, CropRect, Detection, MainObject};
pub use failure::{ErrorClass, FailureKind, FailureReason, Stage};
pub use ids::{ImageId, ModelVersion};
pub use records::{CodeRecord, DetectionRecord, FailureRecord};
pub use retry::{RetryPolicy, RetryPolicyError};

/// Milliseconds since the Unix epoch, for timestamps carried in messages and records.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
