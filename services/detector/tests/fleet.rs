//! The fleet against the real broker (127.0.0.1:5672): ingest (in-process, its HTTP
//! API on a real socket) -> detector (the real binary, a child process that the tests
//! kill) -> extractor (in-process) -> a SQLite store file shared by the processes.
//! Each test gets its own RabbitMQ vhost, deleted at the end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use imgfeat_core::ImageId;

/// Many times what the detector does between a poll seeing 6 detections and the kill,
/// so the kill lands mid-run however fast the machine; a multiple of the 13 photos.
const KILL9_IMAGES: u64 = 104;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_ids_are_coded_and_a_killed_detector_loses_nothing() {
    let _serial = serial().await;
    let n = KILL9_IMAGES as usize;
    let fleet = Fleet::start("kill9", KILL9_IMAGES).await;
    let ids: Vec<u64> = (1..=KILL9_IMAGES).collect();
    let mut detector = fleet.spawn_detector();
    fleet.post_ids(&ids).await;

    // Kill -9 once the detector has stored some detections but not all.
    fleet
        .wait_until(Duration::from_secs(120), |s| s.detections >= 6)
        .await;
    detector.kill().unwrap();
    detector.wait().unwrap();
    let after_kill = fleet.snapshot().await;
    assert!(after_kill.detections < n, "killed mid-run: {after_kill:?}");

    let mut second = fleet.spawn_detector();
    fleet
        .wait_until(Duration::from_secs(240), |s| s.codes == n)
        .await;
    fleet.assert_coded_once_each(n).await;
    // Codes of copies of one photo are equal: IDs i and i+13 are the same file.
    let a = fleet.code(ImageId(1)).await;
    let b = fleet.code(ImageId(14)).await;
    assert_eq!(a, b);
    // And they are the embedded pipeline's codes, bit for bit: across the broker the
    // extractor gets the same crop pixels as in one process.
    fleet.assert_embedded_codes().await;
    second.kill().unwrap();
    let _ = second.wait();
    fleet.stop().await;
}

