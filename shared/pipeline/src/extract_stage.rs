//! The extractor worker: crop -> batch -> backbone + hash head -> persist -> ack.
//!
//! The crop arrives inside the job, already stretched to the backbone's input from the
//! original image, losslessly (see `recipe::build_record`), in one process and
//! across the broker alike, so both give the reference's codes. Version 2 jobs carried
//! a JPEG of it instead: their detector versions' codes were made from it, so it is still
//! read for them. A job without a crop (an older detector) or of another size (a detector
//! configured for another backbone) falls back to decoding the stored JPEG crop, whose
//! code can differ by a few bits.

use std::sync::Arc;
use std::time::Instant;

use imgfeat_core::message::{CodeStored, ExtractJob};
use imgfeat_core::ports::{Delivery, JobConsumer, JobPublisher, ResultStore};
use imgfeat_core::{
    BinaryCode, CodeRecord, CropRect, FailureKind, FailureReason, ModelVersion, Stage,
};
use imgfeat_imaging::DecodeLimits;
use imgfeat_model::Extractor;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::batch_runs::run_batches;
use crate::batcher::BatchPolicy;
use crate::batcher::report_started;
use crate::events::{Events, Phase, Worker};
use crate::intake::take_deliveries;
use crate::recipe::{crop_jpeg_tensor, pixels_tensor};
use crate::settle::{Failed, Settler};
use imgfeat_core::shutdown::Shutdown;
use imgfeat_exec::cpu_pool::CpuPool;
use imgfeat_exec::model_load::Busy;
use imgfeat_exec::model_thread::ModelThread;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExtractorStageConfig {
    pub batch: BatchPolicy,
    pub max_in_flight: usize,
}

impl Default for ExtractorStageConfig {
    fn default() -> Self {
        Self {
            batch: BatchPolicy::default(),
            max_in_flight: 32,
        }
    }
}

pub struct ExtractorStage {
    pub store: Arc<dyn ResultStore>,
    pub model: ModelThread<Extractor>,
    /// `backbone@v+head@v`; codes are stored under this after the detector's version.
    pub extractor_version: ModelVersion,
    pub input_size: (u32, u32),
    pub pool: CpuPool,
    pub limits: DecodeLimits,
    pub config: ExtractorStageConfig,
    pub events: Events,
    /// Where stored codes are announced (see [`crate::code_events`]).
    pub code_events: Arc<dyn JobPublisher<CodeStored>>,
}

