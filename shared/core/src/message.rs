//! Queue messages. The wire form is JSON with an explicit schema version `v`, so a
//! worker can dead-letter a message it does not understand instead of guessing.
//!
//! Schema, version 3:
//! - detect job:  `{"v":3,"image_id":123,"enqueued_at_ms":1700000000000}`
//!   (`detector` optional: the detector version the producer requires; `code_version`
//!   optional: the code version the producer wants, `detector+backbone+head`)
//! - extract job: `{"v":3,"image_id":123,"detector_version":"ssd@2","enqueued_at_ms":...,
//!   "crop":{"width":224,"height":224,"png":"<base64 of a PNG of the backbone's input>"}}`:
//!   the exact pixels the extractor embeds, lossless (see [`CropPixels`]).
//!
//! Versions 1 and 2 are still read. Version 1's detect job had one `model` field that
//! named a detector version (the folder watcher) or a code version (older API and
//! backfill producers); it is read into whichever of the two fields its shape says (see
//! [`DetectJob`]). Version 1's extract job carried the crop raw (`"crop":{..."rgb":...}`);
//! version 2's a JPEG (`"crop_jpeg":"<base64>"`), which only detector versions before
//! the lossless job sent, so their codes stay under those versions' names.
//!
//! Events (code stored, duplicate found) share the envelope: see [`CodeStored`] and
//! [`DuplicateFound`].
//!
//! One version for every message: a release that raises it is rolled out readers
//! first (extractors and search shards, which read every older version), then writers.

mod crop;
mod events;

pub use crop::{CropJpeg, CropPixels};
pub use events::{CodeStored, DuplicateFound, Neighbour};

use serde::{Deserialize, Serialize};

use crate::{ImageId, ModelVersion};

pub const SCHEMA_VERSION: u32 = 3;

/// The oldest schema version this build still reads.
pub const OLDEST_READ_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageError {
    #[error("message is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error(
        "message schema version {0} is not supported (this build reads versions {OLDEST_READ_VERSION} to {SCHEMA_VERSION})"
    )]
    UnknownVersion(u32),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "DetectJobWire")]
pub struct DetectJob {
    pub image_id: ImageId,
    /// Unix milliseconds when the job was first published, for end-to-end latency.
    pub enqueued_at_ms: u64,
    /// The detector version the producer requires (the folder watcher pins one); a
    /// pool running another dead-letters the job rather than store under the wrong one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detector: Option<ModelVersion>,
    /// The code version (`detector+backbone+head`) the producer wants, e.g. the one
    /// its skip_done counted as done; a pool making another dead-letters the job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code_version: Option<ModelVersion>,
    /// The backfill job that published it: detectors skip the messages of a cancelled
    /// job. Readers that predate the field ignore it (and do the work).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backfill: Option<String>,
}

impl DetectJob {
    /// A job any detector pool serves: a pool serves one version per queue prefix, so
    /// jobs published for it need not name one.
    pub fn new(image_id: ImageId, enqueued_at_ms: u64) -> Self {
        Self {
            image_id,
            enqueued_at_ms,
            detector: None,
            code_version: None,
            backfill: None,
        }
    }

    /// The job as published by backfill job `job`.
    pub fn in_backfill(mut self, job: &str) -> Self {
        self.backfill = Some(job.to_owned());
        self
    }

    /// The job pinned to `version`: a code version (`detector+backbone+head`, chained
    /// with `+` by `ModelVersion::after`) or, without a `+`, a detector version. Unset
    /// fields only; a version already named stays.
    pub fn pinned_to(mut self, version: ModelVersion) -> Self {
        if version.as_str().contains('+') {
            self.code_version.get_or_insert(version);
        } else {
            self.detector.get_or_insert(version);
        }
        self
    }
}