/// A detector that extracts too (`extract_here`) hands each detect delivery on to its
/// own extractor: the message is acked only once the code is stored. Killed while
/// images are detected but not yet coded, it loses none of them: with the ack at
/// detection, the broker would have forgotten them and the run would end short.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_detector_that_extracts_acks_at_the_code_and_a_kill_loses_nothing() {
    let _serial = serial().await;
    let n = KILL9_IMAGES as usize;
    let fleet = Fleet::start("chain", KILL9_IMAGES).await;
    fleet
        .post_ids(&(1..=KILL9_IMAGES).collect::<Vec<_>>())
        .await;

    // The window between a detection and its code is a batch of the backbone, and a
    // poll of the store may see it close before the kill lands: kill again until one
    // kill has left images detected but not coded.
    let mut after_kill = Snapshot::default();
    for _ in 0..8 {
        let mut worker = fleet.spawn_detector_with(&[("IMGFEAT_WORKER__EXTRACT_HERE", "true")]);
        let before = after_kill.detections;
        fleet
            .wait_until(Duration::from_secs(120), |s| {
                s.detections >= before + 3 && s.detections > s.codes + 1
            })
            .await;
        worker.kill().unwrap();
        worker.wait().unwrap();
        after_kill = fleet.snapshot().await;
        if after_kill.detections > after_kill.codes {
            break;
        }
    }
    assert!(
        after_kill.detections > after_kill.codes,
        "no kill landed between detection and code: {after_kill:?}"
    );
    assert!(after_kill.codes < n, "killed mid-run: {after_kill:?}");

    let listen = format!("127.0.0.1:{}", free_port());
    let mut second = fleet.spawn_detector_with(&[
        ("IMGFEAT_WORKER__EXTRACT_HERE", "true"),
        ("IMGFEAT_TELEMETRY__LISTEN", listen.as_str()),
    ]);
    fleet
        .wait_until(Duration::from_secs(240), |s| s.codes == n)
        .await;
    fleet.assert_coded_once_each(n).await;
    // Its own extractor coded the rest, not the fleet's: the count is in its metrics.
    let (_, m) = get(&format!("http://{listen}/metrics")).await;
    let extracted = sample(
        &m,
        r#"imgfeat_images_total{outcome="ok",reason="none",stage="extract"}"#,
    );
    assert!(extracted as usize >= n - after_kill.codes, "{m}");
    // The same codes as through the extract queue and in one process.
    fleet.assert_embedded_codes().await;
    second.kill().unwrap();
    let _ = second.wait();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_and_images_are_dead_lettered_and_the_workers_keep_going() {
    let _serial = serial().await;
    let fleet = Fleet::start("poison", 13).await;
    std::fs::write(fleet.image_path(500), b"this is not an image").unwrap();
    let dog = std::fs::read(photos()[0].clone()).unwrap();
    std::fs::write(fleet.image_path(501), &dog[..dog.len() / 3]).unwrap();
    // 502 does not exist at all.
    let mut detector = fleet.spawn_detector();
    fleet.publish_raw("detect", b"{not json").await;
    fleet
        .publish_raw("detect", br#"{"v":99,"image_id":1,"enqueued_at_ms":0}"#)
        .await;
    // A version 1 job whose `model` names this fleet's code version (older API and
    // backfill producers) is served; a job pinning another code version is refused.
    let v1 = format!(
        r#"{{"v":1,"image_id":1,"enqueued_at_ms":0,"model":"{}"}}"#,
        fleet.code_version
    );
    fleet.publish_raw("detect", v1.as_bytes()).await;
    fleet
        .publish_raw(
            "detect",
            br#"{"v":2,"image_id":503,"enqueued_at_ms":0,"code_version":"other@1+bb@1+head@1"}"#,
        )
        .await;
    fleet.post_ids(&[500, 501, 502]).await;
    fleet.post_ids(&(1..=13).collect::<Vec<_>>()).await;

    fleet
        .wait_until(Duration::from_secs(180), |s| {
            s.codes == 13 && s.failures == 4
        })
        .await;
    let dead = fleet.dead_letters("detect").await;
    assert_eq!(dead.len(), 6, "{dead:#?}");
    let reasons: Vec<String> = dead.iter().map(|d| d.1.clone()).collect();
    for needle in [
        "malformed",
        "version 99",
        "not_found",
        "corrupt",
        "unsupported_format",
        "code version other@1+bb@1+head@1",
    ] {
        assert!(
            reasons.iter().any(|r| r.contains(needle)),
            "no dead letter mentions {needle}: {reasons:#?}"
        );
    }
    let kinds = fleet.failure_kinds().await;
    assert_eq!(
        kinds,
        vec![
            (500, "unsupported_format".to_string()),
            (501, "corrupt".to_string()),
            (502, "not_found".to_string()),
            (503, "malformed_message".to_string())
        ]
    );
    detector.kill().unwrap();
    let _ = detector.wait();
    // The detector's stderr went to a file: its warnings are there, without colour codes.
    let logs = fleet.logs();
    assert!(logs.contains("WARN"), "{logs}");
    assert!(
        !logs.contains('\u{1b}'),
        "colour codes in a log file:\n{logs}"
    );
    fleet.stop().await;
}

#[test]
fn the_binary_answers_its_version() {
    imgfeat_testkit::version_of(env!("CARGO_BIN_EXE_imgfeat-detector"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_upload_overtakes_ten_thousand_queued_backfill_ids() {
    let _serial = serial().await;
    let fleet = Fleet::start("priority", 13).await;
    // 10 000 backfill IDs with no image behind them: each is a quick not_found.
    let job = fleet.post_backfill(100_000, 109_999).await;
    fleet
        .wait_until_queue("detect.backfill", Duration::from_secs(60), |n| n >= 10_000)
        .await;
    let mut detector = fleet.spawn_detector();
    fleet.post_ids(&[7]).await;
    fleet
        .wait_until(Duration::from_secs(120), |s| s.codes == 1)
        .await;
    let waiting = fleet.queue_messages("detect.backfill");
    assert!(
        waiting > 5_000,
        "the live upload was coded while {waiting} backfill IDs still waited"
    );
    let progress = fleet.backfill_state(&job).await;
    assert_eq!(progress, "done", "the backfill itself was fully published");
    detector.kill().unwrap();
    let _ = detector.wait();
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_batch_in_hand_and_exits_cleanly() {
    let _serial = serial().await;
    let fleet = Fleet::start("sigterm", 80).await;
    let listen = format!("127.0.0.1:{}", free_port());
    // The fleet's settings file gives a grace period (5 s) far longer than a batch, so
    // a clean exit has no excuse to drop one. (Top-level settings such as
    // shutdown_grace_ms have no IMGFEAT_* variable: variables name `section__key`.)
    let mut detector = fleet.spawn_detector_with(&[("IMGFEAT_TELEMETRY__LISTEN", listen.as_str())]);
    fleet.post_ids(&(1..=80).collect::<Vec<_>>()).await;
    fleet
        .wait_until(Duration::from_secs(120), |s| s.detections >= 3)
        .await;
    // What the detector holds unsettled, read just before the signal: the guarantee is
    // that every one of them is stored before it exits. A detector that exits at once
    // stores none of them, so the count after exit falls short. Both numbers come from
    // one scrape: an image leaves `in_flight` before it counts as done, so no image is
    // in both (one between the two is in neither, which only lowers the bar). Counting
    // stored rows instead would count twice an image stored but not yet acked.
    let (held, done_before) = loop {
        let (_, metrics) = get(&format!("http://{listen}/metrics")).await;
        let held = sample(&metrics, r#"imgfeat_in_flight{stage="detect"}"#) as usize;
        let done = sample(
            &metrics,
            r#"imgfeat_images_total{outcome="ok",reason="none",stage="detect"}"#,
        ) as usize;
        if held >= 2 {
            break (held, done);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let pid = detector.id().to_string();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    let exit = loop {
        if let Some(exit) = detector.try_wait().unwrap() {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the detector did not exit within 90 s of SIGTERM:\n{}",
            fleet.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        exit.success(),
        "clean exit after SIGTERM:\n{}",
        fleet.logs()
    );
    let at_exit = fleet.snapshot().await;
    assert!(
        at_exit.detections >= done_before + held,
        "the {held} images held at SIGTERM were not all stored before exit \
         ({done_before} done before, {} stored after):\n{}",
        at_exit.detections,
        fleet.logs()
    );
    let after = fleet.snapshot().await;
    assert!(after.detections < 80, "stopped mid-run: {after:?}");
    // Whatever it took and did not finish went back to the queue: a new detector
    // completes the run without a single failure.
    let mut second = fleet.spawn_detector();
    fleet
        .wait_until(Duration::from_secs(240), |s| s.codes == 80)
        .await;
    let done = fleet.snapshot().await;
    assert_eq!((done.detections, done.failures), (80, 0), "{done:?}");
    second.kill().unwrap();
    let _ = second.wait();
    fleet.stop().await;
}
