//! The detector worker: fetch -> decode -> batch -> detect -> crop -> persist ->
//! publish -> ack. Fetch and decode run concurrently per delivery (bounded), inference
//! runs on the model's own thread, and crop + persist of one batch overlap with
//! inference of the next.

use std::sync::Arc;
use std::time::Instant;

use imgfeat_core::message::{CropPixels, DetectJob, ExtractJob};
use imgfeat_core::ports::{
    Delivery, ImageSource, JobConsumer, JobPublisher, ResultStore, SourceError,
};
use imgfeat_core::{
    Detection, DetectionRecord, FailureKind, FailureReason, ImageId, ModelVersion, Stage,
};
use imgfeat_imaging::Decoded;
use imgfeat_model::Detector;
use imgfeat_model::postprocess::MainObjectRule;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::batch_runs::run_batches;
use crate::batcher::BatchPolicy;
use crate::batcher::report_started;
use crate::chain::{ChainSender, Downstream};
use crate::events::{Events, Outcome, Phase, Worker};
use crate::intake::take_deliveries;
use crate::per_item::each_isolated;
use crate::recipe::{CropEncoding, Decoding, RecordBuilder, RecordSpec, detector_input};
use crate::settle::{Failed, Settler};
use imgfeat_core::shutdown::Shutdown;
use imgfeat_exec::cpu_pool::CpuPool;
use imgfeat_exec::model_load::Busy;
use imgfeat_exec::model_thread::ModelThread;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DetectorStageConfig {
    pub batch: BatchPolicy,
    pub main_object: MainObjectRule,
    /// JPEG quality of stored crops (for people; codes never come from them).
    pub crop_jpeg_quality: u8,
    /// Longest side of the stored crop, in pixels: a larger main object is scaled down
    /// before it is encoded (codes never come from the stored crop, so they do not
    /// change). Unset: the object at the original's resolution (95 KB a photo of the
    /// catalogue sample); 512 stores a third of that (docs/capacity.md).
    pub crop_max_side: Option<u32>,
    /// How the stored crop is made: re-encoded from the decoded pixels, or cut from the
    /// photo's own JPEG data where it can be (see [`CropEncoding`]).
    pub crop_encoding: CropEncoding,
    /// Deliveries being fetched, decoded, batched or persisted at once. Bounds memory:
    /// each holds a decoded image.
    pub max_in_flight: usize,
}

impl Default for DetectorStageConfig {
    fn default() -> Self {
        Self {
            batch: BatchPolicy::default(),
            main_object: MainObjectRule::default(),
            crop_jpeg_quality: 90,
            crop_max_side: None,
            crop_encoding: CropEncoding::default(),
            max_in_flight: 32,
        }
    }
}

pub struct DetectorStage {
    pub source: Arc<dyn ImageSource>,
    pub store: Arc<dyn ResultStore>,
    pub downstream: Downstream,
    pub model: ModelThread<Detector>,
    pub model_version: ModelVersion,
    /// The version the codes of this pool's detections are stored under.
    pub code_version: ModelVersion,
    pub input_size: (u32, u32),
    /// The extractor's input size; see [`build_record`].
    pub crop_size: (u32, u32),
    pub pool: CpuPool,
    pub decoding: Decoding,
    pub config: DetectorStageConfig,
    pub events: Events,
    /// [`build_record`] everywhere but in tests, which put a poison image into a batch
    /// through it.
    pub build_record: RecordBuilder,
    /// Jobs of cancelled backfills are acked unprocessed; `None`: every job is done.
    pub cancelled: Option<Arc<crate::cancelled::CancelledBackfills>>,
}

