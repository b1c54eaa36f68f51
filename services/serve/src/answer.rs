//! The JSON of a successful `/v1/infer`.

use base64::Engine;
use imgfeat_infer::Inferred;
use imgfeat_infer::answer::{DetectionAnswer, MainObjectAnswer, Size};
use serde::Serialize;

use crate::neighbours::{Found, Neighbour};

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
    /// The nearest stored images, with `?neighbours=k`, nearest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbours: Option<Vec<Neighbour>>,
    /// Why the neighbours are missing or incomplete (the search service failed, timed
    /// out, or lacked a shard); the inference answer stands regardless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub neighbours_error: Option<String>,
    pub timings_ms: TimingsMs,
}

#[derive(Debug, Serialize)]
pub struct TimingsMs {
    pub queue: f64,
    pub decode: f64,
    pub detect: f64,
    pub extract: f64,
}

impl ImageAnswer {
    pub fn new(i: Inferred, want: Want) -> Self {
        let r = &i.record;
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        Self {
            image: Size::of(r),
            main_object: MainObjectAnswer::of(r),
            code: i.code.to_hex(),
            bits: i.code.bits(),
            detections: want
                .detections
                .then(|| r.detections.iter().map(DetectionAnswer::from).collect()),
            crop_jpeg: want
                .crop
                .then(|| base64::engine::general_purpose::STANDARD.encode(&r.crop_jpeg)),
            neighbours: None,
            neighbours_error: None,
            timings_ms: TimingsMs {
                queue: ms(i.timings.queue),
                decode: ms(i.timings.decode),
                detect: ms(i.timings.detect),
                extract: ms(i.timings.extract),
            },
        }
    }

    pub fn set_neighbours(&mut self, found: Found) {
        self.neighbours = found.neighbours;
        self.neighbours_error = found.error;
    }
}
