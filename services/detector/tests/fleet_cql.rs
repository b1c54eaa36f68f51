//! The fleet on a real Cassandra/ScyllaDB node (`IMGFEAT_TEST_CQL=host:port`; skipped,
//! and said so, without it), each test in a keyspace of its own:
//! - ingest -> detector -> extractor -> CQL gives the embedded pipeline's codes (what
//!   `imgfeat index` stores), and an `imgfeat-search` shard loads them from the keyspace;
//! - a store outage of 30 s mid-run (every connection to the node cut and new ones
//!   refused, through a proxy) loses nothing and needs no one: the workers retry, the
//!   broker holds what is not durable, and every image ends coded once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::{CuttableProxy, Fleet, FleetStore, QUICK_RETRIES, Retries, serial};
use imgfeat_http::Listeners;
use imgfeat_testkit::{Running, cql, local_http, wait_ready};

const SEARCH_TOKEN: &str = "fleet-cql-search-token-0123456789";

/// The production schedule's first steps: 1 + 5 + 30 s of retries outlast the outage.
const OUTAGE_RETRIES: Retries = Retries {
    delays_ms: &[1_000, 5_000, 30_000, 60_000],
    max_attempts: 5,
};

async fn start_search(fleet: &Fleet) -> Running {
    let mut s = imgfeat_search_service::Settings {
        http: local_http(SEARCH_TOKEN),
        telemetry: imgfeat_testkit::local_telemetry(),
        ..Default::default()
    };
    s.store = fleet.store.clone();
    s.search.follow = false;
    s.search.infer_max_queued = 0;
    s.validate().unwrap();
    let listeners = Listeners::bind(&s.http, &s.telemetry).await.unwrap();
    let running = Running::spawn(listeners, |l, shutdown| {
        imgfeat_search_service::run(s, l, shutdown)
    });
    wait_ready(&reqwest::Client::new(), &running.probes).await;
    running
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_on_cql_stores_the_embedded_codes_and_a_search_shard_loads_them() {
    let Some(node) = cql::node("the fleet on CQL") else {
        return;
    };
    let _serial = serial().await;
    let fleet = Fleet::start_on("cql", 26, FleetStore::Cql { node }, QUICK_RETRIES).await;
    let _detector = fleet.spawn_detector();
    fleet.post_ids(&(1..=26).collect::<Vec<u64>>()).await;
    fleet
        .wait_until(Duration::from_secs(300), |s| s.codes == 26)
        .await;
    fleet.assert_coded_once_each(26).await;
    fleet.assert_embedded_codes().await;

    // A search shard loads the version from the keyspace: images i and i + 13 are the
    // same photo, so each finds the other first, at distance 0.
    let search = start_search(&fleet).await;
    let client = reqwest::Client::new();
    for id in 1..=13u64 {
        let res = client
            .get(format!("{}/v1/images/{id}/similar?k=2", search.api))
            .bearer_auth(SEARCH_TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["missing_shards"], serde_json::json!([]), "{body}");
        // The stored image itself is left out of its own neighbours.
        let first = &body["neighbours"][0];
        assert_eq!(
            (first["id"].as_u64(), first["distance"].as_u64()),
            (Some(id + 13), Some(0)),
            "image {id}: {body}"
        );
    }
    search.stop().await;
    fleet.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thirty_second_store_outage_mid_run_loses_nothing() {
    let Some(node) = cql::node("a CQL store outage") else {
        return;
    };
    let _serial = serial().await;
    let proxy = CuttableProxy::start(&node).await;
    let store = FleetStore::Cql {
        node: proxy.addr.to_string(),
    };
    const N: u64 = 104;
    let fleet = Fleet::start_on("cqlout", N, store, OUTAGE_RETRIES).await;
    let _detector = fleet.spawn_detector();
    fleet.post_ids(&(1..=N).collect::<Vec<u64>>()).await;
    // Mid-run: some codes stored, most not.
    fleet
        .wait_until(Duration::from_secs(300), |s| s.codes >= 10)
        .await;
    let before = fleet.snapshot().await;
    assert!(before.codes < N as usize, "the run ended before the outage");
    proxy.outage(Duration::from_secs(30)).await;

    fleet
        .wait_until(Duration::from_secs(600), |s| s.codes == N as usize)
        .await;
    fleet.assert_coded_once_each(N as usize).await;
    fleet.assert_embedded_codes().await;
    fleet.stop().await;
}
