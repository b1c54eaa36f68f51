//! A detector's metrics and probes in a real fleet run: the counters and histograms move
//! by exactly what the run did, and /readyz turns unready while the image folder or the
//! broker is away and ready again when it returns. Own test binary: it stops the broker.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_the_run_and_readiness_follows_the_source_and_broker() {
    let fleet = Fleet::start("metrics", 13).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{listen}");
    let _detector = fleet.spawn_detector_with(&[("IMGFEAT_TELEMETRY__LISTEN", &listen)]);
    wait_status(&format!("{base}/readyz"), 200, Duration::from_secs(60)).await;
    let (status, _) = get(&format!("{base}/healthz")).await;
    assert_eq!(status, 200);

    fleet.post_ids(&(1..=13).collect::<Vec<_>>()).await;
    fleet
        .wait_until(Duration::from_secs(120), |s| s.codes == 13)
        .await;
    let (_, m) = get(&format!("{base}/metrics")).await;
    let ok = sample(
        &m,
        r#"imgfeat_images_total{outcome="ok",reason="none",stage="detect"}"#,
    );
    assert_eq!(ok, 13.0, "{m}");
    // Batches are labelled by the stage's model version, as serve's are.
    let detect = r#"{model="ssd_mobilenetv2_oidv4_24cls@2",stage="detect"}"#;
    let batches = sample(&m, &format!("imgfeat_batch_size_count{detect}"));
    assert!((2.0..=13.0).contains(&batches), "batches: {batches}");
    assert_eq!(sample(&m, &format!("imgfeat_batch_size_sum{detect}")), 13.0);
    assert_eq!(
        sample(
            &m,
            r#"imgfeat_phase_seconds_count{phase="inference",stage="detect"}"#
        ),
        batches,
        "one inference per batch"
    );
    assert_eq!(
        sample(
            &m,
            r#"imgfeat_phase_seconds_count{phase="decode",stage="detect"}"#
        ),
        13.0
    );
    assert_eq!(
        sample(&m, r#"imgfeat_end_to_end_seconds_count{stage="detect"}"#),
        13.0
    );
    assert_eq!(sample(&m, r#"imgfeat_in_flight{stage="detect"}"#), 0.0);
    assert!(
        m.contains(
            r#"imgfeat_model_info{name="ssd_mobilenetv2_oidv4_24cls",stage="detect",version="2"} 1"#
        ),
        "{m}"
    );

    // The source's check came with the source: the image folder gone (a lost mount)
    // turns the detector unready, and back.
    let images = fleet.dir.path().join("images");
    let moved = fleet.dir.path().join("images-away");
    std::fs::rename(&images, &moved).unwrap();
    let body = wait_status(&format!("{base}/readyz"), 503, Duration::from_secs(10)).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["checks"]["broker"], "ok", "{body}");
    assert!(
        json["checks"]["source"]
            .as_str()
            .unwrap()
            .contains("images"),
        "{body}"
    );
    std::fs::rename(&moved, &images).unwrap();
    wait_status(&format!("{base}/readyz"), 200, Duration::from_secs(10)).await;

    {
        let _stopped = BrokerStopped::stop();
        let body = wait_status(&format!("{base}/readyz"), 503, Duration::from_secs(60)).await;
        assert!(body.contains("broker"), "{body}");
    }
    wait_status(&format!("{base}/readyz"), 200, Duration::from_secs(120)).await;
    fleet.stop().await;
}