/// An image decoded and resized, waiting for its batch.
struct Prepared {
    delivery: Delivery<DetectJob>,
    job: DetectJob,
    image: Decoded,
    /// The file, kept only for a lossless crop.
    source: Option<Vec<u8>>,
    tensor: Vec<f32>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// One image's record to build: the image, its file (kept for a lossless crop only)
/// and its detections.
type ToBuild = (ImageId, (Decoded, Option<Vec<u8>>), Vec<Detection>);

/// A batch after inference, waiting for crops and persistence.
struct Detected {
    items: Vec<Prepared>,
    detections: Result<Vec<Vec<Detection>>, String>,
}

impl DetectorStage {
    /// Runs until the consumer ends or `shutdown` fires; in both cases every delivery
    /// taken is finished (persisted and acked, or settled as a failure) before it returns.
    pub async fn run<C>(self: Arc<Self>, mut consumer: C, shutdown: Shutdown)
    where
        C: JobConsumer<DetectJob>,
    {
        let policy = self.config.batch;
        let (prep_tx, mut prep_rx) = mpsc::channel::<Prepared>(policy.max_batch.max(1) * 2);
        let (det_tx, mut det_rx) = mpsc::channel::<Detected>(1);

        let infer = {
            let this = self.clone();
            tokio::spawn(async move {
                let events = this.events.clone();
                let load = this.model.load();
                let run = |items, busy| {
                    let (this, det_tx) = (this.clone(), det_tx.clone());
                    async move {
                        let detected = this.infer(items, busy).await;
                        // The persist task only ends after this one: a send cannot fail.
                        let _ = det_tx.send(detected).await;
                    }
                };
                let closed = report_started(Worker::Detector, &events);
                run_batches(&mut prep_rx, &policy, &load, closed, run).await;
            })
        };
        let persist = {
            let this = self.clone();
            tokio::spawn(async move {
                while let Some(detected) = det_rx.recv().await {
                    this.persist(detected).await;
                }
            })
        };

        let this = self.clone();
        take_deliveries(
            &mut consumer,
            shutdown,
            self.config.max_in_flight,
            Worker::Detector,
            &self.events,
            prep_tx.clone(),
            move |delivery, permit| {
                let this = this.clone();
                async move { this.prepare(delivery, permit).await }
            },
        )
        .await;
        drop(prep_tx);
        let _ = infer.await;
        let _ = persist.await;
    }

    fn settler(&self) -> Settler {
        Settler {
            store: self.store.clone(),
            events: self.events.clone(),
            worker: Worker::Detector,
        }
    }

    async fn fail(
        &self,
        delivery: Delivery<DetectJob>,
        job: &DetectJob,
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
        self.settler().settle(&self.model_version, failed).await;
    }

    /// Why this pool must not serve `job`: it pins a detector or a code version other
    /// than the ones this pool makes, and results stored under them would be wrong.
    fn refusal(&self, job: &DetectJob) -> Option<FailureReason> {
        let mismatch = |what: &str, wanted: &ModelVersion, ours: &ModelVersion| {
            FailureReason::new(
                FailureKind::MalformedMessage,
                format!("job asks for {what} {wanted}, this worker makes {ours}"),
            )
        };
        if let Some(wanted) = &job.detector
            && wanted != &self.model_version
        {
            return Some(mismatch("detector", wanted, &self.model_version));
        }
        if let Some(wanted) = &job.code_version
            && wanted != &self.code_version
        {
            return Some(mismatch("code version", wanted, &self.code_version));
        }
        None
    }

