#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Backfill publishing respects the broker, on the real RabbitMQ: with no workers the
//! backfill queue stays near `backfill.high_water` whatever the job's size, the job
//! says it is waiting, and consuming the queue lets it go on.

mod common;

use std::time::{Duration, Instant};

use common::{Service, WAIT, depth, http, take, test_settings, wait_until};
use imgfeat_amqp::WorkQueue;
use serde_json::Value;

async fn job_state(svc: &Service, job: &str) -> Value {
    let (status, body) = http(svc.addr, "GET", &format!("/v1/backfill/{job}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_backfill_keeps_the_queue_near_high_water() {
    const HIGH: u64 = 2_000;
    const CHUNK: u64 = 100;
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("backpressure", dir.path());
    settings.backfill.high_water = HIGH;
    settings.backfill.low_water = 1_000;
    settings.backfill.chunk_size = CHUNK;
    settings.backfill.rate_per_sec = 0;
    let amqp = settings.amqp.clone();
    let svc = Service::start(settings).await;
    svc.ready().await;

    let (status, body) = http(
        svc.addr,
        "POST",
        "/v1/backfill",
        Some(r#"{"from":1,"to":300000}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let job = body["job"].as_str().unwrap().to_owned();
    wait_until(|| async { job_state(&svc, &job).await["activity"] == "waiting" }).await;

    // Unlimited rate, no workers: the queue holds about high_water, not 300 000.
    let mut deepest = 0;
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        deepest = deepest.max(depth(&amqp, WorkQueue::DetectBackfill).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(deepest >= HIGH - CHUNK, "filled to {deepest}");
    assert!(deepest <= HIGH + CHUNK, "overshot to {deepest}");
    let waiting = job_state(&svc, &job).await;
    assert_eq!(waiting["state"], "running", "{waiting}");
    let published = waiting["published"].as_u64().unwrap();
    assert!(published <= HIGH + CHUNK, "{waiting}");

    // A worker takes 1 500: below low water, publishing resumes up to high water again,
    // and the measured consumption gives the job an ETA.
    assert_eq!(
        take(&amqp, WorkQueue::DetectBackfill, 1_500).await.len(),
        1_500
    );
    wait_until(|| async {
        job_state(&svc, &job).await["published"].as_u64().unwrap() >= published + 1_000
    })
    .await;
    wait_until(|| async { job_state(&svc, &job).await["activity"] == "waiting" }).await;
    let depth_now = depth(&amqp, WorkQueue::DetectBackfill).await;
    assert!(depth_now <= HIGH + CHUNK, "{depth_now}");
    let deadline = Instant::now() + WAIT;
    let eta = loop {
        let s = job_state(&svc, &job).await;
        if let Some(eta) = s["eta_seconds"].as_f64() {
            assert!(s["consumed_per_sec"].as_f64().unwrap() > 0.0, "{s}");
            break eta;
        }
        assert!(Instant::now() < deadline, "no ETA: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(eta > 0.0);

    let (status, body) = http(svc.addr, "DELETE", &format!("/v1/backfill/{job}"), None).await;
    assert_eq!(status, 202, "{body}");
    svc.stop().await;
}
