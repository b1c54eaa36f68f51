#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The real binary, killed with SIGKILL in the middle of a backfill and started again.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;

use common::{QueueCleanup, TOKEN, WAIT, drain, http, unique_prefix, wait_until};
use imgfeat_amqp::{AmqpConfig, WorkQueue};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const CHUNK: u64 = 100;
const LAST_ID: u64 = 6_000;

async fn start(prefix: &str, store: &std::path::Path) -> (Child, SocketAddr) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_imgfeat-ingest"))
        .env("IMGFEAT_AMQP__PREFIX", prefix)
        .env("IMGFEAT_STORE__PATH", store)
        .env("IMGFEAT_HTTP__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_TELEMETRY__LISTEN", "127.0.0.1:0")
        .env("IMGFEAT_HTTP__TOKEN", TOKEN)
        .env("IMGFEAT_BACKFILL__CHUNK_SIZE", CHUNK.to_string())
        .env("IMGFEAT_BACKFILL__RATE_PER_SEC", "2000")
        .env("IMGFEAT_UPLOADS__ENABLED", "false")
        .env("IMGFEAT_SHUTDOWN_GRACE_MS", "5000")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .unwrap()
        .unwrap()
        .expect("the binary prints its address");
    let addr = line.strip_prefix("listening on ").unwrap().parse().unwrap();
    (child, addr)
}

async fn progress(addr: SocketAddr, job: &str) -> serde_json::Value {
    http(addr, "GET", &format!("/v1/backfill/{job}"), None)
        .await
        .1
}

#[tokio::test]
async fn a_killed_ingest_resumes_its_backfill_without_loss_or_many_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite");
    let prefix = unique_prefix("kill");
    let amqp = AmqpConfig {
        prefix: prefix.clone(),
        ..AmqpConfig::default()
    };
    let _cleanup = QueueCleanup(amqp.clone());

    let (mut first, addr) = start(&prefix, &store).await;
    wait_until(|| async { http(addr, "GET", "/readyz", None).await.0 == 200 }).await;
    let body = format!(r#"{{"from":1,"to":{LAST_ID}}}"#);
    let (status, reply) = http(addr, "POST", "/v1/backfill", Some(&body)).await;
    assert_eq!(status, 202, "{reply}");
    let job = reply["job"].as_str().unwrap().to_owned();

    wait_until(|| async { progress(addr, &job).await["published"].as_u64().unwrap() >= 1_500 })
        .await;
    first.kill().await.unwrap(); // SIGKILL: no chance to save anything
    let at_kill = drain(&amqp, WorkQueue::DetectBackfill).await;
    assert!((at_kill.len() as u64) < LAST_ID, "killed mid-range");

    let (mut second, addr) = start(&prefix, &store).await;
    wait_until(|| async { progress(addr, &job).await["state"] == "done" }).await;
    let done = progress(addr, &job).await;
    assert_eq!(done["done"], LAST_ID);

    let mut counts: HashMap<u64, u32> = HashMap::new();
    for j in at_kill
        .iter()
        .chain(&drain(&amqp, WorkQueue::DetectBackfill).await)
    {
        *counts.entry(j.image_id.0).or_default() += 1;
    }
    let missing: Vec<u64> = (1..=LAST_ID).filter(|i| !counts.contains_key(i)).collect();
    assert!(missing.is_empty(), "never published: {missing:?}");
    let duplicates: u64 = counts.values().map(|c| u64::from(c - 1)).sum();
    assert!(
        duplicates <= CHUNK,
        "{duplicates} duplicates, more than one chunk"
    );

    // SIGTERM: a clean exit within the grace period.
    let pid = second.id().unwrap().to_string();
    let term = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(term.success());
    let status = tokio::time::timeout(WAIT, second.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "exit status after SIGTERM: {status}");
}
