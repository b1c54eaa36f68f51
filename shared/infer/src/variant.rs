//! One model version served: its detector and extractor, each on its own thread and
//! session behind its own batcher. An image goes through exactly the functions the
//! workers use (`detector_input`, `Detector::detect`, `build_record`,
//! `pixels_tensor`, `Extractor::codes`), so its code and boxes are those `imgfeat
//! index` stores for the same bytes.

use std::sync::Arc;
use std::time::Duration;

use imgfeat_core::message::CropPixels;
use imgfeat_core::{
    BinaryCode, Detection, DetectionRecord, FailureKind, FailureReason, ImageId, ModelVersion,
};
use imgfeat_exec::cpu_pool::CpuPool;
use imgfeat_exec::model_thread::ModelThread;
use imgfeat_model::{Detector, Extractor};
use imgfeat_pipeline::PipelineSettings;
use imgfeat_pipeline::parts::{self, LoadError};
use imgfeat_pipeline::recipe::{RecordSpec, build_record, detector_input, pixels_tensor};
use tokio::time::Instant;

use crate::batcher::{Batcher, Dropped};
use crate::metrics::BatchMetrics;

/// Why an image got no answer.
#[derive(Debug, thiserror::Error)]
pub enum InferError {
    /// Something about the image itself (format, size, corrupt).
    #[error("{}", .0.message)]
    Input(FailureReason),
    #[error("the deadline passed {0}")]
    Expired(&'static str),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

impl From<Dropped> for InferError {
    fn from(d: Dropped) -> Self {
        match d {
            Dropped::Expired(stage) => InferError::Expired(match stage {
                "detect" => "before detection",
                _ => "before extraction",
            }),
            Dropped::Stopped(_) => InferError::Unavailable(d.to_string()),
            Dropped::Failed { .. } => InferError::Internal(d.to_string()),
        }
    }
}

/// What one image gave.
#[derive(Debug)]
pub struct Inferred {
    pub record: DetectionRecord,
    pub code: BinaryCode,
    pub timings: Timings,
}

/// Server-side time per step of one image.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    /// Waiting in the two batchers' queues.
    pub queue: Duration,
    pub decode: Duration,
    pub detect: Duration,
    /// Cropping, the crop's encode/decode and the extractor's batch.
    pub extract: Duration,
}

struct DetectIn {
    tensor: Vec<f32>,
    size: (u32, u32),
}

pub struct Variant {
    pub detector_version: ModelVersion,
    pub code_version: ModelVersion,
    pub bits: usize,
    input_size: (u32, u32),
    crop_size: (u32, u32),
    /// How records are built, with how images are decoded (`spec.decoding`).
    spec: RecordSpec,
    pool: CpuPool,
    detect: Batcher<DetectIn, Vec<Detection>>,
    extract: Batcher<Vec<f32>, BinaryCode>,
}

impl Variant {
    /// Loads the detector `settings` name and an extractor of its own (blocking: call
    /// from a blocking thread or at start-up), and starts their batchers.
    pub fn load(
        settings: &PipelineSettings,
        pool: CpuPool,
        capacity: usize,
        metrics: &BatchMetrics,
        runtime: &tokio::runtime::Handle,
    ) -> Result<Self, LoadError> {
        let detector = parts::load_detector(settings)?;
        let extractor = parts::load_extractor(settings)?;
        let code_version = extractor
            .version
            .after(&detector.version)
            .map_err(|e| LoadError::Settings(e.to_string()))?;
        let label = detector.version.to_string();
        let _entered = runtime.enter();
        let detect = {
            let model: ModelThread<Detector> = detector.model.clone();
            Batcher::spawn(
                &label,
                "detect",
                settings.detector.batch,
                model.load(),
                capacity,
                metrics,
                move |items: Vec<DetectIn>, busy| {
                    let model = model.clone();
                    async move {
                        let mut input =
                            Vec::with_capacity(items.iter().map(|i| i.tensor.len()).sum());
                        let mut sizes = Vec::with_capacity(items.len());
                        for i in &items {
                            input.extend_from_slice(&i.tensor);
                            sizes.push(i.size);
                        }
                        model
                            .call_counted(busy, move |d: &mut Detector| d.detect(&input, &sizes))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                    }
                },
            )
        };
        let extract = {
            let model: ModelThread<Extractor> = extractor.model.clone();
            Batcher::spawn(
                &label,
                "extract",
                settings.extractor.batch,
                model.load(),
                capacity,
                metrics,
                move |items: Vec<Vec<f32>>, busy| {
                    let model = model.clone();
                    async move {
                        let batch = items.len();
                        let input = items.concat();
                        model
                            .call_counted(busy, move |m: &mut Extractor| m.codes(&input, batch))
                            .await
                            .map_err(|e| e.to_string())
                            .and_then(|r| r.map_err(|e| e.to_string()))
                    }
                },
            )
        };
        let spec = RecordSpec {
            version: detector.version.clone(),
            rule: detector.rule,
            jpeg_quality: settings.detector.crop_jpeg_quality,
            crop_max_side: settings.detector.crop_max_side,
            crop_encoding: settings.detector.crop_encoding,
            crop_size: detector.crop_size,
            decoding: settings.decode.decoding(),
        };
        Ok(Self {
            detector_version: detector.version,
            code_version,
            bits: extractor.bits,
            input_size: detector.input_size,
            crop_size: extractor.input_size,
            spec,
            pool,
            detect,
            extract,
        })
    }

