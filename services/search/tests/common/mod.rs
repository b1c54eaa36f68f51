//! Starting `imgfeat-search` shards on real sockets, and reading them, for the tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::time::{Duration, Instant};

use imgfeat_amqp::{AmqpConfig, EventExchange, Topology};
use imgfeat_core::shutdown::ShutdownTrigger;
use imgfeat_search_service::shard::ShardSpec;
use imgfeat_search_service::{Listeners, Settings, shutdown_pair};
use serde_json::Value;

pub const TOKEN: &str = "search-test-token-0123456789";

pub struct Shard {
    pub api: String,
    pub probes: String,
    pub stop: ShutdownTrigger,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// A small deterministic generator (SplitMix64), so the data is the same every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

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
    settings.http.token = Some(imgfeat_http::Token::new(TOKEN));
    settings.amqp = amqp.clone();
    settings.validate().unwrap();
    settings
}

pub fn start(settings: Settings, listeners: Listeners) -> Shard {
    let api = format!("http://{}", listeners.api.local_addr().unwrap());
    let probes = format!("http://{}", listeners.metrics.local_addr().unwrap());
    let (stop, shutdown) = shutdown_pair();
    let task = tokio::spawn(imgfeat_search_service::run(settings, listeners, shutdown));
    Shard {
        api,
        probes,
        stop,
        task,
    }
}

pub async fn listeners() -> Listeners {
    Listeners {
        api: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        metrics: tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    }
}

/// Waits (up to a minute) until `check` holds; `what` says what never happened.
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_ready(client: &reqwest::Client, shard: &Shard) {
    let url = format!("{}/readyz", shard.probes);
    eventually(&format!("{url} ready"), || async {
        let res = client.get(&url).send().await;
        res.is_ok_and(|r| r.status() == 200)
    })
    .await;
}

pub async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let res = client.get(url).bearer_auth(TOKEN).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
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

/// The value of the first sample line starting with `name` (labels included).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

pub async fn metrics(client: &reqwest::Client, shard: &Shard) -> String {
    client
        .get(format!("{}/metrics", shard.probes))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
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
