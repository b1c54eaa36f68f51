//! A cancelled backfill's messages left in the queue are skipped by the detector stage
//! (real models, a SQLite store, the in-process queue): acked, nothing stored, nothing
//! handed on, nothing dead-lettered; the running job's and live jobs are done.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::Photos;
use imgfeat_core::ImageId;
use imgfeat_core::message::{DetectJob, ExtractJob};
use imgfeat_core::ports::{
    BackfillJob, BackfillState, BackfillStore, JobConsumer, JobPublisher, ResultStore,
};
use imgfeat_embedded::local_queue::{LocalRetry, local_queue};
use imgfeat_pipeline::cancelled::CancelledBackfills;
use imgfeat_pipeline::chain::Downstream;
use imgfeat_pipeline::parts::{self, StageAdapters};
use imgfeat_pipeline::{Events, PipelineSettings, shutdown_pair};
use imgfeat_store::SqliteStore;

fn job(id: &str, state: BackfillState) -> BackfillJob {
    BackfillJob {
        id: id.into(),
        from: 1,
        to: 10,
        model: None,
        next: 5,
        published: 4,
        skipped: 0,
        state,
        created_ms: 1,
        updated_ms: 2,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_backfills_jobs_are_acked_and_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let photos = Photos::fixtures(1..=4, 1);

    let settings = PipelineSettings::default();
    let detector = parts::load_detector(&settings).unwrap();
    let pool = parts::cpu_pool(&settings).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite3")).unwrap());
    store
        .save_backfill(&job("bf-called-off", BackfillState::Cancelled))
        .await
        .unwrap();
    store
        .save_backfill(&job("bf-going", BackfillState::Running))
        .await
        .unwrap();
    let (extract_tx, mut extract_rx, _) = local_queue::<ExtractJob>(64, LocalRetry::default());
    let (detect_tx, detect_rx, dead) = local_queue::<DetectJob>(64, LocalRetry::default());
    let mut stage = parts::detector_stage(
        &settings,
        &detector,
        pool,
        StageAdapters {
            source: Arc::new(photos),
            store: store.clone(),
            downstream: Downstream::Queue(Arc::new(extract_tx)),
        },
        Events::new(),
    );
    stage.cancelled = Some(Arc::new(CancelledBackfills::new(
        store.clone(),
        Duration::from_secs(60),
    )));

    let jobs = vec![
        DetectJob::new(ImageId(1), 0).in_backfill("bf-called-off"),
        DetectJob::new(ImageId(2), 0).in_backfill("bf-called-off"),
        DetectJob::new(ImageId(3), 0).in_backfill("bf-going"),
        DetectJob::new(ImageId(4), 0),
    ];
    detect_tx.publish(&jobs).await.unwrap();
    drop(detect_tx);
    let (_trigger, shutdown) = shutdown_pair();
    common::until_the_queue_ends(Arc::new(stage).run(detect_rx, shutdown)).await;

    assert!(dead.snapshot().is_empty(), "{:?}", dead.snapshot());
    let mut handed_on = Vec::new();
    while let Ok(Some(Ok(d))) =
        tokio::time::timeout(Duration::from_millis(200), extract_rx.next()).await
    {
        handed_on.push(d.job.image_id.0);
    }
    handed_on.sort();
    assert_eq!(handed_on, vec![3, 4]);
    for i in 1..=4 {
        let stored = store
            .detection(ImageId(i), &detector.version)
            .await
            .unwrap();
        assert_eq!(stored.is_some(), i >= 3, "image {i}");
        assert!(store.failures(ImageId(i)).await.unwrap().is_empty());
    }
}
