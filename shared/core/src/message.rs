//! Queue messages. The wire form is JSON with an explicit schema version `v`, so a
//! worker can dead-letter a message it does not understand instead of guessing.
//!
//! Schema, version 2:
//! - detect job:  `{"v":2,"image_id":123,"enqueued_at_ms":1700000000000}`
//!   (`detector` optional: the detector version the producer requires; `code_version`
//!   optional: the code version the producer wants, `detector+backbone+head`)
//! - extract job: `{"v":2,"image_id":123,"detector_version":"ssd@1","enqueued_at_ms":...,
//!   "crop_jpeg":"<base64 of a JPEG of the backbone's input size>"}`
//!   (`crop_jpeg` optional: without it the extractor decodes the stored JPEG crop)
//!
//! Version 1 is still read. Its detect job had one `model` field that named a detector
//! version (the folder watcher) or a code version (older API and backfill producers);
//! it is read into whichever of the two fields its shape says (see [`DetectJob`]). Its
//! extract job carried the raw pixels, `"crop":{"width":224,"height":224,"rgb":"<base64
//! of width*height*3 bytes>"}`: 200 KB a job, read as before, no longer written.
//!
//! Events (code stored, duplicate found) share the envelope: see [`CodeStored`] and
//! [`DuplicateFound`].

mod events;

use std::sync::Arc;

pub use events::{CodeStored, DuplicateFound, Neighbour};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};

use crate::{ImageId, ModelVersion};

pub const SCHEMA_VERSION: u32 = 2;

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
        }
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
}

impl From<DetectJobWire> for DetectJob {
    fn from(wire: DetectJobWire) -> Self {
        let job = DetectJob {
            image_id: wire.image_id,
            enqueued_at_ms: wire.enqueued_at_ms,
            detector: wire.detector,
            code_version: wire.code_version,
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
    /// image, as the Python reference computes it, JPEG-encoded to keep the job small.
    /// The JPEG crop in the store is at the original's scale, for people and
    /// re-extraction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop_jpeg: Option<CropJpeg>,
    /// The same pixels raw, as version 1 jobs carry them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crop: Option<CropPixels>,
}

/// JPEG bytes; base64 inside JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CropJpeg(Arc<Vec<u8>>);

impl CropJpeg {
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(Arc::new(bytes))
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Size only, like [`CropPixels`].
impl std::fmt::Debug for CropJpeg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CropJpeg({} bytes)", self.0.len())
    }
}

impl TryFrom<String> for CropJpeg {
    type Error = MessageError;

    fn try_from(wire: String) -> Result<Self, Self::Error> {
        let bytes = BASE64
            .decode(wire.as_bytes())
            .map_err(|e| MessageError::Malformed(format!("crop JPEG: {e}")))?;
        Ok(CropJpeg::new(bytes))
    }
}

impl From<CropJpeg> for String {
    fn from(crop: CropJpeg) -> Self {
        BASE64.encode(crop.0.as_slice())
    }
}

/// RGB8 pixels, row by row, `width * height * 3` bytes; base64 inside JSON.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CropPixelsWire", into = "CropPixelsWire")]
pub struct CropPixels {
    width: u32,
    height: u32,
    rgb: Arc<Vec<u8>>,
}

impl CropPixels {
    pub fn new(width: u32, height: u32, rgb: Vec<u8>) -> Result<Self, MessageError> {
        let expected = width as u64 * height as u64 * 3;
        if width == 0 || height == 0 || rgb.len() as u64 != expected {
            return Err(MessageError::Malformed(format!(
                "crop of {width}x{height} needs {expected} bytes, got {}",
                rgb.len()
            )));
        }
        Ok(Self {
            width,
            height,
            rgb: Arc::new(rgb),
        })
    }

    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn rgb(&self) -> &[u8] {
        &self.rgb
    }
}

/// Size only: a job in a log line or a failed assertion must not print 150 KB.
impl std::fmt::Debug for CropPixels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CropPixels({}x{} RGB8)", self.width, self.height)
    }
}

#[derive(Serialize, Deserialize)]
struct CropPixelsWire {
    width: u32,
    height: u32,
    rgb: String,
}

impl TryFrom<CropPixelsWire> for CropPixels {
    type Error = MessageError;

    fn try_from(wire: CropPixelsWire) -> Result<Self, Self::Error> {
        let rgb = BASE64
            .decode(wire.rgb.as_bytes())
            .map_err(|e| MessageError::Malformed(format!("crop pixels: {e}")))?;
        CropPixels::new(wire.width, wire.height, rgb)
    }
}

impl From<CropPixels> for CropPixelsWire {
    fn from(crop: CropPixels) -> Self {
        CropPixelsWire {
            width: crop.width,
            height: crop.height,
            rgb: BASE64.encode(crop.rgb.as_slice()),
        }
    }
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

    #[test]
    fn detect_jobs_round_trip_with_version() {
        let job = DetectJob::new(ImageId(7), 5);
        let bytes = encode(&job);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":2,"image_id":7,"enqueued_at_ms":5}"#
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
            r#"{"v":2,"image_id":7,"enqueued_at_ms":5,"detector":"ssd@1","code_version":"ssd@1+bb@2+head@3"}"#
        );
        assert_eq!(decode::<DetectJob>(&bytes).unwrap(), pinned);
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
            decode::<DetectJob>(br#"{"v":3,"image_id":7,"enqueued_at_ms":5}"#),
            Err(MessageError::UnknownVersion(3))
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
    fn extract_jobs_carry_the_crop_as_a_jpeg() {
        let job = ExtractJob {
            image_id: ImageId(1),
            detector_version: ModelVersion::new("ssd@1").unwrap(),
            enqueued_at_ms: 0,
            crop_jpeg: Some(CropJpeg::new(vec![0xff, 0xd8, 0xff])),
            crop: None,
        };
        let bytes = encode(&job);
        assert_eq!(
            std::str::from_utf8(&bytes).unwrap(),
            r#"{"v":2,"image_id":1,"detector_version":"ssd@1","enqueued_at_ms":0,"crop_jpeg":"/9j/"}"#
        );
        let back: ExtractJob = decode(&bytes).unwrap();
        assert_eq!(back, job);
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
    fn version_one_extract_jobs_carry_raw_crop_pixels_and_refuse_wrong_sizes() {
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| i as u8 * 13).collect();
        let job = ExtractJob {
            image_id: ImageId(1),
            detector_version: ModelVersion::new("ssd@1").unwrap(),
            enqueued_at_ms: 0,
            crop_jpeg: None,
            crop: Some(CropPixels::new(2, 3, rgb.clone()).unwrap()),
        };
        let bytes = encode(&job);
        let back: ExtractJob = decode(&bytes).unwrap();
        assert_eq!(back, job);
        assert_eq!(back.crop.as_ref().unwrap().rgb(), rgb.as_slice());
        assert_eq!(back.crop.unwrap().size(), (2, 3));

        let v1 = String::from_utf8(bytes)
            .unwrap()
            .replace(r#""v":2"#, r#""v":1"#);
        assert_eq!(decode::<ExtractJob>(v1.as_bytes()).unwrap(), job);

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
