#![allow(clippy::unwrap_used, clippy::expect_used)]
//! `imgfeat-serve ?neighbours=k` against a real `imgfeat-search` on real sockets, over a
//! real SQLite store that `imgfeat index`'s code filled with real photos: each posted
//! photo comes back with its own stored image first at distance 0. With the search
//! service dead or silent, the inference answer still comes (200) with
//! `neighbours_error`. Every answer is checked against serve's OpenAPI file.

use std::path::{Path, PathBuf};

use imgfeat_http::{Listeners, Token};
use imgfeat_testkit::{
    Answer, Running, answer, index_photos, local_http, metric, metrics, photo, wait_ready,
};

const SEARCH_TOKEN: &str = "search-neighbours-token-0123456789";
const SERVE_TOKEN: &str = "serve-neighbours-token-0123456789";

fn serve_openapi() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../services/serve/openapi.yaml")
}

async fn start_search(store: &Path) -> Running {
    let mut s = imgfeat_search_service::Settings {
        http: local_http(SEARCH_TOKEN),
        telemetry: imgfeat_testkit::local_telemetry(),
        ..Default::default()
    };
    s.store.path = store.to_path_buf();
    s.search.follow = false;
    // Serve asks by code: this shard needs no model.
    s.search.infer_max_queued = 0;
    s.validate().unwrap();
    let listeners = Listeners::bind(&s.http, &s.telemetry).await.unwrap();
    let running = Running::spawn(listeners, |l, shutdown| {
        imgfeat_search_service::run(s, l, shutdown)
    });
    wait_ready(&reqwest::Client::new(), &running.probes).await;
    running
}

async fn start_serve(search_url: &str, timeout_ms: u64) -> Running {
    let mut s = imgfeat_serve::Settings {
        http: local_http(SERVE_TOKEN),
        telemetry: imgfeat_testkit::local_telemetry(),
        ..Default::default()
    };
    s.serve.deadline_ms = 120_000;
    s.serve.search_url = Some(search_url.to_owned());
    s.serve.search_timeout_ms = timeout_ms;
    s.serve.search_token = Some(Token::new(SEARCH_TOKEN));
    s.validate().unwrap();
    let listeners = Listeners::bind(&s.http, &s.telemetry).await.unwrap();
    let running = Running::spawn(listeners, |l, shutdown| imgfeat_serve::run(s, l, shutdown));
    wait_ready(&reqwest::Client::new(), &running.probes).await;
    running
}

async fn infer(serve: &Running, query: &str, photos: &[PathBuf]) -> Answer {
    let mut form = reqwest::multipart::Form::new();
    for p in photos {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        form = form.part(
            "image",
            reqwest::multipart::Part::bytes(std::fs::read(p).unwrap()).file_name(name),
        );
    }
    let res = reqwest::Client::new()
        .post(format!("{}/v1/infer{query}", serve.api))
        .bearer_auth(SERVE_TOKEN)
        .multipart(form)
        .send()
        .await
        .unwrap();
    answer(res).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neighbours_come_from_the_search_service_and_its_failure_is_not_a_5xx() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.sqlite3");
    let photos: Vec<PathBuf> = [
        "darknet_dog.jpg",
        "skimage_chelsea.png",
        "sklearn_flower.jpg",
    ]
    .iter()
    .map(|n| photo(n))
    .collect();
    let indexed = index_photos(&path, &photos).await;
    let search = start_search(&path).await;
    let mut seen = Vec::new();

    let serve = start_serve(&search.api, 5_000).await;
    let a = infer(&serve, "?neighbours=3", &photos[..2]).await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    for (i, (id, code)) in indexed.images[..2].iter().enumerate() {
        let r = &a.body["results"][i];
        assert_eq!(r["code"], code.to_hex(), "image {i}: the stored code");
        assert!(r.get("neighbours_error").is_none(), "image {i}: {r}");
        let n = r["neighbours"].as_array().unwrap();
        assert_eq!(n.len(), 3, "image {i}: {r}");
        assert_eq!(n[0]["id"], id.0, "image {i}: itself first");
        assert_eq!(n[0]["distance"], 0, "image {i}");
        assert!(n[1]["distance"].as_u64().unwrap() > 0);
    }
    seen.push(("/v1/infer", a));
    let plain = infer(&serve, "", &photos[2..]).await;
    assert_eq!(plain.status, 200);
    assert!(
        plain.body["results"][0].get("neighbours").is_none(),
        "none asked, none given"
    );
    seen.push(("/v1/infer", plain));
    let client = reqwest::Client::new();
    let text = metrics(&client, &serve.probes).await;
    assert_eq!(
        metric(
            &text,
            "imgfeat_serve_neighbour_lookups_total{result=\"ok\"}"
        ),
        Some(2.0)
    );
    serve.stop().await;

    // A dead port: refused at once.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    // A port that takes the connection and never answers: the timeout.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}", silent.local_addr().unwrap());
    for (what, url, timeout_ms, says) in [
        ("a dead search service", dead.as_str(), 5_000, "no answer"),
        (
            "a silent search service",
            silent_url.as_str(),
            300,
            "within 300 ms",
        ),
    ] {
        let serve = start_serve(url, timeout_ms).await;
        let a = infer(&serve, "?neighbours=3", &photos[..1]).await;
        assert_eq!(a.status, 200, "{what}: {:?}", a.body);
        let r = &a.body["results"][0];
        assert_eq!(r["code"], indexed.images[0].1.to_hex(), "{what}");
        assert!(r.get("neighbours").is_none(), "{what}: {r}");
        let why = r["neighbours_error"].as_str().unwrap();
        assert!(why.contains(says), "{what}: {why}");
        let text = metrics(&client, &serve.probes).await;
        assert_eq!(
            metric(
                &text,
                "imgfeat_serve_neighbour_lookups_total{result=\"failed\"}"
            ),
            Some(1.0),
            "{what}"
        );
        seen.push(("/v1/infer", a));
        serve.stop().await;
    }
    drop(silent);
    search.stop().await;
    imgfeat_testkit::openapi::check_all(&serve_openapi(), &seen);
}
