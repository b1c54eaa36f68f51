//! The JSON of a successful `/v1/infer`.

use base64::Engine;
use imgfeat_core::{BoundingBox, CropRect, Detection};
use serde::Serialize;

use crate::variant::Inferred;

#[derive(Debug, Clone, Copy)]
pub struct Want {
    pub crop: bool,
    pub detections: bool,
}

#[derive(Debug, Serialize)]
pub struct InferAnswer {
    /// The detector version that answered.
    pub model: String,
    /// The version the codes belong to (as stored by the pipeline).
    pub code_version: String,
    pub bits: usize,
    /// One per image, in the order sent.
    pub results: Vec<ImageAnswer>,
}

#[derive(Debug, Serialize)]
pub struct ImageAnswer {
    pub image: Size,
    pub main_object: MainObjectAnswer,
    pub code: String,
    pub bits: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<Vec<DetectionAnswer>>,
    /// The stored crop (JPEG, base64), with `?crop=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub crop_jpeg: Option<String>,
    pub timings_ms: TimingsMs,
}

#[derive(Debug, Serialize)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Serialize)]
pub struct MainObjectAnswer {
    /// No detection was confident enough: the code is of the whole image.
    pub whole_image: bool,
    /// The pixel box cropped.
    #[serde(rename = "box")]
    pub crop: CropRect,
    pub label: Option<String>,
    pub score: Option<f32>,
    /// The detector's box, before rounding to pixels.
    pub detection_box: Option<BoundingBox>,
}

#[derive(Debug, Serialize)]
pub struct DetectionAnswer {
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
    pub label: String,
    pub score: f32,
}

#[derive(Debug, Serialize)]
pub struct TimingsMs {
    pub queue: f64,
    pub decode: f64,
    pub detect: f64,
    pub extract: f64,
}

impl From<&Detection> for DetectionAnswer {
    fn from(d: &Detection) -> Self {
        Self {
            bbox: d.bbox,
            label: d.label.clone(),
            score: d.score,
        }
    }
}

impl ImageAnswer {
    pub fn new(i: Inferred, want: Want) -> Self {
        let r = &i.record;
        let main = &r.main;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        Self {
            image: Size {
                width: r.image_width,
                height: r.image_height,
            },
            main_object: MainObjectAnswer {
                whole_image: main.detection.is_none(),
                crop: main.crop,
                label: main.detection.as_ref().map(|d| d.label.clone()),
                score: main.detection.as_ref().map(|d| d.score),
                detection_box: main.detection.as_ref().map(|d| d.bbox),
            },
            code: i.code.to_hex(),
            bits: i.code.bits(),
            detections: want
                .detections
                .then(|| r.detections.iter().map(DetectionAnswer::from).collect()),
            crop_jpeg: want
                .crop
                .then(|| base64::engine::general_purpose::STANDARD.encode(&r.crop_jpeg)),
            timings_ms: TimingsMs {
                queue: ms(i.timings.queue),
                decode: ms(i.timings.decode),
                detect: ms(i.timings.detect),
                extract: ms(i.timings.extract),
            },
        }
    }
}