    async fn prepare(
        &self,
        delivery: Delivery<DetectJob>,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> Option<Prepared> {
        let job = delivery.job.clone();
        if let Some(reason) = self.refusal(&job) {
            self.fail(delivery, &job, Stage::Message, reason).await;
            return None;
        }
        if let (Some(backfill), Some(cancelled)) = (&job.backfill, &self.cancelled)
            && cancelled.is_cancelled(backfill).await
        {
            // Nothing to store: the job that asked for it was called off. An ack that
            // fails only means a redelivery, which skips again.
            if let Err(e) = delivery.handle.ack().await {
                tracing::warn!(image_id = %job.image_id, error = %e, "acking a cancelled backfill's job");
            }
            self.events
                .completed(Worker::Detector, Outcome::Skipped, None);
            return None;
        }
        let started = Instant::now();
        let bytes = match self.source.fetch(job.image_id).await {
            Ok(b) => b,
            Err(e) => {
                let reason = source_reason(&e);
                self.fail(delivery, &job, Stage::Fetch, reason).await;
                return None;
            }
        };
        self.events.phase(Worker::Detector, Phase::Fetch, started);

        let started = Instant::now();
        let decoding = self.decoding;
        let (w, h) = self.input_size;
        let keep = self.config.crop_encoding == CropEncoding::Lossless || decoding.reads_again();
        let decoded = self
            .pool
            .run(move || {
                detector_input(&bytes, &decoding, (w, h))
                    .map(|(image, tensor)| (image, tensor, keep.then_some(bytes)))
            })
            .await
            .unwrap_or_else(|e| Err(FailureReason::new(FailureKind::Internal, e.to_string())));
        match decoded {
            Ok((image, tensor, source)) => {
                self.events.phase(Worker::Detector, Phase::Decode, started);
                Some(Prepared {
                    delivery,
                    job,
                    image,
                    source,
                    tensor,
                    _permit: permit,
                })
            }
            Err(reason) => {
                self.fail(delivery, &job, Stage::Decode, reason).await;
                None
            }
        }
    }

    async fn infer(&self, items: Vec<Prepared>, busy: Busy) -> Detected {
        let started = Instant::now();
        let mut input = Vec::with_capacity(items.iter().map(|p| p.tensor.len()).sum());
        let mut sizes = Vec::with_capacity(items.len());
        for p in &items {
            input.extend_from_slice(&p.tensor);
            // Boxes in the original's pixels, whatever size it was decoded at.
            sizes.push(p.image.original);
        }
        let detections = self
            .model
            .call_counted(busy, move |d: &mut Detector| d.detect(&input, &sizes))
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        self.events
            .phase(Worker::Detector, Phase::Inference, started);
        Detected { items, detections }
    }

    async fn persist(&self, detected: Detected) {
        let Detected { items, detections } = detected;
        let detections = match detections {
            Ok(d) => d,
            Err(message) => {
                // An inference error is retried: it may be memory pressure or a bad
                // batch-mate; a persistent one ends in the dead-letter queue.
                for p in items {
                    let reason = FailureReason::new(
                        FailureKind::Unavailable,
                        format!("inference failed: {message}"),
                    );
                    self.fail(p.delivery, &p.job, Stage::Detect, reason).await;
                }
                return;
            }
        };

        let started = Instant::now();
        let spec = RecordSpec {
            version: self.model_version.clone(),
            rule: self.config.main_object,
            jpeg_quality: self.config.crop_jpeg_quality,
            crop_max_side: self.config.crop_max_side,
            crop_encoding: self.config.crop_encoding,
            crop_size: self.crop_size,
            decoding: self.decoding,
        };
        let build = self.build_record;
        let (meta, images): (Vec<_>, Vec<_>) = items
            .into_iter()
            .map(|p| ((p.delivery, p.job, p._permit), (p.image, p.source)))
            .unzip();
        let jobs: Vec<ToBuild> = meta
            .iter()
            .zip(images)
            .zip(detections)
            .map(|(((_, job, _), image), dets)| (job.image_id, image, dets))
            .collect();
        let count = jobs.len();
        // Each image behind its own panic boundary: one that trips a bug is
        // dead-lettered alone while its batch-mates are stored.
        let built = self
            .pool
            .run(move || {
                each_isolated(jobs, |(id, (image, source), dets)| {
                    build(id, &image, source.as_deref(), dets, &spec)
                })
            })
            .await
            .unwrap_or_else(|e| {
                (0..count)
                    .map(|_| Err(FailureReason::new(FailureKind::Internal, e.to_string())))
                    .collect()
            });
        self.events
            .phase(Worker::Detector, Phase::Postprocess, started);

        // Deliveries and their records side by side, so the records (crop bytes
        // included) are moved to the store and the extract jobs, never copied.
        let mut ok = Vec::new();
        let mut records: Vec<DetectionRecord> = Vec::new();
        let mut crops: Vec<CropPixels> = Vec::new();
        for ((delivery, job, permit), record) in meta.into_iter().zip(built) {
            match record {
                Ok((record, crop)) => {
                    ok.push((delivery, job, permit));
                    records.push(record);
                    crops.push(crop);
                }
                Err(reason) => self.fail(delivery, &job, Stage::Detect, reason).await,
            }
        }
        if ok.is_empty() {
            return;
        }

        let started = Instant::now();
        if let Err(e) = self.store.put_detections(&records).await {
            let reason =
                FailureReason::new(FailureKind::Unavailable, format!("storing detections: {e}"));
            for (delivery, job, _) in ok {
                self.fail(delivery, &job, Stage::Persist, reason.clone())
                    .await;
            }
            return;
        }
        self.events.phase(Worker::Detector, Phase::Persist, started);

        let started = Instant::now();
        let extract_jobs: Vec<ExtractJob> = ok
            .iter()
            .zip(crops)
            .map(|((_, job, _), crop)| ExtractJob {
                image_id: job.image_id,
                detector_version: self.model_version.clone(),
                enqueued_at_ms: job.enqueued_at_ms,
                crop: Some(crop),
                crop_jpeg: None,
            })
            .collect();
        match &self.downstream {
            Downstream::Queue(publisher) => {
                self.publish(publisher.as_ref(), ok, &extract_jobs, started)
                    .await
            }
            Downstream::Chained(chain) => self.hand_on(chain, ok, extract_jobs, started).await,
        }
    }

    /// Publishes the extract jobs, then acks their detect deliveries: the queue holds
    /// the work from then on.
    async fn publish(
        &self,
        publisher: &dyn JobPublisher<ExtractJob>,
        ok: Vec<Taken>,
        extract_jobs: &[ExtractJob],
        started: Instant,
    ) {
        if let Err(e) = publisher.publish(extract_jobs).await {
            let reason = FailureReason::new(
                FailureKind::Unavailable,
                format!("publishing extract jobs: {e}"),
            );
            for (delivery, job, _) in ok {
                self.fail(delivery, &job, Stage::Persist, reason.clone())
                    .await;
            }
            return;
        }
        self.events.phase(Worker::Detector, Phase::Publish, started);
        let settler = self.settler();
        for (delivery, job, _permit) in ok {
            settler
                .acked(delivery, job.image_id, job.enqueued_at_ms)
                .await;
        }
    }

    /// Hands each extract job to the extractor in this process together with its
    /// detect delivery, which the extractor settles once the code is stored.
    async fn hand_on(
        &self,
        chain: &ChainSender,
        ok: Vec<Taken>,
        extract_jobs: Vec<ExtractJob>,
        started: Instant,
    ) {
        let settler = self.settler();
        for ((delivery, job, _permit), extract_job) in ok.into_iter().zip(extract_jobs) {
            let handed = Delivery {
                job: extract_job,
                attempt: delivery.attempt,
                handle: delivery.handle,
            };
            match chain.hand_on(handed).await {
                Ok(()) => settler.handed_on(job.enqueued_at_ms),
                Err(back) => {
                    let delivery = Delivery {
                        job: job.clone(),
                        attempt: back.attempt,
                        handle: back.handle,
                    };
                    let reason =
                        FailureReason::new(FailureKind::Unavailable, "the extractor has stopped");
                    self.fail(delivery, &job, Stage::Persist, reason).await;
                }
            }
        }
        self.events.phase(Worker::Detector, Phase::Publish, started);
    }
}

/// A detect delivery that made it through detection, with its job and in-flight permit.
type Taken = (
    Delivery<DetectJob>,
    DetectJob,
    tokio::sync::OwnedSemaphorePermit,
);

pub(crate) fn source_reason(e: &SourceError) -> FailureReason {
    e.reason()
}
