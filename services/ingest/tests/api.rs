#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The ingest service in-process, against the real broker and a SQLite store in a tempdir.

mod common;

use std::collections::HashMap;

use common::{Service, WAIT, drain, http, publish_raw, test_settings, wait_until};
use imgfeat_amqp::{AmqpConnection, AmqpConsumer, WorkQueue, dlq};
use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::{JobConsumer, ResultStore};
use imgfeat_core::{BinaryCode, CodeRecord, ImageId, ModelVersion};
use imgfeat_store::SqliteStore;
use serde_json::Value;

#[tokio::test]
async fn posted_ids_land_in_the_live_queue() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings("post", dir.path());
    let amqp = settings.amqp.clone();
    let svc = Service::start(settings).await;
    svc.ready().await;

    let (status, body) = http(svc.addr, "POST", "/v1/images", Some(r#"{"ids":[3,1,2]}"#)).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["published"], 3);

    let mut ids: Vec<u64> = drain(&amqp, WorkQueue::Detect)
        .await
        .iter()
        .map(|j| j.image_id.0)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 2, 3]);
    assert!(drain(&amqp, WorkQueue::DetectBackfill).await.is_empty());
    svc.stop().await;
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("invalid", dir.path());
    settings.limits.max_ids_per_request = 5;
    settings.limits.max_backfill_range = 1000;
    let svc = Service::start(settings).await;
    svc.ready().await;

    let cases: [(&str, &str, &str); 7] = [
        ("/v1/images", r#"{"ids":[]}"#, "empty"),
        (
            "/v1/images",
            r#"{"ids":[1,2,3,4,5,6]}"#,
            "over the limit of 5",
        ),
        ("/v1/images", r#"{"ids":"x"}"#, "invalid request body"),
        ("/v1/images", "not json", "invalid request body"),
        ("/v1/backfill", r#"{"from":10,"to":5}"#, "greater than"),
        (
            "/v1/backfill",
            r#"{"from":1,"to":1000000}"#,
            "over the limit of 1000",
        ),
        (
            "/v1/backfill",
            r#"{"from":1,"to":5,"skip_done":true}"#,
            "needs a model",
        ),
    ];
    for (path, body, expected) in cases {
        let (status, reply) = http(svc.addr, "POST", path, Some(body)).await;
        assert_eq!(status, 400, "{path} {body}: {reply}");
        let error = reply["error"].as_str().unwrap();
        assert!(
            error.contains(expected),
            "{body}: {error:?} lacks {expected:?}"
        );
    }
    let (status, reply) = http(svc.addr, "GET", "/v1/backfill/nope", None).await;
    assert_eq!(status, 404);
    assert!(reply["error"].as_str().unwrap().contains("nope"));
    let (status, _) = http(svc.addr, "DELETE", "/v1/backfill/nope", None).await;
    assert_eq!(status, 404);
    svc.stop().await;
}

async fn job_state(svc: &Service, job: &str) -> Value {
    let (status, body) = http(svc.addr, "GET", &format!("/v1/backfill/{job}"), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

#[tokio::test]
async fn a_backfill_publishes_every_id_once_and_reports_done() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings("backfill", dir.path()); // chunks of 100, no rate limit
    let amqp = settings.amqp.clone();
    let svc = Service::start(settings).await;
    svc.ready().await;

    let (status, body) = http(
        svc.addr,
        "POST",
        "/v1/backfill",
        Some(r#"{"from":1,"to":1050,"model":"ssd@1"}"#),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["total"], 1050);
    let job = body["job"].as_str().unwrap().to_owned();
    wait_until(|| async { job_state(&svc, &job).await["state"] == "done" }).await;
    let done = job_state(&svc, &job).await;
    assert_eq!(done["published"], 1050);
    assert_eq!(done["done"], 1050);
    assert_eq!(done["eta_seconds"], 0.0);

    let jobs = drain(&amqp, WorkQueue::DetectBackfill).await;
    let mut ids: Vec<u64> = jobs.iter().map(|j| j.image_id.0).collect();
    ids.sort();
    assert_eq!(ids, (1..=1050).collect::<Vec<_>>());
    // The request's model only decides what counts as done; jobs carry none. They
    // carry their backfill job, so detectors can skip a cancelled one's.
    assert!(
        jobs.iter()
            .all(|j| j.detector.is_none() && j.code_version.is_none())
    );
    assert!(
        jobs.iter()
            .all(|j| j.backfill.as_deref() == Some(job.as_str()))
    );
    assert!(
        drain(&amqp, WorkQueue::Detect).await.is_empty(),
        "backfill stays off the live queue"
    );
    svc.stop().await;
}

#[tokio::test]
async fn delete_cancels_a_running_backfill() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("cancel", dir.path());
    settings.backfill.rate_per_sec = 500;
    settings.backfill.chunk_size = 50;
    let amqp = settings.amqp.clone();
    let svc = Service::start(settings).await;
    svc.ready().await;

    let (_, body) = http(
        svc.addr,
        "POST",
        "/v1/backfill",
        Some(r#"{"from":1,"to":1000000}"#),
    )
    .await;
    let job = body["job"].as_str().unwrap().to_owned();
    wait_until(|| async { job_state(&svc, &job).await["published"].as_u64().unwrap() >= 100 })
        .await;
    let running = job_state(&svc, &job).await;
    assert!(running["rate_per_sec"].as_f64().unwrap() > 0.0);
    assert_eq!(running["activity"], "publishing", "{running}");

    let (status, body) = http(svc.addr, "DELETE", &format!("/v1/backfill/{job}"), None).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["state"], "cancelled");
    let after = job_state(&svc, &job).await;
    assert_eq!(after["state"], "cancelled");
    let published = after["published"].as_u64().unwrap();
    assert!(published < 1_000_000);
    // Nothing is published after the cancel returned.
    assert_eq!(
        drain(&amqp, WorkQueue::DetectBackfill).await.len() as u64,
        published
    );
    svc.stop().await;
}

#[tokio::test]
async fn skip_done_leaves_out_ids_that_have_a_code() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings("skip", dir.path());
    let amqp = settings.amqp.clone();
    let model = ModelVersion::new("ssd@1+effnet@1").unwrap();
    {
        let store = SqliteStore::open(&settings.store.path).unwrap();
        let code = BinaryCode::from_bytes(64, vec![0; 8]).unwrap();
        let records: Vec<CodeRecord> = [2, 4]
            .map(|i| CodeRecord {
                image_id: ImageId(i),
                model_version: model.clone(),
                code: code.clone(),
            })
            .into();
        store.put_codes(&records).await.unwrap();
    }
    let svc = Service::start(settings).await;
    svc.ready().await;

    let body = format!(r#"{{"from":1,"to":5,"model":"{model}","skip_done":true}}"#);
    let (status, reply) = http(svc.addr, "POST", "/v1/backfill", Some(&body)).await;
    assert_eq!(status, 202, "{reply}");
    let job = reply["job"].as_str().unwrap().to_owned();
    wait_until(|| async { job_state(&svc, &job).await["state"] == "done" }).await;
    let done = job_state(&svc, &job).await;
    assert_eq!(
        (done["published"].as_u64(), done["skipped"].as_u64()),
        (Some(3), Some(2))
    );
    let mut ids: Vec<u64> = drain(&amqp, WorkQueue::DetectBackfill)
        .await
        .iter()
        .map(|j| j.image_id.0)
        .collect();
    ids.sort();
    assert_eq!(ids, vec![1, 3, 5]);

    // The same on the live path.
    let body = format!(r#"{{"ids":[1,2,3],"model":"{model}","skip_done":true}}"#);
    let (status, reply) = http(svc.addr, "POST", "/v1/images", Some(&body)).await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(
        (reply["published"].as_u64(), reply["skipped"].as_u64()),
        (Some(2), Some(1))
    );
    svc.stop().await;
}

#[tokio::test]
async fn upload_events_are_forwarded_to_the_live_queue() {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings("uploads", dir.path());
    let amqp = settings.amqp.clone();
    let svc = Service::start(settings).await;
    svc.ready().await;

    publish_raw(
        &amqp,
        WorkQueue::Uploads,
        &[
            b"{oops",
            br#"{"v":1,"image_id":77,"uploaded_at_ms":1234}"#,
            br#"{"v":1,"image_id":78}"#,
        ],
    )
    .await;
    let conn = AmqpConnection::connect(amqp.clone()).await.unwrap();
    let mut live = AmqpConsumer::<DetectJob>::new(&conn, &[WorkQueue::Detect]);
    let mut got = HashMap::new();
    while got.len() < 2 {
        let d = tokio::time::timeout(WAIT, live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        got.insert(d.job.image_id.0, d.job.enqueued_at_ms);
        d.handle.ack().await.unwrap();
    }
    assert_eq!(got[&77], 1234, "latency counts from the upload");
    assert!(got[&78] > 1234);
    live.close().await;

    // The malformed event came first and was parked with its reason.
    let (total, letters) = dlq::list(&conn, WorkQueue::Uploads, 10).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(letters[0].kind.as_deref(), Some("malformed_message"));
    conn.close().await;
    svc.stop().await;
}

#[tokio::test]
async fn new_files_in_the_watched_folder_become_live_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let images = tempfile::tempdir().unwrap();
    for name in ["11.jpg", "12.png", "notes.txt"] {
        std::fs::write(images.path().join(name), b"x").unwrap();
    }
    std::fs::create_dir(images.path().join("13")).unwrap();
    let mut settings = test_settings("watch", dir.path());
    settings.watch.dir = Some(images.path().to_path_buf());
    settings.watch.interval_ms = 50;
    settings.watch.publish_existing = true;
    let amqp = settings.amqp.clone();
    let svc = Service::start(settings).await;

    let conn = AmqpConnection::connect(amqp.clone()).await.unwrap();
    let mut live = AmqpConsumer::<DetectJob>::new(&conn, &[WorkQueue::Detect]);
    let mut next_id = async || {
        let d = tokio::time::timeout(WAIT, live.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        d.handle.ack().await.unwrap();
        d.job.image_id.0
    };
    let mut first = vec![next_id().await, next_id().await];
    first.sort();
    assert_eq!(first, vec![11, 12]);
    std::fs::write(images.path().join("14.webp"), b"x").unwrap();
    assert_eq!(next_id().await, 14, "only the new file, no repeats");
    live.close().await;
    conn.close().await;
    svc.stop().await;
}

#[tokio::test]
async fn a_missing_broker_answers_503_not_a_hang() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("nobroker", dir.path());
    settings.amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let svc = Service::start(settings).await;
    let (status, _) = http(svc.addr, "GET", "/healthz", None).await;
    assert_eq!(status, 200);
    let (status, body) = http(svc.addr, "GET", "/readyz", None).await;
    assert_eq!(
        (status, &body["ready"]),
        (503, &serde_json::json!(false)),
        "{body}"
    );
    assert_ne!(body["checks"]["broker"], "ok", "{body}");
    assert_eq!(body["checks"]["store"], "ok", "{body}");
    let (status, body) = http(svc.addr, "POST", "/v1/images", Some(r#"{"ids":[1]}"#)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"].as_str().unwrap().contains("broker"));
    svc.stop().await;
}

#[test]
fn the_binary_answers_its_version() {
    imgfeat_testkit::version_of(env!("CARGO_BIN_EXE_imgfeat-ingest"));
}
