//! The extractor stage on the real broker announces each code only once it is stored,
//! and a job whose announcement fails is not acked: it comes back through the retry
//! queue and is announced when the exchange is there again.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use imgfeat_amqp::{
    AmqpConfig, AmqpConnection, AmqpConsumer, AmqpPublisher, EventExchange, EventFollower,
    WorkQueue,
};
use imgfeat_core::message::{CodeStored, CropPixels, ExtractJob};
use imgfeat_core::ports::{JobPublisher, ResultStore};
use imgfeat_core::{ImageId, ModelVersion};
use imgfeat_imaging::DecodeLimits;
use imgfeat_pipeline::parts;
use imgfeat_pipeline::{Event, EventSink, Events, Outcome, PipelineSettings, shutdown_pair};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the jobs sent back for another attempt.
#[derive(Default)]
struct Retries(AtomicUsize);

impl EventSink for Retries {
    fn emit(&self, event: &Event) {
        if let Event::Completed {
            outcome: Outcome::Retried(_),
            ..
        } = event
        {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}
use imgfeat_store::SqliteStore;

/// Extract jobs carrying the top-left `size` of each fixture photo as raw pixels.
fn jobs(size: (u32, u32), detector: &ModelVersion) -> Vec<ExtractJob> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/photos");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    let (w, h) = size;
    paths
        .iter()
        .take(4)
        .enumerate()
        .map(|(i, p)| {
            let photo =
                imgfeat_imaging::decode_rgb(&std::fs::read(p).unwrap(), &DecodeLimits::default())
                    .unwrap();
            let mut rgb = Vec::with_capacity((w * h * 3) as usize);
            for y in 0..h {
                for x in 0..w {
                    let px = photo.get_pixel(x.min(photo.width() - 1), y.min(photo.height() - 1));
                    rgb.extend_from_slice(&px.0);
                }
            }
            ExtractJob {
                image_id: ImageId(1 + i as u64),
                detector_version: detector.clone(),
                enqueued_at_ms: 0,
                crop_jpeg: None,
                crop: Some(CropPixels::new(w, h, rgb).unwrap()),
            }
        })
        .collect()
}

async fn next_event(events: &mut EventFollower<CodeStored>) -> CodeStored {
    let got = tokio::time::timeout(Duration::from_secs(120), events.next())
        .await
        .expect("no CodeStored within two minutes")
        .unwrap();
    let event = got.event.clone();
    got.ack().await.unwrap();
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_are_announced_after_they_are_stored_and_failed_announcements_retry() {
    let settings = PipelineSettings::default();
    let amqp = AmqpConfig {
        prefix: imgfeat_amqp::unique_prefix("announce"),
        retry_delays_ms: vec![500],
        publish_timeout_ms: 1_000,
        max_attempts: 50,
        ..AmqpConfig::default()
    };
    let conn = AmqpConnection::connect(amqp.clone()).await.unwrap();
    let mut events = EventFollower::<CodeStored>::new(&conn, EventExchange::CodeStored, "test");
    events.bind().await.unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&dir.path().join("store.sqlite3")).unwrap());
    let extractor = parts::load_extractor(&settings).unwrap();
    let retries = Arc::new(Retries::default());
    let detector = ModelVersion::new("ssd@1").unwrap();
    let version = extractor.version.after(&detector).unwrap();
    let stage = parts::extractor_stage(
        &settings,
        &extractor,
        parts::cpu_pool(&settings).unwrap(),
        store.clone(),
        Events::new().with(retries.clone()),
    )
    .announcing(Arc::new(AmqpPublisher::<CodeStored>::fanout(
        &conn,
        EventExchange::CodeStored,
    )));
    let consumer = AmqpConsumer::<ExtractJob>::new(&conn, &[WorkQueue::Extract]);
    let (trigger, shutdown) = shutdown_pair();
    let worker = tokio::spawn(Arc::new(stage).run(consumer, shutdown));
    let jobs = jobs(extractor.input_size, &detector);
    let publisher = AmqpPublisher::<ExtractJob>::new(&conn, WorkQueue::Extract);

    // Every event names a code the store already holds, equal to the stored one.
    publisher.publish(&jobs[..2]).await.unwrap();
    for _ in 0..2 {
        let e = next_event(&mut events).await;
        let stored = store.code(e.image_id, &version).await.unwrap();
        assert_eq!(stored.map(|r| r.code), Some(e.code), "image {}", e.image_id);
        assert_eq!(e.code_version, version);
    }

    // No exchange: the announcement fails, the job is not acked but retried.
    let channel = conn.channel().await.unwrap();
    let exchange = conn.topology().exchange(EventExchange::CodeStored);
    channel
        .exchange_delete(exchange.as_str().into(), Default::default())
        .await
        .unwrap();
    publisher.publish(&jobs[2..3]).await.unwrap();
    let failed = jobs[2].image_id;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while retries.0.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the job whose announcement failed was never sent back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        store.failures(failed).await.unwrap().is_empty(),
        "a retried job records no final failure"
    );
    // Back again (the follower's queue lost its binding with the exchange: re-bind).
    conn.topology()
        .declare(&channel_connection(&amqp).await)
        .await
        .unwrap();
    events.bind().await.unwrap();
    let e = next_event(&mut events).await;
    assert_eq!(
        e.image_id, failed,
        "the retried job is announced once the exchange is back"
    );

    trigger.trigger();
    worker.await.unwrap();
    events.stopper().stop();
    let topology = conn.topology().clone();
    for q in [
        topology.follower_queue(EventExchange::CodeStored, "test"),
        topology.follower_dlq(EventExchange::CodeStored, "test"),
    ] {
        channel
            .queue_delete(q.as_str().into(), Default::default())
            .await
            .unwrap();
    }
    topology.delete(&channel).await.unwrap();
    conn.close().await;
}

/// A fresh connection, to declare the topology again on (its declaration is per connect).
async fn channel_connection(amqp: &AmqpConfig) -> imgfeat_amqp::lapin::Connection {
    imgfeat_amqp::lapin::Connection::connect(&amqp.url, Default::default())
        .await
        .unwrap()
}
