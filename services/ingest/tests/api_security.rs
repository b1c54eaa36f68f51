#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The API's protections, against the service in-process with the real broker: the
//! token (401/403), the body limit (413), the concurrency limit and the cap on running
//! backfills (429), the request timeout (503), and /metrics on its own port.

mod common;

use std::net::SocketAddr;

use common::{Service, TOKEN, WAIT, http, http_as, read_response, test_settings, wait_until};
use imgfeat_ingest::settings::{AuthMode, Token};
use imgfeat_ingest::{Listeners, shutdown_pair};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const IMAGES: &str = r#"{"ids":[1]}"#;

#[tokio::test]
async fn the_api_needs_the_token_and_the_probes_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(test_settings("auth", dir.path())).await;
    svc.ready().await;
    let post = |auth: Option<String>| async move {
        http_as(
            svc.addr,
            auth.as_deref(),
            "POST",
            "/v1/images",
            Some(IMAGES),
        )
        .await
    };

    let (status, head, body) = post(None).await;
    assert_eq!(status, 401, "{body}");
    assert!(head.contains("www-authenticate: bearer"), "{head}");
    assert!(body["error"].as_str().unwrap().contains("Bearer"));
    for malformed in ["Basic dXNlcjpwYXNz", "Bearer", TOKEN] {
        let (status, _, body) = post(Some(malformed.into())).await;
        assert_eq!(status, 401, "{malformed:?}: {body}");
    }
    for wrong in ["test-token-0123456788", "test-token-012345678", "x"] {
        let (status, _, body) = post(Some(format!("Bearer {wrong}"))).await;
        assert_eq!(status, 403, "{wrong:?}: {body}");
        assert_eq!(body["error"], "wrong token");
    }
    let (status, _, body) = post(Some(format!("Bearer {TOKEN}"))).await;
    assert_eq!(status, 202, "{body}");
    // Every route of the API, reads included.
    let (status, _, _) = http_as(svc.addr, None, "GET", "/v1/backfill", None).await;
    assert_eq!(status, 401);

    // Probes carry no token, on either port.
    for addr in [svc.addr, svc.metrics] {
        for path in ["/healthz", "/readyz"] {
            let (status, _, body) = http_as(addr, None, "GET", path, None).await;
            assert_eq!(status, 200, "{addr}{path}: {body}");
        }
    }
    svc.stop().await;
}

#[tokio::test]
async fn a_refused_body_closes_the_connection_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("close", dir.path());
    settings.http.max_body_bytes = 64;
    let svc = Service::start(settings).await;
    svc.ready().await;
    let closes = |head: &str| head.contains("connection: close");

    // Refused before the body is read: a keep-alive client must not reuse the socket.
    let (status, head, _) = http_as(svc.addr, None, "POST", "/v1/images", Some(IMAGES)).await;
    assert_eq!(status, 401);
    assert!(closes(&head), "{head}");
    let big = format!(r#"{{"ids":[{}]}}"#, vec!["1"; 40].join(","));
    let auth = format!("Bearer {TOKEN}");
    let (status, head, _) = http_as(svc.addr, Some(&auth), "POST", "/v1/images", Some(&big)).await;
    assert_eq!(status, 413);
    assert!(closes(&head), "{head}");
    // Answers that keep the connection: a success, and an error to a bodiless request.
    let (status, head, _) =
        http_as(svc.addr, Some(&auth), "POST", "/v1/images", Some(IMAGES)).await;
    assert_eq!(status, 202);
    assert!(!closes(&head), "{head}");
    let (status, head, _) = http_as(svc.addr, Some(&auth), "GET", "/v1/nothing", None).await;
    assert_eq!(status, 404);
    assert!(!closes(&head), "{head}");
    svc.stop().await;
}

#[tokio::test]
async fn metrics_are_served_on_their_own_port_only() {
    let dir = tempfile::tempdir().unwrap();
    let svc = Service::start(test_settings("metrics", dir.path())).await;
    svc.ready().await;
    let (status, head, body) = http_as(svc.metrics, None, "GET", "/metrics", None).await;
    assert_eq!(status, 200);
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert!(body.as_str().unwrap().contains("imgfeat_"), "{body}");
    let (status, body) = http(svc.addr, "GET", "/metrics", None).await;
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string(), "even a 404 is JSON: {body}");
    svc.stop().await;
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("body", dir.path());
    settings.http.max_body_bytes = 64;
    let svc = Service::start(settings).await;
    svc.ready().await;

    let ids: Vec<String> = (1..=30).map(|i| i.to_string()).collect();
    let big = format!(r#"{{"ids":[{}]}}"#, ids.join(","));
    assert!(big.len() > 64);
    let (status, body) = http(svc.addr, "POST", "/v1/images", Some(&big)).await;
    assert_eq!(status, 413, "{body}");
    assert!(body["error"].is_string(), "{body}");
    // The same without a Content-Length: the limit holds while reading.
    let chunked = chunked_request("/v1/images", &big);
    let (status, _, body) = send_raw(svc.addr, &chunked).await;
    assert_eq!(status, 413, "{body}");
    let (status, body) = http(svc.addr, "POST", "/v1/images", Some(IMAGES)).await;
    assert_eq!(status, 202, "{body}");
    svc.stop().await;
}

