//! `imgfeat similar --radius` and `imgfeat dedup` on 128-bit codes at the copy radius
//! (R = 27), through the real binary over a real SQLite store holding planted copies:
//! `search.radius_method` picks the method by the rule the search service's shards
//! follow (`auto`: the approximate probe for a radius query, the banded join for dedup;
//! `exact`: exact multi-index hashing), and the JSON says which ran.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::{imgfeat_with, repo};
use imgfeat_core::ModelVersion;
use imgfeat_core::ports::ResultStore;
use imgfeat_store::SqliteStore;
use imgfeat_testkit::codes::{Rng, code_records, distance};
use serde_json::Value;

/// The shipped 128-bit head: the configured code version has 128-bit codes.
const HEAD: &str = "deepbit128_whole_effnet_lite0.toml";
const RADIUS: u32 = 27;
/// The probe's image.
const PROBE: u64 = 7;
const BACKGROUND: u64 = 3_000;
/// Copies of the probe within a few bits (always found) and exactly R bits away (the
/// hardest case: the approximate probe finds each with a probability of about 0.8+).
const NEAR: u64 = 40;
const EDGE: u64 = 160;

fn env(models: &str, method: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("IMGFEAT_PIPELINE__MODELS__DIR", models.to_string()),
        ("IMGFEAT_PIPELINE__MODELS__HASH_HEAD", HEAD.to_string()),
        ("IMGFEAT_SEARCH__RADIUS_METHOD", method.to_string()),
    ]
}

fn run(store: &Path, models: &str, method: &'static str, args: &[&str]) -> Value {
    let env = env(models, method);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (code, out, stderr) = imgfeat_with(store, &env, args);
    assert_eq!(code, 0, "{args:?} ({method}): {stderr}");
    out
}

/// The code version the binary stores and searches under with the 128-bit head.
fn version(models: &str) -> ModelVersion {
    let vars = env(models, "auto")
        .into_iter()
        .map(|(k, v)| (k.to_string(), v));
    let settings: imgfeat_app::AppSettings = imgfeat_app::settings_from_vars(vars).unwrap();
    let (_, version) = settings.pipeline.versions().unwrap();
    assert!(version.as_str().contains("deepbit128"), "{version}");
    version
}

/// (id, distance) of every neighbour in an answer.
fn hits(answer: &Value) -> BTreeSet<(u64, u32)> {
    answer["neighbours"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["image_id"].as_u64().unwrap(),
                n["distance"].as_u64().unwrap() as u32,
            )
        })
        .collect()
}

fn groups(report: &Value) -> BTreeSet<Vec<u64>> {
    report["duplicate_groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut m: Vec<u64> = g["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m.as_u64().unwrap())
                .collect();
            m.sort_unstable();
            m
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_and_dedup_follow_the_radius_method_and_say_which_ran() {
    let models = repo().join("models").display().to_string();
    let version = version(&models);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store.sqlite3");

    let mut rng = Rng(0x5eed_1280_c0de_0027);
    let probe = rng.code128();
    let mut codes = vec![(PROBE, probe)];
    for id in 0..BACKGROUND {
        codes.push((1_000 + id, rng.code128()));
    }
    for i in 0..NEAR + EDGE {
        let d = if i < NEAR { (i % 8) as u32 } else { RADIUS };
        codes.push((100_000 + i, rng.copy_at(&probe, d)));
    }
    let store = SqliteStore::open(&path).unwrap();
    let records = code_records(&version, &codes);
    store.put_codes(&records).await.unwrap();
    drop(store);
    // The scan's answer: every other code within R of the probe.
    let within = |r: u32| -> BTreeSet<(u64, u32)> {
        codes
            .iter()
            .filter(|(id, _)| *id != PROBE)
            .map(|(id, c)| (*id, distance(&probe, c)))
            .filter(|(_, d)| *d <= r)
            .collect()
    };
    assert_eq!(
        within(RADIUS).len() as u64,
        NEAR + EDGE,
        "no random code that near"
    );

    let similar = |method: &'static str, radius: u32| {
        let r = radius.to_string();
        let id = PROBE.to_string();
        run(
            &path,
            &models,
            method,
            &["similar", &id, "--radius", &r, "--k", "1000"],
        )
    };

    // auto at R = 27 on 128-bit codes: the approximate probe, as a shard would answer.
    let approx = similar("auto", RADIUS);
    assert_eq!(approx["method"], "approximate", "{approx}");
    assert_eq!(approx["indexed_codes"], codes.len(), "{approx}");
    let certified = approx["certified_radius"].as_u64().unwrap() as u32;
    assert!(certified < RADIUS, "{approx}");
    let got = hits(&approx);
    let all = within(RADIUS);
    // Never a hit beyond R or a wrong distance; everything within the certified radius;
    // and some of the copies exactly R bits away missed: the probe did not look as far
    // as the exact one does.
    assert!(got.is_subset(&all), "{approx}");
    assert!(within(certified).is_subset(&got), "{approx}");
    assert!(
        got.len() < all.len(),
        "the approximate probe found all {} codes within R: it ran exact",
        all.len()
    );
    assert!(got.len() as u64 >= NEAR + EDGE / 2, "{} found", got.len());

    // exact: the scan's answer, every copy at R included.
    let exact = similar("exact", RADIUS);
    assert_eq!(exact["method"], "exact", "{exact}");
    assert_eq!(exact["certified_radius"], RADIUS, "{exact}");
    assert_eq!(hits(&exact), all);

    // auto up to 16 bits is exact too.
    let small = similar("auto", 16);
    assert_eq!(small["method"], "exact", "{small}");
    assert_eq!(small["certified_radius"], 16, "{small}");
    assert_eq!(hits(&small), within(16));

    // k-NN has no method but exact.
    let knn = run(
        &path,
        &models,
        "auto",
        &["similar", &PROBE.to_string(), "--k", "5"],
    );
    assert_eq!(knn["method"], "exact", "{knn}");
    assert!(knn["certified_radius"].is_null(), "{knn}");

    // dedup: the banded join under auto, one query per code under exact; the same groups,
    // the probe's holding all its copies.
    let r = RADIUS.to_string();
    let joined = run(&path, &models, "auto", &["dedup", "--radius", &r]);
    assert_eq!(joined["method"], "banded_join", "{joined}");
    let queried = run(&path, &models, "exact", &["dedup", "--radius", &r]);
    assert_eq!(queried["method"], "radius_queries", "{queried}");
    assert_eq!(groups(&joined), groups(&queried));
    let mut want: Vec<u64> = all.iter().map(|(id, _)| *id).collect();
    want.push(PROBE);
    want.sort_unstable();
    assert!(groups(&joined).contains(&want), "{joined}");
    // The default radius for 128-bit codes (16) is no copy scale.
    let default = run(&path, &models, "auto", &["dedup"]);
    assert_eq!(default["radius"], 16, "{default}");
    assert_eq!(default["method"], "radius_queries", "{default}");
}
