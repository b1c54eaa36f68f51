//! Extract jobs as the real detector stage makes them for the sample photos: across
//! the wire they carry exactly the pixels handed on (a PNG, about half the size of the
//! raw pixels), and the real extractor stage codes them as it codes version 1 jobs,
//! which carried the same pixels raw (~200 KB a job).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use common::Photos;
use imgfeat_core::message::{CropPixels, DetectJob, ExtractJob, decode, encode};
use imgfeat_core::ports::{JobConsumer, JobPublisher, ResultStore};
use imgfeat_core::{ImageId, ModelVersion};
use imgfeat_embedded::local_queue::{LocalRetry, local_queue};
use imgfeat_imaging::DecodeLimits;
use imgfeat_pipeline::chain::Downstream;
use imgfeat_pipeline::parts::{self, StageAdapters};
use imgfeat_pipeline::{Events, PipelineSettings, shutdown_pair};
use imgfeat_store::SqliteStore;

/// A job is never larger than the raw pixels in base64 (224 * 224 * 3 * 4/3) and its
/// envelope: PNG takes about half of that on most photos, ~93 % on the noisiest here.
const MAX_JOB_BYTES: usize = 224 * 224 * 4 + 512;
/// Version 1 twins of job N are image N + OLD.
const OLD: u64 = 100;

fn photos() -> HashMap<ImageId, Vec<u8>> {
    Photos::fixtures(1..=common::fixture_paths().len() as u64, 0).0
}

/// The extract jobs the detector stage publishes for `photos`, and the store holding
/// their detections (in the returned folder).
async fn detect(
    settings: &PipelineSettings,
    photos: HashMap<ImageId, Vec<u8>>,
) -> (Vec<ExtractJob>, Arc<SqliteStore>, tempfile::TempDir) {
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
            store: store.clone(),
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
    (out, store, dir)
}

/// The same job as a version 1 producer sent it: the pixels raw, on the wire as JSON.
fn version_one_twin(job: &ExtractJob) -> ExtractJob {
    let crop: &CropPixels = job.crop.as_ref().expect("the detector hands on the pixels");
    let (w, h) = crop.size();
    let wire = format!(
        r#"{{"v":1,"image_id":{},"detector_version":"{}","enqueued_at_ms":0,"crop":{{"width":{w},"height":{h},"rgb":"{}"}}}}"#,
        job.image_id.0 + OLD,
        job.detector_version,
        base64::engine::general_purpose::STANDARD.encode(crop.rgb())
    );
    decode(wire.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extract_jobs_carry_the_exact_pixels_and_version_one_jobs_give_the_same_codes() {
    let settings = PipelineSettings::default();
    let originals = photos();
    let (handed_on, detections, _dir) = detect(&settings, originals.clone()).await;
    let detector = parts::load_detector(&settings).unwrap();
    let mut jobs = Vec::new();
    for job in &handed_on {
        let wire = encode(job);
        assert!(
            wire.len() <= MAX_JOB_BYTES,
            "the extract job of image {} is {} bytes",
            job.image_id,
            wire.len()
        );
        let back: ExtractJob = decode(&wire).unwrap();
        assert_eq!(
            &back, job,
            "image {}: the wire changed the job",
            job.image_id
        );
        // And those pixels are the original's main object, stretched: nothing lossy
        // between the photo and the extractor.
        let image =
            imgfeat_imaging::decode_rgb(&originals[&job.image_id], &DecodeLimits::default())
                .unwrap();
        let record = detections
            .detection(job.image_id, &job.detector_version)
            .await
            .unwrap()
            .unwrap();
        let (w, h) = detector.crop_size;
        let exact = imgfeat_imaging::resize_rgb(&image, record.main.crop, w, h).unwrap();
        assert_eq!(back.crop.as_ref().unwrap().rgb(), exact.as_slice());
        jobs.push(back);
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

/// `crop_max_side` shrinks what is stored, never what is coded: the extract jobs (the
/// pixels the codes come from) are the same, the stored crops no longer than the cap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crop_cap_shrinks_the_stored_crop_and_leaves_the_coded_pixels_alone() {
    const CAP: u32 = 256;
    let originals = photos();
    let full = PipelineSettings::default();
    let mut capped = PipelineSettings::default();
    capped.detector.crop_max_side = Some(CAP);
    let (jobs_full, store_full, _a) = detect(&full, originals.clone()).await;
    let (jobs_capped, store_capped, _b) = detect(&capped, originals.clone()).await;
    let by_id = |jobs: Vec<ExtractJob>| -> HashMap<ImageId, ExtractJob> {
        jobs.into_iter().map(|j| (j.image_id, j)).collect()
    };
    let (jobs_full, jobs_capped) = (by_id(jobs_full), by_id(jobs_capped));
    let (mut bytes_full, mut bytes_capped, mut shrunk) = (0, 0, 0);
    for (id, job) in &jobs_full {
        assert_eq!(
            jobs_capped[id].crop, job.crop,
            "image {id}: coded pixels changed"
        );
        let version = &job.detector_version;
        let full = store_full.detection(*id, version).await.unwrap().unwrap();
        let small = store_capped.detection(*id, version).await.unwrap().unwrap();
        assert_eq!(full.main, small.main, "the box is the box");
        let stored =
            imgfeat_imaging::decode_rgb(&small.crop_jpeg, &DecodeLimits::default()).unwrap();
        let longest = full.main.crop.width.max(full.main.crop.height);
        assert!(stored.width().max(stored.height()) <= CAP, "image {id}");
        if longest > CAP {
            shrunk += 1;
        } else {
            assert_eq!(
                stored.dimensions(),
                (full.main.crop.width, full.main.crop.height)
            );
        }
        bytes_full += full.crop_jpeg.len();
        bytes_capped += small.crop_jpeg.len();
    }
    assert!(shrunk > 0, "no photo's main object is over {CAP} px");
    assert!(bytes_capped < bytes_full, "{bytes_capped} >= {bytes_full}");
    eprintln!(
        "stored crops: {bytes_full} bytes at full resolution, {bytes_capped} capped at {CAP} px ({} photos)",
        jobs_full.len()
    );
}
