//! The fleet survives a broker restart mid-run (`rabbitmqctl stop_app` / `start_app`):
//! every image is coded, nothing is dead-lettered. Its own test binary, because the
//! restart disturbs everything else talking to the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_run_loses_nothing() {
    let fleet = Fleet::start("restart", 40).await;
    let mut detector = fleet.spawn_detector();
    fleet.post_ids(&(1..=40).collect::<Vec<_>>()).await;
    fleet
        .wait_until(Duration::from_secs(120), |s| s.codes >= 3)
        .await;
    {
        let _stopped = BrokerStopped::stop();
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let mid = fleet.snapshot().await;
    fleet
        .wait_until(Duration::from_secs(300), |s| s.codes == 40)
        .await;
    let done = fleet.snapshot().await;
    assert!(mid.codes < 40, "the restart happened mid-run: {mid:?}");
    assert_eq!(done.detections, 40, "{done:?}");
    assert_eq!(done.failures, 0, "{done:?}");
    assert_eq!(fleet.queue_messages("detect.dlq"), 0);
    assert_eq!(fleet.queue_messages("extract.dlq"), 0);
    detector.kill().unwrap();
    let _ = detector.wait();
    fleet.stop().await;
}