    /// One image through decode, detection, crop and extraction. An image past
    /// `deadline` is dropped before the next model would run.
    pub async fn infer(
        &self,
        bytes: Arc<[u8]>,
        deadline: Option<Instant>,
    ) -> Result<Inferred, InferError> {
        let past = |what| {
            deadline
                .is_some_and(|d| d <= Instant::now())
                .then_some(InferError::Expired(what))
        };
        if let Some(e) = past("before decoding") {
            return Err(e);
        }
        let mut timings = Timings::default();
        let started = Instant::now();
        let (decoding, input) = (self.spec.decoding, self.input_size);
        let file = Arc::clone(&bytes);
        let (image, tensor) = self
            .pool
            .run(move || detector_input(&file, &decoding, input))
            .await
            .map_err(|e| InferError::Internal(e.to_string()))?
            .map_err(InferError::Input)?;
        timings.decode = started.elapsed();
        let size = image.original;

        let done = self
            .detect
            .submit(DetectIn { tensor, size }, deadline)
            .await?;
        timings.queue += done.waited;
        timings.detect = done.ran;

        let started = Instant::now();
        let (spec, crop_size) = (self.spec.clone(), self.crop_size);
        let built: Result<(DetectionRecord, Vec<f32>), FailureReason> = self
            .pool
            .run(move || {
                let (record, handed_on): (DetectionRecord, CropPixels) =
                    build_record(ImageId(0), &image, Some(&bytes), done.output, &spec)?;
                if handed_on.size() != crop_size {
                    return Err(FailureReason::new(
                        FailureKind::Internal,
                        format!(
                            "the crop is {:?}, the extractor takes {crop_size:?}",
                            handed_on.size()
                        ),
                    ));
                }
                Ok((record, pixels_tensor(handed_on.rgb())?))
            })
            .await
            .map_err(|e| InferError::Internal(e.to_string()))?;
        let (record, tensor) = built.map_err(|r| match r.kind {
            FailureKind::Internal => InferError::Internal(r.message),
            _ => InferError::Input(r),
        })?;
        let cropped = started.elapsed();
        if let Some(e) = past("before extraction") {
            return Err(e);
        }
        let done = self.extract.submit(tensor, deadline).await?;
        timings.queue += done.waited;
        timings.extract = cropped + done.ran;
        Ok(Inferred {
            record,
            code: done.output,
            timings,
        })
    }
}