/// Both schema versions' fields; version 1's `model` goes to the field it names.
#[derive(Deserialize)]
struct DetectJobWire {
    image_id: ImageId,
    enqueued_at_ms: u64,
    #[serde(default)]
    detector: Option<ModelVersion>,
    #[serde(default)]
    code_version: Option<ModelVersion>,
    #[serde(default)]
    model: Option<ModelVersion>,
    #[serde(default)]
    backfill: Option<String>,
}

impl From<DetectJobWire> for DetectJob {
    fn from(wire: DetectJobWire) -> Self {
        let job = DetectJob {
            image_id: wire.image_id,
            enqueued_at_ms: wire.enqueued_at_ms,
            detector: wire.detector,
            code_version: wire.code_version,
            backfill: wire.backfill,
        };
        match wire.model {
            Some(model) => job.pinned_to(model),
            None => job,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractJob {
    pub image_id: ImageId,
    pub detector_version: ModelVersion,
    pub enqueued_at_ms: u64,
    /// The main object stretched to the feature network's input from the ORIGINAL
    /// image, as the Python reference computes it: the exact pixels the extractor
    /// embeds. (The JPEG crop in the store is at the original's scale, for people.)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<CropPixels>,
    /// The same region as a JPEG, as version 2 jobs carried it; never written now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_jpeg: Option<CropJpeg>,
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
    if !(OLDEST_READ_VERSION..=SCHEMA_VERSION).contains(&head.v) {
        return Err(MessageError::UnknownVersion(head.v));
    }
    serde_json::from_slice(bytes).map_err(|e| MessageError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn detect_jobs_round_trip_with_version() {
        let job = DetectJob::new(ImageId(7), 5);
        let bytes = encode(&job);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":3,"image_id":7,"enqueued_at_ms":5}"#
        );
        assert_eq!(decode::<DetectJob>(&bytes).unwrap(), job);

        let pinned = DetectJob {
            detector: Some(ModelVersion::new("ssd@1").unwrap()),
            code_version: Some(ModelVersion::new("ssd@1+bb@2+head@3").unwrap()),
            ..job
        };
        let bytes = encode(&pinned);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":3,"image_id":7,"enqueued_at_ms":5,"detector":"ssd@1","code_version":"ssd@1+bb@2+head@3"}"#
        );
        assert_eq!(decode::<DetectJob>(&bytes).unwrap(), pinned);

        let backfilled = DetectJob::new(ImageId(7), 5).in_backfill("bf-1-0");
        let bytes = encode(&backfilled);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":3,"image_id":7,"enqueued_at_ms":5,"backfill":"bf-1-0"}"#
        );
        assert_eq!(decode::<DetectJob>(&bytes).unwrap(), backfilled);
    }

    #[test]
    fn version_one_detect_jobs_split_their_model_by_what_it_names() {
        let bare: DetectJob = decode(br#"{"v":1,"image_id":7,"enqueued_at_ms":5}"#).unwrap();
        assert_eq!(bare, DetectJob::new(ImageId(7), 5));

        let watcher: DetectJob =
            decode(br#"{"v":1,"image_id":7,"enqueued_at_ms":5,"model":"ssd@1"}"#).unwrap();
        assert_eq!(watcher.detector, Some(ModelVersion::new("ssd@1").unwrap()));
        assert_eq!(watcher.code_version, None);

        let api: DetectJob =
            decode(br#"{"v":1,"image_id":7,"enqueued_at_ms":5,"model":"ssd@1+bb@2+head@3"}"#)
                .unwrap();
        assert_eq!(api.detector, None);
        assert_eq!(
            api.code_version,
            Some(ModelVersion::new("ssd@1+bb@2+head@3").unwrap())
        );
    }

    #[test]
    fn unknown_versions_and_garbage_are_refused() {
        assert_eq!(
            decode::<DetectJob>(br#"{"v":4,"image_id":7,"enqueued_at_ms":5}"#),
            Err(MessageError::UnknownVersion(4))
        );
        assert_eq!(
            decode::<DetectJob>(br#"{"v":0,"image_id":7,"enqueued_at_ms":5}"#),
            Err(MessageError::UnknownVersion(0))
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
    fn version_two_extract_jobs_with_a_jpeg_are_still_read() {
        let wire = br#"{"v":2,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":0,"crop_jpeg":"/9j/"}"#;
        let back: ExtractJob = decode(wire).unwrap();
        assert_eq!(back.crop, None);
        assert_eq!(
            back.crop_jpeg.as_ref().unwrap().bytes(),
            &[0xff, 0xd8, 0xff]
        );
        assert_eq!(
            format!("{:?}", back.crop_jpeg.unwrap()),
            "CropJpeg(3 bytes)"
        );
        let not_base64 =
            br#"{"v":2,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":1,"crop_jpeg":"%%"}"#;
        assert!(matches!(
            decode::<ExtractJob>(not_base64),
            Err(MessageError::Malformed(_))
        ));
    }

    #[test]
    fn extract_jobs_carry_the_exact_pixels_as_a_png() {
        let rgb: Vec<u8> = (0..5 * 4 * 3).map(|i| (i * 37 % 256) as u8).collect();
        let job = ExtractJob {
            image_id: ImageId(1),
            detector_version: ModelVersion::new("ssd@2").unwrap(),
            enqueued_at_ms: 0,
            crop: Some(CropPixels::new(5, 4, rgb.clone()).unwrap()),
            crop_jpeg: None,
        };
        let bytes = encode(&job);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(
                r#"{"v":3,"image_id":1,"detector_version":"ssd@2","enqueued_at_ms":0,"crop":{"width":5,"height":4,"png":""#
            ),
            "{text}"
        );
        let back: ExtractJob = decode(&bytes).unwrap();
        assert_eq!(back, job);
        assert_eq!(back.crop.unwrap().rgb(), rgb.as_slice());
    }

    #[test]
    fn version_one_extract_jobs_carry_raw_crop_pixels_and_refuse_wrong_sizes() {
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 13).collect();
        let job = ExtractJob {
            image_id: ImageId(1),
            detector_version: ModelVersion::new("ssd@1").unwrap(),
            enqueued_at_ms: 0,
            crop_jpeg: None,
            crop: Some(CropPixels::new(2, 3, rgb.clone()).unwrap()),
        };
        let v1 = format!(
            r#"{{"v":1,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":0,"crop":{{"width":2,"height":3,"rgb":"{}"}}}}"#,
            base64::engine::general_purpose::STANDARD.encode(&rgb)
        );
        let back = decode::<ExtractJob>(v1.as_bytes()).unwrap();
        assert_eq!(back, job);
        assert_eq!(back.crop.as_ref().unwrap().rgb(), rgb.as_slice());
        assert_eq!(back.crop.unwrap().size(), (2, 3));

        // Older producers send no crop; the field is optional.
        let bare: ExtractJob =
            decode(br#"{"v":1,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":1}"#)
                .unwrap();
        assert_eq!(bare.crop, None);
        assert_eq!(bare.crop_jpeg, None);

        let short = br#"{"v":1,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":1,"crop":{"width":2,"height":3,"rgb":"AAAA"}}"#;
        let err = decode::<ExtractJob>(short).unwrap_err();
        assert!(err.to_string().contains("needs 18 bytes, got 3"), "{err}");
        let not_base64 = br#"{"v":1,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":1,"crop":{"width":1,"height":1,"rgb":"%%%%"}}"#;
        assert!(matches!(
            decode::<ExtractJob>(not_base64),
            Err(MessageError::Malformed(_))
        ));
        assert!(CropPixels::new(0, 3, vec![]).is_err());
        assert_eq!(
            format!("{:?}", CropPixels::new(2, 3, rgb).unwrap()),
            "CropPixels(2x3 RGB8)"
        );
    }
}
