//! A box detector (SSD, NanoDet): NHWC batch in, detections per image out.

use std::path::Path;

use imgfeat_core::{Detection, ModelVersion};

use crate::manifest::{Manifest, ManifestKind, OnnxSpec};
use crate::postprocess::{self, DetectorThresholds, RawDetections};
use crate::session::ModelSession;
use crate::{ModelError, Runtime, SessionOptions};

pub struct Detector {
    session: ModelSession,
    labels: Vec<String>,
    background: Option<usize>,
    boxes_output: String,
    scores_output: String,
    thresholds: DetectorThresholds,
    version: ModelVersion,
    width: u32,
    height: u32,
}

/// The thresholds a manifest recommends, used where the configuration names none.
pub fn manifest_thresholds(manifest: &Manifest) -> Option<DetectorThresholds> {
    let ManifestKind::Detector(spec) = &manifest.kind else {
        return None;
    };
    spec.thresholds.map(|t| DetectorThresholds {
        score: t.score,
        nms_iou: t.nms_iou,
        max_detections: 20,
    })
}

impl Detector {
    pub fn load(
        runtime: &Runtime,
        manifest_path: &Path,
        options: SessionOptions,
        thresholds: Option<DetectorThresholds>,
    ) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        let ManifestKind::Detector(spec) = &manifest.kind else {
            return Err(ModelError::Manifest {
                path: manifest_path.to_path_buf(),
                message: format!("{} is not a detector", manifest.name),
            });
        };
        let thresholds = thresholds
            .or_else(|| manifest_thresholds(&manifest))
            .unwrap_or(DetectorThresholds {
                score: 0.3,
                nms_iou: 0.45,
                max_detections: 20,
            });
        Self::from_spec(runtime, &manifest, spec, options, thresholds)
    }

    fn from_spec(
        runtime: &Runtime,
        manifest: &Manifest,
        spec: &OnnxSpec,
        options: SessionOptions,
        thresholds: DetectorThresholds,
    ) -> Result<Self, ModelError> {
        let opened = ModelSession::open(runtime, manifest, spec, options, &["boxes", "scores"])?;
        let labels_spec = spec.labels.as_ref().ok_or_else(|| ModelError::Manifest {
            path: manifest.dir.clone(),
            message: "a detector needs a labels file".into(),
        })?;
        let labels = manifest.read_labels(labels_spec)?;
        let [boxes_output, scores_output] =
            <[String; 2]>::try_from(opened.outputs).map_err(|_| ModelError::Shape {
                model: manifest.name.clone(),
                message: "expected boxes and scores outputs".into(),
            })?;
        let (session, version) = (opened.session, opened.version);
        Ok(Self {
            session,
            labels,
            background: labels_spec.background,
            boxes_output,
            scores_output,
            thresholds,
            version,
            width: spec.input.width,
            height: spec.input.height,
        })
    }

    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    /// Model input width and height.
    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    pub fn thresholds(&self) -> &DetectorThresholds {
        &self.thresholds
    }

    /// Detects objects in a batch: `input` holds `sizes.len()` NHWC images, `sizes` the
    /// original width and height of each, so boxes come back in original pixels.
    pub fn detect(
        &mut self,
        input: &[f32],
        sizes: &[(u32, u32)],
    ) -> Result<Vec<Vec<Detection>>, ModelError> {
        let outputs = self.session.run(
            input,
            sizes.len(),
            &[self.boxes_output.as_str(), self.scores_output.as_str()],
        )?;
        let [boxes, scores] = <[_; 2]>::try_from(outputs).map_err(|_| ModelError::Shape {
            model: self.version.to_string(),
            message: "expected two outputs".into(),
        })?;
        let batch = sizes.len();
        let (box_shape, score_shape) = (&boxes.shape, &scores.shape);
        if box_shape.len() != 3
            || score_shape.len() != 3
            || box_shape[0] != batch
            || score_shape[0] != batch
            || box_shape[2] != 4
            || box_shape[1] != score_shape[1]
        {
            return Err(ModelError::Shape {
                model: self.version.to_string(),
                message: format!("outputs have shapes {box_shape:?} and {score_shape:?}"),
            });
        }
        let (anchors, classes) = (score_shape[1], score_shape[2]);
        Ok(sizes
            .iter()
            .enumerate()
            .map(|(i, &(w, h))| {
                let raw = RawDetections {
                    boxes: &boxes.data[i * anchors * 4..(i + 1) * anchors * 4],
                    scores: &scores.data[i * anchors * classes..(i + 1) * anchors * classes],
                    classes,
                    background: self.background,
                };
                postprocess::decode(&raw, &self.thresholds, w, h, &self.labels)
            })
            .collect())
    }
}
