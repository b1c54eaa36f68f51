//! The pipeline's part of the configuration: models, decoding and the two stages.
//! Services embed it in their own settings; every field has a default.

use std::path::{Path, PathBuf};

use imgfeat_core::ModelVersion;
use imgfeat_imaging::DecodeLimits;
use imgfeat_model::Manifest;
use imgfeat_model::{DetectorThresholds, RuntimeSettings, SessionOptions};
use serde::{Deserialize, Serialize};

use crate::detect_stage::DetectorStageConfig;
use crate::extract_stage::ExtractorStageConfig;
use crate::recipe::{Decoding, detector_version};

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    pub models: ModelSettings,
    pub runtime: RuntimeSettings,
    pub decode: DecodeSettings,
    pub detector: DetectorStageConfig,
    pub extractor: ExtractorStageConfig,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelSettings {
    /// Folder of the model manifests; unset: `models/` of the working directory, of the
    /// repository, or beside the executable, whichever exists.
    pub dir: Option<PathBuf>,
    /// Detector manifest (file name in `dir`). `nanodet_m_416_coco.toml` is the
    /// alternative; its results are stored under its own model version.
    pub detector: String,
    pub backbone: String,
    pub hash_head: String,
    pub detector_session: SessionOptions,
    pub extractor_session: SessionOptions,
    /// Threads each holding its own copy of the model and running whole batches (1..=64).
    /// The default, one per core with `intra_threads = 1`, is the "one inference thread
    /// per core" layout; one worker with a session on every core is the other.
    pub detector_workers: usize,
    pub extractor_workers: usize,
    /// Intra-op threads in one pool that both models share (ONNX Runtime's global
    /// thread pool; the sessions' `intra_threads` are then unused); 0, the default: each
    /// session has its own pool. Process-wide: fixed by the first models loaded.
    pub shared_intra_threads: usize,
    /// Overrides the detector manifest's recommended thresholds.
    pub thresholds: Option<DetectorThresholds>,
}

impl Default for ModelSettings {
    fn default() -> Self {
        Self {
            dir: None,
            detector: "ssd_mobilenetv2_oidv4_24cls.toml".into(),
            backbone: "efficientnet_lite0_imagenet.toml".into(),
            hash_head: "simhash64_effnet_lite0.toml".into(),
            // One one-thread copy of each model per core (the Python pair's shape, in one
            // process): no session waits at a barrier for a thread that decoding or the
            // other model has preempted, which cost 6-8 % of all CPU with the detector's
            // session on both cores. `index`, 500 photos, 2 cores, one run, interleaved:
            // 54.0 / 55.8 img/s against 49.8 / 45.2 for one detector session on both
            // cores and one backbone session on one (batches of 8, memory pattern on);
            // 8-12 % less user CPU per image. With batches of 2 (see `BatchPolicy`) the
            // peak RSS is below that layout's. Capped at eight copies, which bounds the
            // memory on a large machine; set the workers and `intra_threads` there.
            detector_session: SessionOptions::one_thread(),
            extractor_session: SessionOptions::one_thread(),
            detector_workers: workers_per_model(),
            extractor_workers: workers_per_model(),
            shared_intra_threads: 0,
            thresholds: None,
        }
    }
}

/// One model worker per core, at most eight.
fn workers_per_model() -> usize {
    imgfeat_model::session::cores().clamp(1, 8)
}

