//! Queue messages. The wire form is JSON with an explicit schema version `v`, so a
//! worker can dead-letter a message it does not understand instead of guessing.
//!
//! Schema, version 1:
//! - detect job:  `{"v":1,"image_id":123,"enqueued_at_ms":1700000000000}`
//!   (`model` optional: the detector version the producer asked for)
//! - extract job: `{"v":1,"image_id":123,"detector_version":"ssd@1","enqueued_at_ms":...}`

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::{ImageId, ModelVersion};

pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("message is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error(
        "message schema version {0} is not supported (this build reads version {SCHEMA_VERSION})"
    )]
    UnknownVersion(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DetectJob {
    pub image_id: ImageId,
    /// Unix milliseconds when the job was first published, for end-to-end latency.
    pub enqueued_at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelVersion>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractJob {
    pub image_id: ImageId,
    pub detector_version: ModelVersion,
    pub enqueued_at_ms: u64,
    /// The crop, when producer and consumer share a process; never on the wire, where
    /// the extractor reads the crop from the store.
    #[serde(skip)]
    pub crop_jpeg: Option<Arc<Vec<u8>>>,
}

#[derive(Serialize)]
struct Envelope<'a, T> {
    v: u32,
    #[serde(flatten)]
    body: &'a T,
}

#[derive(Deserialize)]
struct VersionOnly {
    v: u32,
}

/// Encodes a message with the current schema version.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    // Serialising these plain structs cannot fail; fall back to an empty object rather
    // than panic if a future field type ever makes it fail.
    serde_json::to_vec(&Envelope {
        v: SCHEMA_VERSION,
        body: message,
    })
    .unwrap_or_else(|_| b"{}".to_vec())
}

/// Decodes a message, refusing unknown schema versions and malformed bodies.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, MessageError> {
    let head: VersionOnly =
        serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))?;
    if head.v != SCHEMA_VERSION {
        return Err(MessageError::UnknownVersion(head.v));
    }
    serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_jobs_round_trip_with_version() {
        let job = DetectJob {
            image_id: ImageId(7),
            enqueued_at_ms: 5,
            model: None,
        };
        let bytes = encode(&job);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":1,"image_id":7,"enqueued_at_ms":5}"#
        );
        assert_eq!(decode::<DetectJob>(&bytes).unwrap(), job);
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert_eq!(
            decode::<DetectJob>(br#"{"v":2,"image_id":7,"enqueued_at_ms":5}"#),
            Err(MessageError::UnknownVersion(2))
        );
        assert!(matches!(
            decode::<DetectJob>(b"not json"),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            decode::<DetectJob>(br#"{"v":1,"image_id":"x"}"#),
            Err(MessageError::Malformed(_))
        ));
        assert!(matches!(
            decode::<ExtractJob>(
                br#"{"v":1,"image_id":1,"detector_version":"a b","enqueued_at_ms":1}"#
            ),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn extract_jobs_never_carry_the_crop_on_the_wire() {
        let job = ExtractJob {
            image_id: ImageId(1),
            detector_version: ModelVersion::new("ssd@1").unwrap(),
            enqueued_at_ms: 0,
            crop_jpeg: Some(Arc::new(vec![1, 2, 3])),
        };
        let back: ExtractJob = decode(&encode(&job)).unwrap();
        assert_eq!(back.crop_jpeg, None);
        assert_eq!(back.image_id, ImageId(1));
    }
}
