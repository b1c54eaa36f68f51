//! What an inferred image looks like in JSON, the same in every API that answers one
//! (imgfeat-serve's `/v1/infer`, imgfeat-search's `POST /v1/similar`).

use imgfeat_core::{BoundingBox, CropRect, Detection, DetectionRecord};
use serde::Serialize;

#[derive(Debug, Clone, Copy, Serialize)]
pub struct Size {
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, Clone, Serialize)]
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

#[derive(Debug, Clone, Serialize)]
pub struct DetectionAnswer {
    #[serde(rename = "box")]
    pub bbox: BoundingBox,
    pub label: String,
    pub score: f32,
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

impl Size {
    pub fn of(r: &DetectionRecord) -> Self {
        Self {
            width: r.image_width,
            height: r.image_height,
        }
    }
}

impl MainObjectAnswer {
    pub fn of(r: &DetectionRecord) -> Self {
        let main = &r.main;
        Self {
            whole_image: main.detection.is_none(),
            crop: main.crop,
            label: main.detection.as_ref().map(|d| d.label.clone()),
            score: main.detection.as_ref().map(|d| d.score),
            detection_box: main.detection.as_ref().map(|d| d.bbox),
        }
    }
}
