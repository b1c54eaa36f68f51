//! Extract jobs as the real detector stage makes them for the sample photos: small on
//! the wire, and read by the real extractor stage alongside version 1 jobs, which
//! carried the same pixels raw (~200 KB a job).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use imgfeat_core::message::{CropPixels, DetectJob, ExtractJob, decode, encode};
use imgfeat_core::ports::{ImageSource, JobConsumer, JobPublisher, ResultStore, SourceError};
use imgfeat_core::{ImageId, ModelVersion};
use imgfeat_imaging::DecodeLimits;
use imgfeat_pipeline::chain::Downstream;
use imgfeat_pipeline::local_queue::{LocalRetry, local_queue};
use imgfeat_pipeline::parts::{self, StageAdapters};
use imgfeat_pipeline::{Events, PipelineSettings, shutdown_pair};
use imgfeat_store::SqliteStore;

/// The issue's budget for one extract job on the wire.
const MAX_JOB_BYTES: usize = 64 * 1024;
/// Version 1 twins of job N are image N + OLD.
const OLD: u64 = 100;

struct Photos(HashMap<ImageId, Vec<u8>>);

#[async_trait]
impl ImageSource for Photos {
    async fn fetch(&self, id: ImageId) -> Result<Vec<u8>, SourceError> {
        Ok(self.0[&id].clone())
    }
}

fn photos() -> HashMap<ImageId, Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    (1..)
        .map(ImageId)
        .zip(paths.iter().map(|p| std::fs::read(p).unwrap()))
        .collect()
}

/// The extract jobs the detector stage publishes for `photos`.
async fn detect(settings: &PipelineSettings, photos: HashMap<ImageId, Vec<u8>>) -> Vec<ExtractJob> {
    let dir = tempfile::tempdir().unwrap();
    let detector = parts::load_detector(settings).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite3")).unwrap());
    let (extract_tx, mut extract_rx, _) = local_queue::<ExtractJob>(64, LocalRetry::default());
    let (detect_tx, detect_rx, dead) = local_queue::<DetectJob>(64, LocalRetry::default());
    let stage = parts::detector_stage(
        settings,
        &detector,
        parts::cpu_pool(settings).unwrap(),
        StageAdapters {
            source: Arc::new(Photos(photos.clone())),
            store,
            downstream: Downstream::Queue(Arc::new(extract_tx)),
        },
        Events::new(),
    );
    let jobs: Vec<DetectJob> = photos.keys().map(|&id| DetectJob::new(id, 0)).collect();
    detect_tx.publish(&jobs).await.unwrap();
    drop(detect_tx);
    let (_trigger, shutdown) = shutdown_pair();
    Arc::new(stage).run(detect_rx, shutdown).await;
    assert!(dead.snapshot().is_empty(), "{:?}", dead.snapshot());
    let mut out = Vec::new();
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_millis(200), extract_rx.next()).await
    {
        out.push(d.job);
    }
    assert_eq!(out.len(), photos.len());
    out
}

/// The same job as a version 1 producer sent it: the pixels raw, on the wire as JSON.
fn version_one_twin(job: &ExtractJob) -> ExtractJob {
    let jpeg = job
        .crop_jpeg
        .as_ref()
        .expect("the detector hands on a JPEG");
    let pixels = imgfeat_imaging::decode_rgb(jpeg.bytes(), &DecodeLimits::default()).unwrap();
    let twin = ExtractJob {
        image_id: ImageId(job.image_id.0 + OLD),
        crop_jpeg: None,
        crop: Some(CropPixels::new(pixels.width(), pixels.height(), pixels.into_raw()).unwrap()),
        ..job.clone()
    };
    let wire = String::from_utf8(encode(&twin))
        .unwrap()
        .replacen(r#"{"v":2,"#, r#"{"v":1,"#, 1);
    decode(wire.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_jobs_are_small_and_version_one_jobs_give_the_same_codes() {
    let settings = PipelineSettings::default();
    let jobs = detect(&settings, photos()).await;
    for job in &jobs {
        let size = encode(job).len();
        assert!(
            size <= MAX_JOB_BYTES,
            "the extract job of image {} is {size} bytes",
            job.image_id
        );
    }

    let dir = tempfile::tempdir().unwrap();
    let extractor = parts::load_extractor(&settings).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite3")).unwrap());
    let stage = parts::extractor_stage(
        &settings,
        &extractor,
        parts::cpu_pool(&settings).unwrap(),
        store.clone(),
        Events::new(),
    );
    let (tx, rx, dead) = local_queue::<ExtractJob>(64, LocalRetry::default());
    let twins: Vec<ExtractJob> = jobs.iter().map(version_one_twin).collect();
    tx.publish(&jobs).await.unwrap();
    tx.publish(&twins).await.unwrap();
    drop(tx);
    let (_trigger, shutdown) = shutdown_pair();
    Arc::new(stage).run(rx, shutdown).await;
    assert!(dead.snapshot().is_empty(), "{:?}", dead.snapshot());

    let version: ModelVersion = extractor.version.after(&jobs[0].detector_version).unwrap();
    for job in &jobs {
        let id = job.image_id;
        let new = store.code(id, &version).await.unwrap().expect("coded");
        let old = store
            .code(ImageId(id.0 + OLD), &version)
            .await
            .unwrap()
            .expect("the version 1 twin is coded");
        assert_eq!(new.code, old.code, "image {id}");
    }
}