#[tokio::test]
async fn requests_beyond_the_concurrency_limit_get_429_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("busy", dir.path());
    settings.http.max_concurrent_requests = 1;
    let svc = Service::start(settings).await;
    svc.ready().await;

    // A request whose body is still coming holds the one place, for every route: the
    // probe below asks another route than the slow request's.
    let mut slow = start_slow_post(svc.addr, IMAGES).await;
    wait_until(|| async {
        let (status, body) = http(svc.addr, "GET", "/v1/backfill", None).await;
        assert!(status == 200 || status == 429, "{status} {body}");
        if status == 429 {
            assert!(body["error"].as_str().unwrap().contains("too many"));
        }
        status == 429
    })
    .await;
    slow.write_all(&IMAGES.as_bytes()[1..]).await.unwrap();
    let (status, _, body) = read_response(slow).await;
    assert_eq!(status, 202, "the slow request itself is served: {body}");
    // Its place is free again.
    let (status, body) = http(svc.addr, "POST", "/v1/images", Some(IMAGES)).await;
    assert_eq!(status, 202, "{body}");
    svc.stop().await;
}

#[tokio::test]
async fn a_request_past_its_time_gets_503() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("timeout", dir.path());
    settings.http.request_timeout_ms = 300;
    let svc = Service::start(settings).await;
    svc.ready().await;
    let slow = start_slow_post(svc.addr, IMAGES).await;
    let (status, _, body) = read_response(slow).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("http.request_timeout_ms"),
        "{body}"
    );
    svc.stop().await;
}

#[tokio::test]
async fn running_backfills_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("bfcap", dir.path());
    settings.limits.max_running_backfills = 1;
    settings.backfill.rate_per_sec = 10; // keeps the first job running
    settings.backfill.chunk_size = 10;
    let svc = Service::start(settings).await;
    svc.ready().await;

    let backfill = r#"{"from":1,"to":1000000}"#;
    let (status, body) = http(svc.addr, "POST", "/v1/backfill", Some(backfill)).await;
    assert_eq!(status, 202, "{body}");
    let first = body["job"].as_str().unwrap().to_owned();
    let (status, body) = http(svc.addr, "POST", "/v1/backfill", Some(backfill)).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("limits.max_running_backfills"),
        "{body}"
    );
    let (status, _) = http(svc.addr, "DELETE", &format!("/v1/backfill/{first}"), None).await;
    assert_eq!(status, 202);
    let (status, body) = http(svc.addr, "POST", "/v1/backfill", Some(backfill)).await;
    assert_eq!(status, 202, "a cancelled job frees its place: {body}");
    svc.stop().await;
}

#[tokio::test]
async fn the_service_refuses_to_start_without_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("notoken", dir.path());
    settings.http.token = None;
    let listeners = Listeners::bind(&settings.http, &settings.telemetry)
        .await
        .unwrap();
    let (_trigger, shutdown) = shutdown_pair();
    let err = tokio::time::timeout(WAIT, imgfeat_ingest::run(settings, listeners, shutdown))
        .await
        .unwrap()
        .unwrap_err();
    assert!(err.to_string().contains("http.token is not set"), "{err}");
}

#[tokio::test]
async fn auth_none_opens_the_api_when_asked_to() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings("open", dir.path());
    settings.http.token = None;
    settings.http.auth = AuthMode::None;
    let svc = Service::start(settings).await;
    svc.ready().await;
    let (status, _, body) = http_as(svc.addr, None, "POST", "/v1/images", Some(IMAGES)).await;
    assert_eq!(status, 202, "{body}");
    svc.stop().await;
    // A token and `none` together are refused: which one was meant?
    let mut settings = test_settings("open2", dir.path());
    settings.http.auth = AuthMode::None;
    settings.http.token = Some(Token::new(TOKEN));
    assert!(settings.validate().is_err());
}

/// Sends the head and the first byte of `body`, leaving the server waiting for the rest.
async fn start_slow_post(addr: SocketAddr, body: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/images HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.len(),
        &body[..1]
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream
}

fn chunked_request(path: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    )
}

async fn send_raw(addr: SocketAddr, request: &str) -> (u16, String, serde_json::Value) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    read_response(stream).await
}
