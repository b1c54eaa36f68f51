//! Starting `imgfeat-search` shards on real sockets, and reading them, for the tests.
// Each test file uses a part; the re-exports of the test kit are used by some only.
#![allow(dead_code, unused_imports, clippy::unwrap_used, clippy::expect_used)]

use imgfeat_amqp::{AmqpConfig, EventExchange, Topology};
use imgfeat_search_service::shard::ShardSpec;
use imgfeat_search_service::{Listeners, Settings};
pub use imgfeat_testkit::{eventually, metric};
use serde_json::Value;

pub const TOKEN: &str = "search-test-token-0123456789";

/// A shard running in this process (`api`, `probes`, `stop`, `task`).
pub type Shard = imgfeat_testkit::Running;

pub use imgfeat_testkit::codes::Rng;

/// A shard of the store at `store`; image queries off (these shards need no model).
pub fn settings(
    store: &std::path::Path,
    spec: ShardSpec,
    shard_urls: Vec<String>,
    amqp: &AmqpConfig,
) -> Settings {
    let mut settings = Settings::default();
    settings.store.path = store.to_path_buf();
    settings.search.shard = spec;
    settings.search.shard_urls = shard_urls;
    settings.search.infer_max_queued = 0;
    settings.http.token = Some(imgfeat_http::Token::new(TOKEN));
    settings.amqp = amqp.clone();
    settings.validate().unwrap();
    settings
}

pub fn start(settings: Settings, listeners: Listeners) -> Shard {
    Shard::spawn(listeners, |l, shutdown| {
        imgfeat_search_service::run(settings, l, shutdown)
    })
}

pub async fn listeners() -> Listeners {
    Listeners::localhost().await.unwrap()
}

pub async fn wait_ready(client: &reqwest::Client, shard: &Shard) {
    imgfeat_testkit::wait_ready(client, &shard.probes).await;
}

pub async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let res = client.get(&url).bearer_auth(TOKEN).send().await.unwrap();
    let a = imgfeat_testkit::answer(res).await;
    check_openapi("GET", &url, &a);
    (a.status, a.body)
}

/// Checks an answer to `method url` against services/search/openapi.yaml: every
/// answer the tests see is the documented one.
pub fn check_openapi(method: &str, url: &str, a: &imgfeat_testkit::Answer) {
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(url);
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.yaml");
    imgfeat_testkit::openapi::check_request(&spec, method, path, a);
}

pub fn pairs(v: &Value) -> Vec<(u64, u32)> {
    v["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["id"].as_u64().unwrap(),
                n["distance"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

pub async fn metrics(client: &reqwest::Client, shard: &Shard) -> String {
    imgfeat_testkit::metrics(client, &shard.probes).await
}

/// A broker config of a prefix no other run uses.
pub fn amqp(label: &str) -> AmqpConfig {
    AmqpConfig {
        prefix: imgfeat_amqp::unique_prefix(label),
        ..AmqpConfig::default()
    }
}

/// Deletes every queue and exchange a test made under its prefix.
pub async fn teardown(amqp: &AmqpConfig, followers: &[(EventExchange, String)]) {
    let conn = imgfeat_amqp::AmqpConnection::connect(amqp.clone())
        .await
        .unwrap();
    let channel = conn.channel().await.unwrap();
    let topology = Topology::new(amqp);
    for (e, name) in followers {
        for q in [
            topology.follower_queue(*e, name),
            topology.follower_dlq(*e, name),
        ] {
            channel
                .queue_delete(q.as_str().into(), Default::default())
                .await
                .unwrap();
        }
    }
    topology.delete(&channel).await.unwrap();
    conn.close().await;
}
