//! `/v1/infer` answers, bit for bit, what `imgfeat index` stores for the same bytes: the
//! 13 fixture photos through the embedded index into a real SQLite store, then through a
//! real server, one by one and all in one multipart request (so they share batches).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imgfeat_core::ports::ResultStore;
use serde_json::{Value, json};

use common::*;

/// `v` as the server writes it: f32 scores and boxes keep their shortest f32 text.
fn as_sent<T: serde::Serialize>(v: &T) -> Value {
    serde_json::from_str(&serde_json::to_string(v).unwrap()).unwrap()
}

/// What the index stored for one photo, in the answer's terms.
fn expected(record: &imgfeat_core::DetectionRecord, code: &imgfeat_core::BinaryCode) -> Value {
    let main = &record.main;
    let detections: Vec<Value> = record
        .detections
        .iter()
        .map(|d| json!({"box": as_sent(&d.bbox), "label": d.label, "score": as_sent(&d.score)}))
        .collect();
    json!({
        "image": { "width": record.image_width, "height": record.image_height },
        "box": as_sent(&main.crop),
        "label": main.detection.as_ref().map(|d| d.label.clone()),
        "detection_box": as_sent(&main.detection.as_ref().map(|d| d.bbox)),
        "detections": detections,
        "code": code.to_hex(),
    })
}

fn got(result: &Value) -> Value {
    json!({
        "image": result["image"],
        "box": result["main_object"]["box"],
        "label": result["main_object"]["label"],
        "detection_box": result["main_object"]["detection_box"],
        "detections": result["detections"],
        "code": result["code"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_and_boxes_equal_those_the_index_stores() {
    let photos = photos();
    let dir = tempfile::tempdir().unwrap();
    let indexed = imgfeat_testkit::index_photos(&dir.path().join("store.sqlite3"), &photos).await;
    let (version, code_version) = (&indexed.detector_version, &indexed.code_version);
    let mut stored = Vec::new();
    for (id, code) in &indexed.images {
        let record = indexed
            .store
            .detection(*id, version)
            .await
            .unwrap()
            .unwrap();
        stored.push(expected(&record, code));
    }

    let server = start(settings(|_| {})).await;
    let all = server.post_many("?detections=true", &photos).await;
    assert_eq!(all.status, 200, "{:?}", all.body);
    assert_eq!(all.body["code_version"], code_version.to_string());
    assert_eq!(all.body["model"], version.to_string());
    let results = all.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 13);
    let mut whole = 0;
    for ((photo, want), result) in photos.iter().zip(&stored).zip(results) {
        assert_eq!(
            &got(result),
            want,
            "{} in one shared request",
            photo.display()
        );
        whole += usize::from(result["main_object"]["whole_image"] == true);
    }
    assert!(whole < 13, "some photos have a detected main object");

    for (photo, want) in photos.iter().zip(&stored) {
        let one = server.post_photo("?detections=true", photo).await;
        assert_eq!(one.status, 200, "{:?}", one.body);
        assert_eq!(
            &got(&one.body["results"][0]),
            want,
            "{} alone",
            photo.display()
        );
    }
    let text = server.metrics().await;
    let batches = metric(
        &text,
        "imgfeat_serve_batch_size_count{model=\"ssd_mobilenetv2_oidv4_24cls@2\",stage=\"detect\"}",
    );
    let images = metric(
        &text,
        "imgfeat_serve_batch_size_sum{model=\"ssd_mobilenetv2_oidv4_24cls@2\",stage=\"detect\"}",
    );
    assert_eq!(images, 26.0, "{text}");
    assert!(
        batches < 26.0,
        "the multipart request's images shared batches"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_detectors_side_by_side_each_answers_its_own_version() {
    let server = start(settings(|s| {
        s.serve.detectors = vec![
            "ssd_mobilenetv2_oidv4_24cls.toml".into(),
            "nanodet_m_416_coco.toml".into(),
        ];
    }))
    .await;
    let photo = &photos()[0];
    let ssd = server.post_photo("", photo).await;
    let nano = server.post_photo("?model=nanodet_m_416_coco", photo).await;
    assert_eq!(ssd.status, 200, "{:?}", ssd.body);
    assert_eq!(nano.status, 200, "{:?}", nano.body);
    assert!(
        ssd.body["model"]
            .as_str()
            .unwrap()
            .starts_with("ssd_mobilenetv2")
    );
    assert!(
        nano.body["model"]
            .as_str()
            .unwrap()
            .starts_with("nanodet_m_416_coco")
    );
    assert!(
        nano.body["code_version"]
            .as_str()
            .unwrap()
            .starts_with("nanodet")
    );
    let by_version = server
        .post_photo(
            &format!("?model={}", nano.body["model"].as_str().unwrap()),
            photo,
        )
        .await;
    assert_eq!(
        by_version.body["results"][0]["code"],
        nano.body["results"][0]["code"]
    );
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            "imgfeat_serve_inferred_images_total{model=\"nanodet_m_416_coco@2\",stage=\"detect\"}"
        ),
        2.0
    );
    server.stop().await;
}

/// Serve decodes and crops through the same recipe as `index`: with shrink-on-load and
/// the crop read again at the extractor's scale, it answers under the `.shrink.region`
/// version with that version's Python reference codes
/// (fixtures/golden_codes_shrink_region.json), for the two photos read again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_crop_read_again_answers_its_own_versions_reference() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures");
    let golden: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("golden_codes_shrink_region.json")).unwrap(),
    )
    .unwrap();
    let server = start(settings(|s| {
        s.pipeline.decode.shrink_on_load = true;
        s.pipeline.decode.crop_at_extractor_scale = true;
    }))
    .await;
    for photo in [
        fixtures.join("photos/darknet_kite.jpg"),
        fixtures.join("imaging/draft/large.jpg"),
    ] {
        let name = photo.file_name().unwrap().to_str().unwrap().to_owned();
        let answer = server.post_photo("", &photo).await;
        assert_eq!(answer.status, 200, "{:?}", answer.body);
        assert_eq!(
            answer.body["model"],
            "ssd_mobilenetv2_oidv4_24cls@2.shrink.region"
        );
        assert_eq!(
            answer.body["results"][0]["code"], golden["photos"][&name]["code"],
            "{name}"
        );
    }
    server.stop().await;
}
