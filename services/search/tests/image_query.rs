//! `POST /v1/similar` (an image in) and `GET /v1/similar?code=` on a real
//! `imgfeat-search` with the real models over a real SQLite store that `imgfeat index`'s
//! code filled with real photos: a stored photo posted again finds itself first at
//! distance 0, with exactly the code the index stored; bad bodies and bad codes are
//! refused with their status and reason; a full admission is a 429 with `Retry-After`,
//! loading models a 503, image queries turned off a 501.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use imgfeat_core::ports::ResultStore;
use imgfeat_infer::{Engine, EngineMetrics};
use imgfeat_search_service::Settings;
use imgfeat_search_service::api::{ApiState, routes};
use imgfeat_search_service::metrics::SearchMetrics;
use imgfeat_search_service::peers::Peers;
use imgfeat_search_service::shard::ShardSpec;
use imgfeat_search_service::shard_index::ShardIndex;
use imgfeat_testkit::{Answer, answer, index_photos, photo};
use serde_json::Value;

use common::{TOKEN, listeners, metric, metrics, start, wait_ready};

/// One whole shard of the store at `path`, no broker; image queries as `infer` says.
fn settings(path: &std::path::Path, infer_max_queued: usize) -> Settings {
    let mut amqp = common::amqp("search-image");
    amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let mut s = common::settings(path, ShardSpec::default(), Vec::new(), &amqp);
    s.search.follow = false;
    s.search.infer_max_queued = infer_max_queued;
    // Just above the largest photo used here (darknet_kite, 1.42 MB).
    s.http.max_body_bytes = 1_500_000;
    s.validate().unwrap();
    s
}

async fn post(client: &reqwest::Client, api: &str, query: &str, ct: &str, body: Vec<u8>) -> Answer {
    let res = client
        .post(format!("{api}/v1/similar{query}"))
        .bearer_auth(TOKEN)
        .header("content-type", ct)
        .body(body)
        .send()
        .await
        .unwrap();
    let a = answer(res).await;
    common::check_openapi("POST", &format!("{api}/v1/similar{query}"), &a);
    a
}

/// A body over the limit is refused from its `Content-Length`, before it is read, and
/// the connection closed: a client still writing the body may see a broken pipe instead
/// of the answer. So only the headers are sent, and the answer read as the server wrote it.
async fn post_headers_only(api: &str, ct: &str, len: usize) -> Answer {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = api.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /v1/similar HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: {ct}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), tcp.read_to_end(&mut raw))
        .await
        .expect("the server answers without waiting for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&raw);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .and_then(|(_, b)| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Answer {
        status,
        retry_after: None,
        body,
    }
}

async fn get(client: &reqwest::Client, url: String) -> Answer {
    let a = answer(client.get(&url).bearer_auth(TOKEN).send().await.unwrap()).await;
    common::check_openapi("GET", &url, &a);
    a
}

/// Serves `app` on a free port of 127.0.0.1 until the test ends; its base URL.
async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

