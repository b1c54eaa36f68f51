//! One poison image in a batch of good ones, through the real detector stage (real
//! models, a SQLite store, the in-process queue): the good ones are stored and handed
//! on, the poison one alone is recorded and dead-lettered.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Photos;
use imgfeat_core::message::{CropPixels, DetectJob, ExtractJob};
use imgfeat_core::ports::{JobConsumer, JobPublisher, ResultStore};
use imgfeat_core::{Detection, DetectionRecord, FailureKind, FailureReason, ImageId};
use imgfeat_embedded::local_queue::{LocalRetry, local_queue};
use imgfeat_imaging::Decoded;
use imgfeat_pipeline::chain::Downstream;
use imgfeat_pipeline::parts::{self, StageAdapters};
use imgfeat_pipeline::recipe::{RecordSpec, build_record};
use imgfeat_pipeline::{Event, EventSink, Events, PipelineSettings, Worker, shutdown_pair};
use imgfeat_store::SqliteStore;

const BATCH: u64 = 6;
const POISON: ImageId = ImageId(3);

/// Detector batch sizes; the first batch to close also frees the model (see below).
#[derive(Default)]
struct BatchSizes {
    sizes: Mutex<Vec<usize>>,
    release: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

impl EventSink for BatchSizes {
    fn emit(&self, event: &Event) {
        if let Event::BatchStarted {
            worker: Worker::Detector,
            size,
            ..
        } = event
        {
            self.sizes.lock().unwrap().push(*size);
            self.release.lock().unwrap().take();
        }
    }
}

/// The real record builder, except that it trips over the poison image the way a bug
/// in a decoder or encoder would.
fn poisoned(
    id: ImageId,
    image: &Decoded,
    source: Option<&[u8]>,
    detections: Vec<Detection>,
    spec: &RecordSpec,
) -> Result<(DetectionRecord, CropPixels), FailureReason> {
    assert_ne!(id, POISON, "image {id} trips a bug");
    build_record(id, image, source, detections, spec)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_image_is_dead_lettered_alone_and_its_batch_mates_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let photos = Photos::fixtures(1..=BATCH, 1);

    let mut settings = PipelineSettings::default();
    // One worker, which the holder below keeps busy: with more, a free one would take
    // the images as they come.
    settings.models.detector_workers = 1;
    // The whole batch closes together, so the poison image has batch-mates.
    settings.detector.batch.max_batch = BATCH as usize;
    settings.detector.batch.max_wait_ms = 30_000;
    let detector = parts::load_detector(&settings).unwrap();
    let pool = parts::cpu_pool(&settings).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite3")).unwrap());
    let (extract_tx, mut extract_rx, _) = local_queue::<ExtractJob>(64, LocalRetry::default());
    let (detect_tx, detect_rx, dead) = local_queue::<DetectJob>(64, LocalRetry::default());
    let sizes = Arc::new(BatchSizes::default());
    // The model is held busy until the first batch closes, so that batch fills to
    // max_batch: a free model would take each image as it comes (continuous batching).
    let (release, held) = std::sync::mpsc::channel::<()>();
    *sizes.release.lock().unwrap() = Some(release);
    let hold = detector.model.clone();
    let holder = tokio::spawn(async move {
        hold.call(move |_| {
            let _ = held.recv();
        })
        .await
    });
    tokio::time::timeout(Duration::from_secs(30), async {
        while detector.model.load().is_idle() {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the holder takes the model's only worker");
    let mut stage = parts::detector_stage(
        &settings,
        &detector,
        pool,
        StageAdapters {
            source: Arc::new(photos),
            store: store.clone(),
            downstream: Downstream::Queue(Arc::new(extract_tx)),
        },
        Events::new().with(sizes.clone()),
    );
    stage.build_record = poisoned;

    let jobs: Vec<DetectJob> = (1..=BATCH).map(|i| DetectJob::new(ImageId(i), 0)).collect();
    detect_tx.publish(&jobs).await.unwrap();
    drop(detect_tx);
    let (_trigger, shutdown) = shutdown_pair();
    common::until_the_queue_ends(Arc::new(stage).run(detect_rx, shutdown)).await;

    holder.await.unwrap().unwrap();
    assert_eq!(
        *sizes.sizes.lock().unwrap(),
        vec![BATCH as usize],
        "one batch"
    );
    let dead = dead.snapshot();
    assert_eq!(
        dead.len(),
        1,
        "only the poison image is dead-lettered: {dead:?}"
    );
    assert_eq!(dead[0].0.image_id, POISON);
    assert_eq!(dead[0].1.kind, FailureKind::Internal);
    assert!(dead[0].1.message.contains("trips a bug"), "{:?}", dead[0].1);

    let mut handed_on = Vec::new();
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_millis(200), extract_rx.next()).await
    {
        handed_on.push(d.job.image_id.0);
    }
    handed_on.sort();
    assert_eq!(handed_on, vec![1, 2, 4, 5, 6]);
    for i in 1..=BATCH {
        let id = ImageId(i);
        let stored = store.detection(id, &detector.version).await.unwrap();
        assert_eq!(stored.is_some(), id != POISON, "image {id}");
    }
    let failures = store.failures(POISON).await.unwrap();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].reason.kind, FailureKind::Internal);
}
