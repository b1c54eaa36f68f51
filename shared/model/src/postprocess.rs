//! Detector post-processing as pure functions: per-anchor best class, score threshold,
//! non-maximum suppression, boxes to original pixels, and the choice of the main object.

use imgfeat_core::{BoundingBox, CropRect, Detection, MainObject};
use serde::{Deserialize, Serialize};

/// Thresholds applied to a detector's raw outputs.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DetectorThresholds {
    /// Keep anchors whose best class scores strictly above this.
    pub score: f32,
    /// Suppress boxes overlapping a better one by more than this IoU.
    pub nms_iou: f32,
    /// Keep at most this many detections per image after NMS.
    pub max_detections: usize,
}

/// How the main object is chosen among the detections.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MainObjectRule {
    /// Only detections scoring strictly above this can be the main object.
    pub score_floor: f32,
    /// A box narrower or shorter than this (in pixels) falls back to the whole image.
    pub min_side_px: u32,
    /// Always the whole image: set from the detector's manifest (`code_from`), never
    /// from the configuration, so it always goes with its own model version.
    #[serde(skip)]
    pub whole_image: bool,
}

impl Default for MainObjectRule {
    fn default() -> Self {
        // score * sqrt(area fraction) with a 0.4 floor: the top box alone is unstable on
        // scenes with several objects (13/13 near-duplicate retrieval vs 9/13 for the raw
        // top box in the reference evaluation, ../shared/models/README.md).
        Self {
            score_floor: 0.4,
            min_side_px: 8,
            whole_image: false,
        }
    }
}

/// The raw outputs of a box detector for ONE image: `boxes` is `[anchors, 4]` of
/// x1,y1,x2,y2 in 0..1 and `scores` is `[anchors, classes]`.
pub struct RawDetections<'a> {
    pub boxes: &'a [f32],
    pub scores: &'a [f32],
    pub classes: usize,
    /// The column that means "no object" and is never a detection.
    pub background: Option<usize>,
}

/// Decodes one image's detections, best first, in pixels of a `width` x `height` image.
pub fn decode(
    raw: &RawDetections<'_>,
    thresholds: &DetectorThresholds,
    width: u32,
    height: u32,
    labels: &[String],
) -> Vec<Detection> {
    let classes = raw.classes.max(1);
    let anchors = (raw.scores.len() / classes).min(raw.boxes.len() / 4);
    let mut candidates: Vec<(usize, usize, f32)> = Vec::new();
    for a in 0..anchors {
        let row = &raw.scores[a * classes..(a + 1) * classes];
        let mut best: Option<(usize, f32)> = None;
        for (c, &s) in row.iter().enumerate() {
            if Some(c) == raw.background {
                continue;
            }
            if best.is_none_or(|(_, b)| s > b) {
                best = Some((c, s));
            }
        }
        // Thresholding before NMS keeps exactly the detections that thresholding after
        // it would: suppression only ever flows from higher scores to lower ones.
        if let Some((c, s)) = best
            && s > thresholds.score
        {
            candidates.push((a, c, s));
        }
    }
    candidates.sort_by(|x, y| y.2.total_cmp(&x.2));
    let boxes: Vec<BoundingBox> = candidates
        .iter()
        .map(|&(a, _, _)| BoundingBox {
            x1: raw.boxes[a * 4],
            y1: raw.boxes[a * 4 + 1],
            x2: raw.boxes[a * 4 + 2],
            y2: raw.boxes[a * 4 + 3],
        })
        .collect();
    let kept = nms(&boxes, thresholds.nms_iou, thresholds.max_detections);
    let (w, h) = (width as f32, height as f32);
    kept.into_iter()
        .map(|i| {
            let (_, class, score) = candidates[i];
            let b = boxes[i];
            Detection {
                bbox: BoundingBox {
                    x1: b.x1 * w,
                    y1: b.y1 * h,
                    x2: b.x2 * w,
                    y2: b.y2 * h,
                },
                score,
                class_id: class as u32,
                label: labels
                    .get(class)
                    .cloned()
                    .unwrap_or_else(|| format!("class {class}")),
            }
        })
        .collect()
}