fn first_hit(body: &Value) -> (u64, u64) {
    let n = &body["neighbours"][0];
    (n["id"].as_u64().unwrap(), n["distance"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_photo_finds_itself_at_distance_zero_with_the_stored_code() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.sqlite3");
    let names = [
        "darknet_dog.jpg",
        "skimage_chelsea.png",
        "sklearn_flower.jpg",
    ];
    let photos: Vec<_> = names.iter().map(|n| photo(n)).collect();
    let indexed = index_photos(&path, &photos).await;

    let shard = start(settings(&path, 4), listeners().await);
    // No connection reuse: an answer given before the body was read (a bad parameter)
    // closes its connection, which a pooled client could pick for the next request.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    wait_ready(&client, &shard).await;

    for (photo, (id, stored)) in photos.iter().zip(&indexed.images) {
        let what = photo.display();
        let bytes = std::fs::read(photo).unwrap();
        let a = post(
            &client,
            &shard.api,
            "?k=3",
            "application/octet-stream",
            bytes,
        )
        .await;
        assert_eq!(a.status, 200, "{what}: {:?}", a.body);
        assert_eq!(
            a.body["code_hex"],
            stored.to_hex(),
            "{what}: the code index stored"
        );
        assert_eq!(a.body["bits"], stored.bits());
        assert_eq!(a.body["code_version"], indexed.code_version.to_string());
        assert_eq!(a.body["model"], indexed.detector_version.to_string());
        assert!(a.body["main_object"]["whole_image"].is_boolean(), "{what}");
        assert!(a.body["image"]["width"].as_u64().unwrap() > 0);
        assert_eq!(first_hit(&a.body), (id.0, 0), "{what}: itself first");
        assert_eq!(a.body["neighbours"].as_array().unwrap().len(), 3);
        assert!(a.body["missing_shards"].as_array().unwrap().is_empty());

        // The same code, asked by code.
        let by_code = get(
            &client,
            format!("{}/v1/similar?code={}&k=2", shard.api, stored.to_hex()),
        )
        .await;
        assert_eq!(by_code.status, 200, "{:?}", by_code.body);
        assert_eq!(first_hit(&by_code.body), (id.0, 0));
        assert_eq!(by_code.body["code_hex"], stored.to_hex());
    }

    let small = std::fs::read(photo("darknet_person.jpg")).unwrap();
    let cases = [
        (
            "over the byte limit",
            post_headers_only(&shard.api, "image/jpeg", 1_500_001).await,
            413,
            "too_large",
        ),
        (
            "not an image content type",
            post(&client, &shard.api, "", "text/plain", b"hello".to_vec()).await,
            415,
            "unsupported_media_type",
        ),
        (
            "bytes of no image format",
            post(
                &client,
                &shard.api,
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
            post(
                &client,
                &shard.api,
                "",
                "image/jpeg",
                small[..4000].to_vec(),
            )
            .await,
            422,
            "undecodable",
        ),
        (
            "an empty body",
            post(&client, &shard.api, "", "image/jpeg", Vec::new()).await,
            422,
            "undecodable",
        ),
        (
            "k = 0",
            post(&client, &shard.api, "?k=0", "image/jpeg", small.clone()).await,
            400,
            "bad_request",
        ),
        (
            "an unknown parameter",
            post(
                &client,
                &shard.api,
                "?colour=red",
                "image/jpeg",
                small.clone(),
            )
            .await,
            400,
            "bad_request",
        ),
        (
            "a code that is not hex",
            get(&client, format!("{}/v1/similar?code=zz", shard.api)).await,
            400,
            "bad_code",
        ),
        (
            "a code of the wrong length",
            get(&client, format!("{}/v1/similar?code=00ff", shard.api)).await,
            400,
            "bad_code",
        ),
        (
            "no code",
            get(&client, format!("{}/v1/similar?k=3", shard.api)).await,
            400,
            "bad_request",
        ),
    ];
    for (what, a, status, reason) in cases {
        assert_eq!(a.status, status, "{what}: {:?}", a.body);
        assert_eq!(a.reason(), reason, "{what}: {:?}", a.body);
        assert!(
            a.body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{what}"
        );
    }
    let unauthenticated = answer(
        client
            .post(format!("{}/v1/similar", shard.api))
            .body(small)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(unauthenticated.reason(), "unauthenticated");

    let text = metrics(&client, &shard).await;
    assert_eq!(metric(&text, "imgfeat_search_admitted_images"), Some(0.0));
    let detector = indexed.detector_version.to_string();
    let series =
        format!("imgfeat_search_inferred_images_total{{model=\"{detector}\",stage=\"detect\"}}");
    // Only the three photos reached the detector: the bad bodies failed at decoding, the
    // bad parameters before the body was read.
    assert_eq!(metric(&text, &series), Some(3.0), "{text}");
    shard.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_is_503_a_full_admission_429_and_image_queries_off_501() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.sqlite3");
    let s = settings(&path, 2);
    let store: Arc<dyn ResultStore> = Arc::new(imgfeat_store::SqliteStore::open(&path).unwrap());
    let (_, version) = s.pipeline.versions().unwrap();
    let index = Arc::new(ShardIndex::new(version, ShardSpec::default()));
    index.load(store.as_ref()).await.unwrap();
    let registry = prometheus::Registry::new();
    let engine = Engine::new(
        s.engine().unwrap(),
        EngineMetrics::register(&registry, "imgfeat_search").unwrap(),
    );
    let state = |engine: Option<Engine>| ApiState {
        index: index.clone(),
        store: store.clone(),
        peers: Peers::new(Vec::new(), Duration::from_secs(1), None, None).unwrap(),
        max_k: 10,
        max_radius: 16,
        metrics: SearchMetrics::register(&prometheus::Registry::new()).unwrap(),
        engine,
        bits: 64,
    };
    let serve = |state: ApiState| {
        serve_app(
            imgfeat_http::assemble(routes(state), axum::Router::new(), &s.http)
                .layer(axum::middleware::map_response(imgfeat_http::with_reasons)),
        )
    };
    let client = reqwest::Client::new();
    let jpeg = std::fs::read(photo("darknet_person.jpg")).unwrap();

    // An engine whose models are not loaded yet.
    let with_engine = serve(state(Some(engine.clone()))).await;
    let a = post(&client, &with_engine, "", "image/jpeg", jpeg.clone()).await;
    assert_eq!((a.status, a.reason()), (503, "loading"), "{:?}", a.body);

    engine.load().await.unwrap();
    let held = engine.admission().admit(2).unwrap();
    let a = post(&client, &with_engine, "", "image/jpeg", jpeg.clone()).await;
    assert_eq!((a.status, a.reason()), (429, "too_busy"), "{:?}", a.body);
    assert_eq!(a.retry_after.as_deref(), Some("1"));
    assert!(
        a.body["error"]
            .as_str()
            .unwrap()
            .contains("search.infer_max_queued")
    );
    drop(held);
    let a = post(&client, &with_engine, "", "image/jpeg", jpeg.clone()).await;
    assert_eq!(a.status, 200, "places are given back: {:?}", a.body);
    assert!(
        a.body["neighbours"].as_array().unwrap().is_empty(),
        "an empty store"
    );

    // Image queries off: a reason, and code queries still answered.
    let without = serve(state(None)).await;
    let a = post(&client, &without, "", "image/jpeg", jpeg).await;
    assert_eq!((a.status, a.reason()), (501, "disabled"), "{:?}", a.body);
    let code = get(
        &client,
        format!("{without}/v1/similar?code={}", "00".repeat(8)),
    )
    .await;
    assert_eq!(code.status, 200, "{:?}", code.body);
}