struct Prepared {
    delivery: Delivery<ExtractJob>,
    job: ExtractJob,
    version: ModelVersion,
    tensor: Vec<f32>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl ExtractorStage {
    /// The stage announcing every code it stores to `publisher`.
    pub fn announcing(mut self, publisher: Arc<dyn JobPublisher<CodeStored>>) -> Self {
        self.code_events = publisher;
        self
    }

    pub async fn run<C>(self: Arc<Self>, mut consumer: C, shutdown: Shutdown)
    where
        C: JobConsumer<ExtractJob>,
    {
        let policy = self.config.batch;
        let (prep_tx, mut prep_rx) = mpsc::channel::<Prepared>(policy.max_batch.max(1) * 2);
        let batches = {
            let this = self.clone();
            tokio::spawn(async move {
                let events = this.events.clone();
                let load = this.model.load();
                let run = |items, busy| {
                    let this = this.clone();
                    async move { this.process(items, busy).await }
                };
                let closed = report_started(Worker::Extractor, &events);
                run_batches(&mut prep_rx, &policy, &load, closed, run).await;
            })
        };
        let this = self.clone();
        take_deliveries(
            &mut consumer,
            shutdown,
            self.config.max_in_flight,
            Worker::Extractor,
            &self.events,
            prep_tx.clone(),
            move |delivery, permit| {
                let this = this.clone();
                async move { this.prepare(delivery, permit).await }
            },
        )
        .await;
        drop(prep_tx);
        let _ = batches.await;
    }

    async fn fail(
        &self,
        delivery: Delivery<ExtractJob>,
        job: &ExtractJob,
        version: &ModelVersion,
        stage: Stage,
        reason: FailureReason,
    ) {
        let failed = Failed {
            delivery,
            image_id: job.image_id,
            stage,
            reason,
            enqueued_at_ms: job.enqueued_at_ms,
        };
        self.settler().settle(version, failed).await;
    }

    /// Settles every item of a batch with the same failure (inference, the store or
    /// the announcement failed for the batch as a whole).
    async fn fail_all(&self, items: Vec<Prepared>, stage: Stage, reason: FailureReason) {
        for p in items {
            self.fail(p.delivery, &p.job, &p.version, stage, reason.clone())
                .await;
        }
    }

    fn settler(&self) -> Settler {
        Settler {
            store: self.store.clone(),
            events: self.events.clone(),
            worker: Worker::Extractor,
        }
    }

    async fn prepare(
        &self,
        delivery: Delivery<ExtractJob>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<Prepared> {
        let job = delivery.job.clone();
        let version = match self.extractor_version.after(&job.detector_version) {
            Ok(v) => v,
            Err(e) => {
                let reason = FailureReason::new(FailureKind::MalformedMessage, e.to_string());
                let v = self.extractor_version.clone();
                self.fail(delivery, &job, &v, Stage::Message, reason).await;
                return None;
            }
        };
        let started = Instant::now();
        match self.tensor_from_job(&job).await {
            Ok(Some(tensor)) => {
                self.events.phase(Worker::Extractor, Phase::Decode, started);
                return Some(Prepared {
                    delivery,
                    job,
                    version,
                    tensor,
                    _permit: permit,
                });
            }
            Ok(None) => {}
            Err(reason) => {
                self.fail(delivery, &job, &version, Stage::Decode, reason)
                    .await;
                return None;
            }
        }
        let (w, h) = self.input_size;
        let started = Instant::now();
        let crop = match self
            .store
            .detection(job.image_id, &job.detector_version)
            .await
        {
            Ok(Some(record)) => record.crop_jpeg,
            Ok(None) => {
                let reason = FailureReason::new(
                    FailureKind::NotFound,
                    format!(
                        "no crop stored for image {} under {}",
                        job.image_id, job.detector_version
                    ),
                );
                self.fail(delivery, &job, &version, Stage::Fetch, reason)
                    .await;
                return None;
            }
            Err(e) => {
                let reason =
                    FailureReason::new(FailureKind::Unavailable, format!("reading the crop: {e}"));
                self.fail(delivery, &job, &version, Stage::Fetch, reason)
                    .await;
                return None;
            }
        };
        self.events.phase(Worker::Extractor, Phase::Fetch, started);

        let started = Instant::now();
        let limits = self.limits;
        let tensor = self
            .pool
            .run(move || -> Result<Vec<f32>, FailureReason> {
                let image = imgfeat_imaging::decode_rgb(&crop, &limits).map_err(|e| e.reason())?;
                let mut tensor = vec![0f32; (w * h * 3) as usize];
                let whole = CropRect::whole(image.width(), image.height());
                imgfeat_imaging::resize_to_tensor(&image, whole, w, h, &mut tensor)
                    .map_err(|e| e.reason())?;
                Ok(tensor)
            })
            .await
            .unwrap_or_else(|e| Err(FailureReason::new(FailureKind::Internal, e.to_string())));
        match tensor {
            Ok(tensor) => {
                self.events.phase(Worker::Extractor, Phase::Decode, started);
                Some(Prepared {
                    delivery,
                    job,
                    version,
                    tensor,
                    _permit: permit,
                })
            }
            Err(reason) => {
                self.fail(delivery, &job, &version, Stage::Decode, reason)
                    .await;
                None
            }
        }
    }

    /// The input tensor from the crop the job carries: its pixels (schemas 3 and 1) or a
    /// JPEG (schema 2). `None` when it carries none of this backbone's input size, and the
    /// stored crop must do.
    async fn tensor_from_job(&self, job: &ExtractJob) -> Result<Option<Vec<f32>>, FailureReason> {
        let (w, h) = self.input_size;
        let image_id = job.image_id;
        let wrong_size = move |sent: (u32, u32)| {
            tracing::warn!(
                image_id = image_id.0,
                ?sent,
                wanted = ?(w, h),
                "the job's crop is not this backbone's size; decoding the stored crop"
            );
            Ok(None)
        };
        match &job.crop {
            Some(crop) if crop.size() == (w, h) => return pixels_tensor(crop.rgb()).map(Some),
            Some(crop) => return wrong_size(crop.size()),
            None => {}
        }
        if let Some(jpeg) = job.crop_jpeg.clone() {
            let limits = self.limits;
            return self
                .pool
                .run(
                    move || match crop_jpeg_tensor(jpeg.bytes(), &limits, (w, h))? {
                        Ok(tensor) => Ok(Some(tensor)),
                        Err(sent) => wrong_size(sent),
                    },
                )
                .await
                .unwrap_or_else(|e| Err(FailureReason::new(FailureKind::Internal, e.to_string())));
        }
        Ok(None)
    }

    async fn process(&self, items: Vec<Prepared>, busy: Busy) {
        let started = Instant::now();
        let batch = items.len();
        let mut input = Vec::with_capacity(items.iter().map(|p| p.tensor.len()).sum());
        for p in &items {
            input.extend_from_slice(&p.tensor);
        }
        let codes: Result<Vec<BinaryCode>, String> = self
            .model
            .call_counted(busy, move |m: &mut Extractor| m.codes(&input, batch))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        self.events
            .phase(Worker::Extractor, Phase::Inference, started);
        let codes = match codes {
            Ok(c) => c,
            Err(message) => {
                let reason = FailureReason::new(
                    FailureKind::Unavailable,
                    format!("inference failed: {message}"),
                );
                self.fail_all(items, Stage::Extract, reason).await;
                return;
            }
        };

        let started = Instant::now();
        let records: Vec<CodeRecord> = items
            .iter()
            .zip(codes)
            .map(|(p, code)| CodeRecord {
                image_id: p.job.image_id,
                model_version: p.version.clone(),
                code,
            })
            .collect();
        if let Err(e) = self.store.put_codes(&records).await {
            let reason =
                FailureReason::new(FailureKind::Unavailable, format!("storing codes: {e}"));
            self.fail_all(items, Stage::Persist, reason).await;
            return;
        }
        self.events
            .phase(Worker::Extractor, Phase::Persist, started);
        let started = Instant::now();
        if let Err(e) = crate::code_events::announce(self.code_events.as_ref(), &records).await {
            let reason = FailureReason::new(
                FailureKind::Unavailable,
                format!("announcing the stored codes: {e}"),
            );
            self.fail_all(items, Stage::Persist, reason).await;
            return;
        }
        self.events
            .phase(Worker::Extractor, Phase::Publish, started);
        let settler = self.settler();
        for p in items {
            settler
                .acked(p.delivery, p.job.image_id, p.job.enqueued_at_ms)
                .await;
        }
    }
}
