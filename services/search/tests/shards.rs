//! Two `imgfeat-search` shards over one real SQLite store, on real sockets: each loads
//! only its half, and a query to either is answered for the whole version, exactly as a
//! linear scan over every code answers it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use imgfeat_core::ports::ResultStore;
use imgfeat_core::{BinaryCode, CodeRecord, ImageId, ModelVersion};
use imgfeat_search::{HammingIndex, LinearScan};
use imgfeat_search_service::Settings;
use imgfeat_search_service::shard::ShardSpec;
use imgfeat_store::SqliteStore;

mod common;

use common::{Rng, TOKEN, get, listeners, metric, metrics, pairs, settings, start, wait_ready};

/// 2 000 random codes and 30 planted groups of 6 copies (0-10 bits flipped), IDs
/// scattered over the whole u64 range.
fn catalogue(version: &ModelVersion) -> (Vec<CodeRecord>, Vec<u64>) {
    let mut rng = Rng(7);
    let mut records = Vec::new();
    let mut seeds = Vec::new();
    let record = |id: u64, code: u64| CodeRecord {
        image_id: ImageId(id),
        model_version: version.clone(),
        code: BinaryCode::from_bytes(64, code.to_be_bytes().to_vec()).unwrap(),
    };
    for _ in 0..2_000 {
        records.push(record(rng.next(), rng.next()));
    }
    for _ in 0..30 {
        let (seed_id, seed) = (rng.next(), rng.next());
        seeds.push(seed_id);
        records.push(record(seed_id, seed));
        for _ in 0..5 {
            let mut code = seed;
            for _ in 0..rng.next() % 11 {
                code ^= 1 << (rng.next() % 64);
            }
            records.push(record(rng.next(), code));
        }
    }
    (records, seeds)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_shards_answer_for_the_whole_version_like_a_scan() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("codes.sqlite3");
    let (_, version) = Settings::default().pipeline.versions().unwrap();
    let (records, seeds) = catalogue(&version);
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    store.put_codes(&records).await.unwrap();
    let mut oracle = LinearScan::new(64).unwrap();
    for r in &records {
        oracle.insert(r.image_id.0, r.code.as_bytes()).unwrap();
    }

    let (la, lb) = (listeners().await, listeners().await);
    let (url_a, url_b) = (
        format!("http://{}", la.api.local_addr().unwrap()),
        format!("http://{}", lb.api.local_addr().unwrap()),
    );
    let urls = vec![url_a, url_b];
    // Followers of no broker: these shards serve the store as loaded.
    let mut amqp = common::amqp("search-shards");
    amqp.url = "amqp://guest:guest@127.0.0.1:1/%2f".into();
    let mut sa = settings(&path, ShardSpec { index: 0, count: 2 }, urls.clone(), &amqp);
    let mut sb = settings(&path, ShardSpec { index: 1, count: 2 }, urls, &amqp);
    sa.search.follow = false;
    sb.search.follow = false;
    let a = start(sa, la);
    let b = start(sb, lb);
    let client = reqwest::Client::new();
    wait_ready(&client, &a).await;
    wait_ready(&client, &b).await;

    // Each shard holds a part, together everything.
    let mut held = Vec::new();
    for s in [&a, &b] {
        let text = metrics(&client, s).await;
        held.push(metric(&text, "imgfeat_search_index_codes").unwrap());
    }
    assert_eq!(held.iter().sum::<f64>(), records.len() as f64, "{held:?}");
    assert!(
        held.iter().all(|&n| n > 0.0 && n < records.len() as f64),
        "{held:?}"
    );

    for (i, seed) in seeds.iter().enumerate() {
        let code = records
            .iter()
            .find(|r| r.image_id.0 == *seed)
            .unwrap()
            .code
            .as_bytes()
            .to_vec();
        let via = if i % 2 == 0 { &a } else { &b };
        let mut want: Vec<(u64, u32)> = oracle
            .knn(&code, 11)
            .unwrap()
            .into_iter()
            .filter(|h| h.id != *seed)
            .map(|h| (h.id, h.distance))
            .collect();
        want.truncate(10);
        let (status, got) = get(
            &client,
            format!("{}/v1/images/{seed}/similar?k=10", via.api),
        )
        .await;
        assert_eq!(status, 200, "{got}");
        assert_eq!(pairs(&got), want, "k=10 around {seed}");
        assert!(got["missing_shards"].as_array().unwrap().is_empty());

        let want: Vec<(u64, u32)> = oracle
            .within(&code, 10)
            .unwrap()
            .into_iter()
            .filter(|h| h.id != *seed)
            .map(|h| (h.id, h.distance))
            .collect();
        let (_, got) = get(
            &client,
            format!("{}/v1/images/{seed}/similar?radius=10&k=1000", via.api),
        )
        .await;
        assert_eq!(pairs(&got), want, "radius 10 around {seed}");
        assert!(want.len() >= 5, "the planted copies are found: {want:?}");
    }

    // Bad requests are refused with a reason, never answered wrongly.
    for (url, status) in [
        (format!("{}/v1/images/1/similar", a.api), 404),
        (format!("{}/v1/images/{}/similar?k=0", a.api, seeds[0]), 400),
        (
            format!("{}/v1/images/{}/similar?radius=65", a.api, seeds[0]),
            400,
        ),
        (
            format!("{}/v1/images/{}/similar?colour=red", a.api, seeds[0]),
            400,
        ),
        (format!("{}/v1/images/x/similar", a.api), 400),
    ] {
        let (got, body) = get(&client, url.clone()).await;
        assert_eq!(got, status, "{url}: {body}");
    }
    // Without the token: refused before any work, the shard query too.
    let res = client
        .get(format!("{}/v1/images/{}/similar", a.api, seeds[0]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{}/v1/shard/query", b.api))
        .json(&serde_json::json!({"code": "00", "k": 3, "radius": null, "exclude": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .post(format!("{}/v1/shard/query", a.api))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"code": "zz", "k": 3, "radius": null, "exclude": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);

    // One shard gone: the other still answers, and says what it lacks.
    b.stop.trigger();
    b.task.await.unwrap().unwrap();
    let (status, got) = get(
        &client,
        format!("{}/v1/images/{}/similar?k=10", a.api, seeds[0]),
    )
    .await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["missing_shards"].as_array().unwrap().len(), 1, "{got}");
    a.stop.trigger();
    a.task.await.unwrap().unwrap();
}

#[test]
fn the_binary_answers_its_version() {
    imgfeat_testkit::version_of(env!("CARGO_BIN_EXE_imgfeat-search"));
}
