//! What the pipeline stores, keyed by (image ID, model version).

use serde::{Deserialize, Serialize};

use crate::{BinaryCode, Detection, FailureReason, ImageId, MainObject, ModelVersion, Stage};

/// The detector's result for one image: every kept detection, the main object, and the
/// JPEG crop of the main object taken from the original image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DetectionRecord {
    pub image_id: ImageId,
    pub model_version: ModelVersion,
    pub image_width: u32,
    pub image_height: u32,
    pub detections: Vec<Detection>,
    pub main: MainObject,
    #[serde(skip)]
    pub crop_jpeg: Vec<u8>,
}

/// The extractor's result for one image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRecord {
    pub image_id: ImageId,
    pub model_version: ModelVersion,
    pub code: BinaryCode,
}

/// A failure to process an image under a model version, with its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailureRecord {
    pub image_id: ImageId,
    pub model_version: ModelVersion,
    pub stage: Stage,
    pub reason: FailureReason,
    /// How many times processing was attempted before this was recorded.
    pub attempts: u32,
    /// Unix milliseconds.
    pub at_ms: u64,
}
