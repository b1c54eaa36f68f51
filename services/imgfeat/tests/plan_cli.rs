//! `imgfeat plan` measures what it plans with on the store it is given: the per-image
//! bytes of the indexed photos, their crops re-encoded at the cap, and a search index.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{imgfeat, repo};

#[test]
fn plan_measures_the_store_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite3");
    let (code, _, stderr) = imgfeat(&store, &["plan", "--images", "1000"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("no store at"), "{stderr}");

    let photos = repo().join("fixtures/photos");
    let (code, _, stderr) = imgfeat(&store, &["index", photos.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 0, "{stderr}");
    let (code, plan, stderr) = imgfeat(
        &store,
        &[
            "plan",
            "--images",
            "1000",
            "--per-day",
            "86400",
            "--shards",
            "2",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let m = &plan["per_image"];
    assert_eq!(m["sampled"], 13, "{plan}");
    let file = std::fs::metadata(&store).unwrap().len() as f64;
    let per_image = m["file_bytes"].as_f64().unwrap();
    assert!((per_image - file / 13.0).abs() < 1.0, "{plan}");
    let (crop, capped) = (
        m["crop_bytes"].as_f64().unwrap(),
        m["crop_bytes_capped"].as_f64().unwrap(),
    );
    // Some main objects of the fixtures are longer than 512 px.
    assert!(capped < crop, "{plan}");
    // A year: 1000 + 365 days of 86 400 uploads.
    assert_eq!(plan["images_after_a_year"], 1000 + 365 * 86_400);
    // 64-bit codes: the code and the ID alone are 16 bytes.
    assert!(
        plan["search_bytes_per_code"].as_f64().unwrap() > 16.0,
        "{plan}"
    );
    // Uploads at 1/s average, 3/s at peak, beside the backfill over 30 days.
    let rate = plan["images_per_sec"].as_f64().unwrap();
    assert!(
        (rate - (3.0 + 1000.0 / (30.0 * 86_400.0))).abs() < 1e-9,
        "{plan}"
    );
}
