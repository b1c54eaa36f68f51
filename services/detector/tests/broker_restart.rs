//! The fleet survives a broker restart mid-run (`rabbitmqctl stop_app` / `start_app`):
//! every image is coded, nothing is dead-lettered. Its own test binary, because the
//! restart disturbs everything else talking to the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

/// Posted before the restart: far more than the fleet codes while `rabbitmqctl` starts
/// and stops the app (a few seconds at most), so the restart lands mid-run on any machine.
const BEFORE: u64 = 200;
/// Posted after the restart: only reconnected workers can code these.
const AFTER: u64 = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_run_loses_nothing() {
    let total = BEFORE + AFTER;
    let fleet = Fleet::start("restart", total).await;
    let mut detector = fleet.spawn_detector();
    fleet.post_ids(&(1..=BEFORE).collect::<Vec<_>>()).await;
    fleet
        .wait_until(Duration::from_secs(120), |s| s.codes >= 1)
        .await;
    let mid = {
        let _stopped = BrokerStopped::stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
        // While the broker is down nothing new is delivered; what workers finish
        // from their prefetch is stored but cannot be acked.
        fleet.snapshot().await
    };
    assert!(
        mid.codes < BEFORE as usize,
        "the broker stopped mid-run: {mid:?}"
    );
    fleet.wait_ready(Duration::from_secs(60)).await;
    fleet
        .post_ids(&(BEFORE + 1..=total).collect::<Vec<_>>())
        .await;
    fleet
        .wait_until(Duration::from_secs(300), |s| s.codes == total as usize)
        .await;
    let done = fleet.snapshot().await;
    assert_eq!(done.detections, total as usize, "{done:?}");
    assert_eq!(done.failures, 0, "{done:?}");
    assert_eq!(fleet.queue_messages("detect.dlq"), 0);
    assert_eq!(fleet.queue_messages("extract.dlq"), 0);
    detector.kill().unwrap();
    let _ = detector.wait();
    fleet.stop().await;
}