/// Greedy class-agnostic NMS over boxes already sorted best first; returns the indices
/// kept, best first. IoU is unchanged by scaling the axes, so normalised boxes do.
pub fn nms(sorted_boxes: &[BoundingBox], iou_threshold: f32, max_keep: usize) -> Vec<usize> {
    let mut kept: Vec<usize> = Vec::new();
    for (i, b) in sorted_boxes.iter().enumerate() {
        if kept.len() >= max_keep {
            break;
        }
        if kept
            .iter()
            .all(|&k| sorted_boxes[k].iou(b) <= iou_threshold)
        {
            kept.push(i);
        }
    }
    kept
}

/// Chooses the main object: the highest score x sqrt(area fraction) among detections
/// above the score floor; the whole image when there is none or its box is too thin.
pub fn choose_main_object(
    detections: &[Detection],
    width: u32,
    height: u32,
    rule: &MainObjectRule,
) -> MainObject {
    let whole = MainObject {
        crop: CropRect::whole(width, height),
        detection: None,
    };
    if rule.whole_image {
        return whole;
    }
    let image_area = (width as f32 * height as f32).max(1.0);
    let best = detections
        .iter()
        .filter(|d| d.score > rule.score_floor)
        .map(|d| {
            let area = d.bbox.clamped(width, height).area() / image_area;
            (d, d.score * area.clamp(0.0, 1.0).sqrt())
        })
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let Some((det, _)) = best else {
        return whole;
    };
    let c = det.bbox.clamped(width, height);
    // The reference's `main_box`: the near edges floored, the far edges ceiled, so the
    // crop covers every pixel the box touches. Clamping first keeps both within the
    // image.
    let (x1, y1) = (c.x1.floor() as u32, c.y1.floor() as u32);
    let (x2, y2) = (
        (c.x2.ceil() as u32).min(width),
        (c.y2.ceil() as u32).min(height),
    );
    if x2.saturating_sub(x1) < rule.min_side_px || y2.saturating_sub(y1) < rule.min_side_px {
        return whole;
    }
    MainObject {
        crop: CropRect {
            x: x1,
            y: y1,
            width: x2 - x1,
            height: y2 - y1,
        },
        detection: Some(det.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        ["bg", "cat", "dog"].iter().map(|s| s.to_string()).collect()
    }

    fn thr(score: f32) -> DetectorThresholds {
        DetectorThresholds {
            score,
            nms_iou: 0.45,
            max_detections: 100,
        }
    }

    fn det(x1: f32, y1: f32, x2: f32, y2: f32, score: f32) -> Detection {
        Detection {
            bbox: BoundingBox { x1, y1, x2, y2 },
            score,
            class_id: 1,
            label: "cat".into(),
        }
    }

    #[test]
    fn background_never_wins_and_low_scores_are_dropped() {
        // anchor 0: background strongest, cat .6 -> cat; anchor 1: all below .3.
        let boxes = [0.0, 0.0, 0.5, 0.5, 0.5, 0.5, 1.0, 1.0];
        let scores = [0.99, 0.6, 0.1, 0.9, 0.2, 0.25];
        let raw = RawDetections {
            boxes: &boxes,
            scores: &scores,
            classes: 3,
            background: Some(0),
        };
        let d = decode(&raw, &thr(0.3), 200, 100, &labels());
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].label, "cat");
        assert_eq!(
            d[0].bbox,
            BoundingBox {
                x1: 0.0,
                y1: 0.0,
                x2: 100.0,
                y2: 50.0
            }
        );
        // Without a background column, column 0 competes like any class.
        let raw = RawDetections {
            background: None,
            ..raw
        };
        let d = decode(&raw, &thr(0.3), 200, 100, &labels());
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].label.as_str(), d[1].label.as_str()), ("bg", "bg"));
    }

    #[test]
    fn nms_suppresses_overlaps_across_classes_and_keeps_order() {
        let boxes = [
            BoundingBox {
                x1: 0.,
                y1: 0.,
                x2: 10.,
                y2: 10.,
            },
            BoundingBox {
                x1: 1.,
                y1: 1.,
                x2: 10.,
                y2: 10.,
            }, // IoU .81 with 0
            BoundingBox {
                x1: 20.,
                y1: 20.,
                x2: 30.,
                y2: 30.,
            },
            BoundingBox {
                x1: 5.,
                y1: 0.,
                x2: 15.,
                y2: 10.,
            }, // IoU 1/3 with 0
        ];
        assert_eq!(nms(&boxes, 0.45, 100), vec![0, 2, 3]);
        assert_eq!(nms(&boxes, 0.3, 100), vec![0, 2]);
        assert_eq!(nms(&boxes, 0.45, 2), vec![0, 2]);
        assert!(nms(&[], 0.45, 10).is_empty());
    }

    #[test]
    fn main_object_weighs_score_by_sqrt_of_area() {
        // small confident box vs large less confident box: .9*sqrt(.01)=.09 < .5*sqrt(.5)=.35
        let dets = [det(0., 0., 10., 10., 0.9), det(0., 0., 100., 50., 0.5)];
        let m = choose_main_object(&dets, 100, 100, &MainObjectRule::default());
        assert_eq!(
            m.crop,
            CropRect {
                x: 0,
                y: 0,
                width: 100,
                height: 50
            }
        );
        assert_eq!(m.detection.as_ref().map(|d| d.score), Some(0.5));
    }

    #[test]
    fn main_object_falls_back_to_the_whole_image() {
        let rule = MainObjectRule::default();
        let whole = CropRect::whole(640, 480);
        // nothing at all; nothing above the floor (strictly); a box thinner than 8 px
        assert_eq!(choose_main_object(&[], 640, 480, &rule).crop, whole);
        assert_eq!(
            choose_main_object(&[det(0., 0., 100., 100., 0.4)], 640, 480, &rule).crop,
            whole
        );
        let thin = choose_main_object(&[det(10., 10., 16.9, 300., 0.9)], 640, 480, &rule);
        assert_eq!((thin.crop, thin.detection), (whole, None));
    }

    #[test]
    fn a_whole_image_version_ignores_even_a_clear_winner() {
        let rule = MainObjectRule {
            whole_image: true,
            ..MainObjectRule::default()
        };
        let clear = [det(10., 10., 300., 300., 0.99)];
        let m = choose_main_object(&clear, 640, 480, &rule);
        assert_eq!((m.crop, m.detection), (CropRect::whole(640, 480), None));
        let boxed = choose_main_object(&clear, 640, 480, &MainObjectRule::default());
        assert_ne!(boxed.crop, CropRect::whole(640, 480));
    }

    #[test]
    fn main_object_box_is_clamped_floored_at_its_start_and_ceiled_at_its_end() {
        let m = choose_main_object(
            &[det(-5.5, 10.7, 700.2, 99.1, 0.8)],
            640,
            100,
            &MainObjectRule::default(),
        );
        assert_eq!(
            m.crop,
            CropRect {
                x: 0,
                y: 10,
                width: 640,
                height: 90
            }
        );
        // The reference's darknet_dog.jpg box, 133.6..567.2 x 123.9..475.3: x 133..568.
        let m = choose_main_object(
            &[det(133.6, 123.9, 567.2, 475.3, 0.7)],
            768,
            576,
            &MainObjectRule::default(),
        );
        assert_eq!(
            m.crop,
            CropRect {
                x: 133,
                y: 123,
                width: 435,
                height: 353
            }
        );
        // An edge exactly on a pixel boundary stays there.
        let m = choose_main_object(
            &[det(10.0, 20.0, 300.0, 200.0, 0.9)],
            640,
            480,
            &MainObjectRule::default(),
        );
        assert_eq!((m.crop.width, m.crop.height), (290, 180));
    }
}
