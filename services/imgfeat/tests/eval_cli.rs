//! `imgfeat eval` through the real binary on the shipped photos: real models, real
//! copies, the JSON report's structure and loose sanity (not tuned numbers).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{imgfeat, repo};

#[test]
fn eval_reports_recall_histograms_and_the_radius_for_the_shipped_photos() {
    let dir = tempfile::tempdir().unwrap();
    let photos = repo().join("fixtures/photos");
    let plot = dir.path().join("hist.png");
    let (code, report, stderr) = imgfeat(
        &dir.path().join("unused.sqlite3"),
        &[
            "eval",
            photos.to_str().unwrap(),
            "--copies",
            "2",
            "--seed",
            "5",
            "--quiet",
            "--plot",
            plot.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(report["copies_per_photo"], 2);
    let versions = report["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1, "one configured version");
    let v = &versions[0];
    assert_eq!(v["bits"], 64);
    assert_eq!(v["photos"], 13);
    assert_eq!(v["copies"], 26);
    assert_eq!(v["uncoded"], 0);
    // Every pair of codes from two different photos: 39 codes, 3 per photo.
    assert_eq!(v["distinct_pairs"], 39 * 38 / 2 - 13 * 3);
    let hist = |name: &str| -> Vec<u64> {
        v[name]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap())
            .collect()
    };
    let (copies, distinct) = (hist("copy_histogram"), hist("distinct_histogram"));
    assert_eq!(copies.len(), 65);
    assert_eq!(copies.iter().sum::<u64>(), 26);
    assert_eq!(
        distinct.iter().sum::<u64>(),
        v["distinct_pairs"].as_u64().unwrap()
    );

    let r = &v["retrieval"];
    assert_eq!(r["queries"], 26);
    assert!(r["recall_at_10"].as_f64().unwrap() >= 0.8, "{r}");
    assert!(r["recall_at_1"].as_f64().unwrap() <= r["recall_at_10"].as_f64().unwrap());
    assert!(r["map"].as_f64().unwrap() > 0.5, "{r}");

    let rows = v["per_transform"].as_array().unwrap();
    assert_eq!(rows.len(), 9, "every transform kind is used: {rows:?}");
    let per_row: u64 = rows
        .iter()
        .map(|t| t["retrieval"]["queries"].as_u64().unwrap())
        .sum();
    assert_eq!(per_row, 26);

    // The 99 % radius keeps at least 99 % of the copies, and one less would not.
    let r99 = v["radius_99"]["radius"].as_u64().unwrap() as usize;
    let kept = |r: usize| copies[..=r].iter().sum::<u64>() as f64 / 26.0;
    assert!(kept(r99) >= 0.99);
    assert!(r99 == 0 || kept(r99 - 1) < 0.99);
    // Copies sit nearer their originals than distinct photos sit to each other.
    let median = |h: &[u64]| {
        let half = h.iter().sum::<u64>().div_ceil(2);
        let mut acc = 0;
        h.iter().position(|n| {
            acc += n;
            acc >= half
        })
    };
    assert!(median(&copies) < median(&distinct));

    let png = image::open(&plot).unwrap();
    assert!(png.width() > 100 && png.height() > 100);
}

#[test]
fn the_same_seed_gives_the_same_report() {
    let dir = tempfile::tempdir().unwrap();
    let photos = repo().join("fixtures/photos");
    let args = |seed: &'static str| {
        [
            "eval",
            photos.to_str().unwrap(),
            "--copies",
            "1",
            "--limit",
            "4",
            "--seed",
            seed,
            "--quiet",
        ]
        .map(str::to_string)
    };
    let run = |seed| {
        let a = args(seed);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        let (code, report, stderr) = imgfeat(&dir.path().join("unused.sqlite3"), &a);
        assert_eq!(code, 0, "{stderr}");
        report["versions"][0].clone()
    };
    let first = run("9");
    assert_eq!(first["photos"], 4);
    assert_eq!(first, run("9"));
}