impl ModelSettings {
    pub fn resolve_dir(&self) -> Result<PathBuf, String> {
        if let Some(dir) = &self.dir {
            return if dir.is_dir() {
                Ok(dir.clone())
            } else {
                Err(format!("models.dir {} is not a folder", dir.display()))
            };
        }
        let mut tried = vec![PathBuf::from("models")];
        tried.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models"));
        if let Ok(exe) = std::env::current_exe()
            && let Some(d) = exe.parent()
        {
            tried.push(d.join("models"));
            tried.push(d.join("../models"));
        }
        tried
            .iter()
            .find(|d| d.join(&self.detector).is_file())
            .cloned()
            .ok_or_else(|| {
                format!(
                    "no models folder with {} found (tried {}); set IMGFEAT_PIPELINE__MODELS__DIR",
                    self.detector,
                    tried
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DecodeSettings {
    /// Threads decoding, resizing, cropping and encoding.
    pub threads: usize,
    /// CPU tasks queued at once (bounds decoded images held in memory).
    pub max_queued: usize,
    pub max_bytes: u64,
    pub max_pixels: u64,
    /// Decode JPEGs at 1/2, 1/4 or 1/8 size inside the inverse DCT when the detector's
    /// input needs no more (Pillow's `draft`): less CPU per image, other boxes and codes,
    /// so results are stored under the detector version suffixed `.shrink`. Off: the
    /// reference's full decode.
    pub shrink_on_load: bool,
    /// With `shrink_on_load`: read the main object's region again, alone, at the
    /// scale that still covers the extractor's input, where the shrunk pixels hold
    /// fewer (a small object in a large photo). Codes come closer to the full decode's
    /// for a partial decode's CPU, so results are stored under `.shrink.region`.
    pub crop_at_extractor_scale: bool,
}

impl Default for DecodeSettings {
    fn default() -> Self {
        let limits = DecodeLimits::default();
        Self {
            // All the cores: decode, resize, encode take ~6 ms of CPU per image against
            // ~32 ms in the two models, and they come in bursts (a batch's eight images
            // at once) that one thread serialises while the detector waits for its next
            // batch. imgfeat-bench, 2 cores, detector on all cores, three pairs in one
            // run: 42.9 / 45.6 / 41.7 img/s with two decode threads against 42.4 / 42.5 /
            // 38.5 with one.
            threads: imgfeat_model::session::cores(),
            max_queued: 16,
            max_bytes: limits.max_bytes,
            max_pixels: limits.max_pixels,
            shrink_on_load: false,
            crop_at_extractor_scale: false,
        }
    }
}

impl DecodeSettings {
    pub fn limits(&self) -> DecodeLimits {
        DecodeLimits {
            max_bytes: self.max_bytes,
            max_pixels: self.max_pixels,
        }
    }

    /// How the detector's images are decoded.
    pub fn decoding(&self) -> Decoding {
        Decoding {
            limits: self.limits(),
            shrink_on_load: self.shrink_on_load,
            crop_at_extractor_scale: self.crop_at_extractor_scale,
        }
    }
}

impl PipelineSettings {
    /// The detector version and the code version these settings produce, read from the
    /// manifests alone (no model is loaded).
    pub fn versions(&self) -> Result<(ModelVersion, ModelVersion), String> {
        let dir = self.models.resolve_dir()?;
        // The networks' versions as they will run: a runtime that changes their numbers
        // names its own (see `RuntimeSettings::version_of`).
        let version = |file: &str| -> Result<ModelVersion, String> {
            let m = Manifest::load(&dir.join(file)).map_err(|e| e.to_string())?;
            self.runtime.version_of(&m).map_err(|e| e.to_string())
        };
        let detector = detector_version(version(&self.models.detector)?, &self.decode.decoding())
            .map_err(|e| e.to_string())?;
        let backbone = version(&self.models.backbone)?;
        let head = version(&self.models.hash_head)?;
        let code = head
            .after(&backbone)
            .and_then(|v| v.after(&detector))
            .map_err(|e| e.to_string())?;
        Ok((detector, code))
    }

    /// The bit length of the codes these settings produce, read from the hash head's
    /// manifest (no model is loaded).
    pub fn code_bits(&self) -> Result<u32, String> {
        let dir = self.models.resolve_dir()?;
        let file = &self.models.hash_head;
        let m = Manifest::load(&dir.join(file)).map_err(|e| e.to_string())?;
        m.kind
            .head_weights()
            .map(|w| w.bits)
            .ok_or_else(|| format!("pipeline.models.hash_head {file} is not a hash head"))
    }

    /// Checks values that parse but cannot work, with messages naming the key.
    pub fn validate(&self) -> Result<(), String> {
        let mut problems = Vec::new();
        for (key, policy) in [
            ("detector.batch", self.detector.batch),
            ("extractor.batch", self.extractor.batch),
        ] {
            if policy.max_batch == 0 || policy.max_batch > 256 {
                problems.push(format!("pipeline.{key}.max_batch must be 1..=256"));
            }
            if policy.max_wait_ms > 60_000 {
                problems.push(format!("pipeline.{key}.max_wait_ms must be at most 60000"));
            }
        }
        if !(1..=100).contains(&self.detector.crop_jpeg_quality) {
            problems.push("pipeline.detector.crop_jpeg_quality must be 1..=100".to_string());
        }
        if self.detector.max_in_flight == 0 || self.extractor.max_in_flight == 0 {
            problems.push("pipeline.*.max_in_flight must be at least 1".into());
        }
        if self.decode.threads == 0 || self.decode.threads > 256 {
            problems.push("pipeline.decode.threads must be 1..=256".into());
        }
        if self.decode.max_bytes == 0 || self.decode.max_pixels == 0 {
            problems.push("pipeline.decode.max_bytes and max_pixels must be positive".into());
        }
        if self.decode.crop_at_extractor_scale && !self.decode.shrink_on_load {
            problems.push(
                "pipeline.decode.crop_at_extractor_scale needs shrink_on_load: without it \
                 the crop is read at full size already"
                    .into(),
            );
        }
        for (key, s) in [
            ("detector_session", self.models.detector_session),
            ("extractor_session", self.models.extractor_session),
        ] {
            if s.intra_threads == 0 || s.intra_threads > 256 {
                problems.push(format!(
                    "pipeline.models.{key}.intra_threads must be 1..=256"
                ));
            }
            if s.dynamic_block_base > 64 {
                problems.push(format!(
                    "pipeline.models.{key}.dynamic_block_base must be 0 (off) to 64"
                ));
            }
        }
        for (key, n) in [
            ("detector_workers", self.models.detector_workers),
            ("extractor_workers", self.models.extractor_workers),
        ] {
            if n == 0 || n > 64 {
                problems.push(format!("pipeline.models.{key} must be 1..=64"));
            }
        }
        if let Err(problem) = self.runtime.validate(self.models.shared_intra_threads) {
            problems.push(problem);
        }
        if self.models.shared_intra_threads > 256 {
            problems.push("pipeline.models.shared_intra_threads must be 0 (off) to 256".into());
        }
        if let Some(t) = self.models.thresholds
            && (!(0.0..1.0).contains(&t.score) || !(0.0..=1.0).contains(&t.nms_iou))
        {
            problems.push("pipeline.models.thresholds: score in [0,1), nms_iou in [0,1]".into());
        }
        let rule = self.detector.main_object;
        if !(0.0..1.0).contains(&rule.score_floor) {
            problems.push("pipeline.detector.main_object.score_floor must be in [0,1)".into());
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bad_values_are_named() {
        PipelineSettings::default().validate().unwrap();
        let mut s = PipelineSettings::default();
        s.detector.batch.max_batch = 0;
        s.detector.crop_jpeg_quality = 0;
        let err = s.validate().unwrap_err();
        assert!(err.contains("pipeline.detector.batch.max_batch"), "{err}");
        assert!(err.contains("crop_jpeg_quality"), "{err}");
    }

    #[test]
    fn the_code_length_is_the_hash_heads() {
        let mut s = PipelineSettings::default();
        assert_eq!(s.code_bits().unwrap(), 64);
        s.models.hash_head = s.models.backbone.clone();
        assert!(s.code_bits().unwrap_err().contains("not a hash head"));
    }

    #[test]
    fn shrink_on_load_names_its_own_detector_and_code_versions() {
        let mut s = PipelineSettings::default();
        let (detector, code) = s.versions().unwrap();
        s.decode.shrink_on_load = true;
        let (shrunk, shrunk_code) = s.versions().unwrap();
        assert_eq!(shrunk.as_str(), format!("{detector}.shrink"));
        // The code names the detector whose crops it embeds.
        assert_eq!(
            shrunk_code.as_str(),
            code.as_str()
                .replacen(detector.as_str(), shrunk.as_str(), 1)
        );
        s.decode.crop_at_extractor_scale = true;
        let (region, _) = s.versions().unwrap();
        assert_eq!(region.as_str(), format!("{detector}.shrink.region"));
        s.validate().unwrap();
        s.decode.shrink_on_load = false;
        let err = s.validate().unwrap_err();
        assert!(
            err.contains("crop_at_extractor_scale needs shrink_on_load"),
            "{err}"
        );
    }

    #[test]
    fn the_repository_models_folder_is_found() {
        let dir = ModelSettings::default().resolve_dir().unwrap();
        assert!(dir.join("ssd_mobilenetv2_oidv4_24cls.onnx").is_file());
        let missing = ModelSettings {
            dir: Some("/nonexistent".into()),
            ..ModelSettings::default()
        };
        assert!(missing.resolve_dir().unwrap_err().contains("/nonexistent"));
    }
}
