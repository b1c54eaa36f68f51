//! Every answer of `/v1/infer` over real HTTP, against real models: each error status
//! with its `{error, reason}`, admission (429 for exactly the excess), deadlines (the
//! late image is dropped before the model runs), 503 while loading; and every answer
//! seen is checked against the OpenAPI file.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use imgfeat_infer::Engine;
use imgfeat_serve::api::{ApiState, routes};
use imgfeat_serve::metrics::ServeMetrics;

use common::*;

const DETECT: &str = "model=\"ssd_mobilenetv2_oidv4_24cls@2\",stage=\"detect\"";

fn reason(a: &Answer) -> &str {
    a.body["reason"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_error_has_its_status_and_reason_and_none_is_a_500() {
    let server = start(settings(|s| {
        // Just above the largest photo used here (darknet_kite, 1.42 MB), so the
        // oversized body below is small enough to be written whole before the server
        // answers 413 and closes (a larger one meets a broken pipe in the client).
        s.http.max_body_bytes = 1_500_000;
        // darknet_person is 0.27 megapixels, darknet_kite 1.2: the limit sits between.
        s.pipeline.decode.max_pixels = 500_000;
    }))
    .await;
    let photos = photos();
    let small = photos
        .iter()
        .find(|p| p.file_name().unwrap() == "darknet_person.jpg")
        .unwrap();
    let mut seen = Vec::new();

    let ok = server.post_photo("?crop=true&detections=true", small).await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    let r = &ok.body["results"][0];
    assert!(r["crop_jpeg"].as_str().unwrap().len() > 100);
    assert!(r["detections"].is_array());
    assert_eq!(r["bits"], 64);
    assert_eq!(r["code"].as_str().unwrap().len(), 16);
    seen.push(("/v1/infer", ok));

    let big = photos
        .iter()
        .find(|p| p.file_name().unwrap() == "darknet_kite.jpg")
        .unwrap();
    let cases: Vec<(&str, Answer, u16, &str)> = vec![
        (
            "over the byte limit",
            server.post_declaring("image/jpeg", 1_500_001).await,
            413,
            "too_large",
        ),
        (
            "not an image content type",
            server.post_raw("", "text/plain", b"hello".to_vec()).await,
            415,
            "unsupported_media_type",
        ),
        (
            "bytes of no image format",
            server
                .post_raw(
                    "",
                    "application/octet-stream",
                    b"%PDF-1.4 not an image".to_vec(),
                )
                .await,
            415,
            "unsupported_image",
        ),
        (
            "a truncated JPEG",
            server
                .post_raw(
                    "",
                    "image/jpeg",
                    std::fs::read(small).unwrap()[..4000].to_vec(),
                )
                .await,
            422,
            "undecodable",
        ),
        (
            "an empty body",
            server.post_raw("", "image/jpeg", Vec::new()).await,
            422,
            "undecodable",
        ),
        (
            "more pixels than allowed, from the header",
            server.post_photo("", big).await,
            422,
            "too_many_pixels",
        ),
        (
            "an unknown model version",
            server.post_photo("?model=yolo@9", small).await,
            404,
            "unknown_model",
        ),
        (
            "an unknown parameter",
            server.post_photo("?colour=red", small).await,
            400,
            "bad_request",
        ),
        (
            "neighbours without a search service (serve.search_url)",
            server.post_photo("?neighbours=3", small).await,
            400,
            "search_not_configured",
        ),
    ];
    for (what, answer, status, why) in cases {
        assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
        assert_eq!(reason(&answer), why, "{what}: {:?}", answer.body);
        assert!(
            answer.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}"
        );
        seen.push(("/v1/infer", answer));
    }
    let unauthenticated = server
        .client
        .post(format!("{}/v1/infer", server.api))
        .body(std::fs::read(small).unwrap())
        .send()
        .await
        .unwrap();
    let unauthenticated = answer(unauthenticated).await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(reason(&unauthenticated), "unauthenticated");
    seen.push(("/v1/infer", unauthenticated));

    let text = server.metrics().await;
    assert_eq!(
        metric(&text, "imgfeat_serve_requests_total{status=\"500\"}"),
        0.0
    );
    assert_eq!(
        metric(&text, "imgfeat_serve_admitted_images"),
        0.0,
        "every place given back"
    );
    server.stop().await;
    common::openapi::check_all(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_refuses_exactly_the_excess_at_once() {
    let server = start(settings(|s| {
        s.serve.max_queued = 13;
        s.serve.max_images_per_request = Some(13);
    }))
    .await;
    let photos = photos();
    let (client, api) = (server.client.clone(), server.api.clone());
    let held = {
        let photos = photos.clone();
        tokio::spawn(async move { post_many(&client, &api, "", &photos).await })
    };
    wait_metric(&server, "imgfeat_serve_admitted_images", 13.0).await;
    let mut excess = tokio::task::JoinSet::new();
    for p in photos.iter().take(5).cloned() {
        let (client, api) = (server.client.clone(), server.api.clone());
        excess.spawn(async move { post_many(&client, &api, "", &[p]).await });
    }
    let mut refused = Vec::new();
    while let Some(a) = excess.join_next().await {
        refused.push(a.unwrap());
    }
    let held = held.await.unwrap();
    assert_eq!(held.status, 200, "{:?}", held.body);
    assert_eq!(held.body["results"].as_array().unwrap().len(), 13);
    for a in &refused {
        assert_eq!(
            a.status, 429,
            "admitted while 13 of 13 places were taken: {:?}",
            a.body
        );
        assert_eq!(reason(a), "too_busy");
        assert_eq!(a.retry_after.as_deref(), Some("1"));
    }
    let after = server.post_photo("", &photos[0]).await;
    assert_eq!(after.status, 200, "places are given back: {:?}", after.body);
    let text = server.metrics().await;
    assert_eq!(
        metric(&text, "imgfeat_serve_requests_total{status=\"429\"}"),
        5.0
    );
    server.stop().await;
    let mut seen = vec![("/v1/infer", held), ("/v1/infer", after)];
    seen.extend(refused.into_iter().map(|a| ("/v1/infer", a)));
    common::openapi::check_all(&seen);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_image_is_dropped_before_the_model_runs() {
    let server = start(settings(|_| {})).await;
    let photo = &photos()[0];
    // A deadline shorter than decoding: it passes while the image decodes, and the
    // batcher drops it instead of running the detector on it.
    let late = server.post_photo("?deadline_ms=1", photo).await;
    assert_eq!(late.status, 504, "{:?}", late.body);
    assert_eq!(reason(&late), "deadline");
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            "imgfeat_serve_batch_dropped_total{model=\"ssd_mobilenetv2_oidv4_24cls@2\",reason=\"deadline\",stage=\"detect\"}"
        ),
        1.0,
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            &format!("imgfeat_serve_inferred_images_total{{{DETECT}}}")
        ),
        0.0,
        "the detector never saw the late image"
    );
    let in_time = server.post_photo("?deadline_ms=60000", photo).await;
    assert_eq!(in_time.status, 200, "{:?}", in_time.body);
    let text = server.metrics().await;
    assert_eq!(
        metric(
            &text,
            &format!("imgfeat_serve_inferred_images_total{{{DETECT}}}")
        ),
        1.0
    );
    server.stop().await;
    common::openapi::check_all(&[("/v1/infer", late), ("/v1/infer", in_time)]);
}

#[tokio::test]
async fn while_the_models_load_requests_get_503() {
    let registry = prometheus::Registry::new();
    let metrics = ServeMetrics::register(&registry).unwrap();
    let s = settings(|_| {});
    // An engine whose models are never loaded.
    let state = ApiState {
        engine: Engine::new(s.engine(), metrics.engine.clone()),
        metrics,
        serve: s.serve.clone(),
        search: None,
    };
    let app = imgfeat_http::assemble(routes(state), axum::Router::new(), &s.http)
        .layer(axum::middleware::map_response(imgfeat_http::with_reasons));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}", listener.local_addr().unwrap());
    let task = tokio::spawn(async move { axum::serve(listener, app).await });
    let res = reqwest::Client::new()
        .post(format!("{api}/v1/infer"))
        .bearer_auth(TOKEN)
        .header("content-type", "image/jpeg")
        .body(std::fs::read(&photos()[0]).unwrap())
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    assert_eq!(a.status, 503);
    assert_eq!(reason(&a), "loading");
    task.abort();
    common::openapi::check_all(&[("/v1/infer", a)]);
}

#[test]
fn the_binary_answers_its_version() {
    imgfeat_testkit::version_of(env!("CARGO_BIN_EXE_imgfeat-serve"));
}
