//! Shrink-on-load through the real binary. It changes the numbers, so `imgfeat index`
//! with `[pipeline.decode] shrink_on_load = true` stores under the `.shrink` versions and
//! must give the boxes and codes of that version's Python reference
//! (fixtures/golden_codes_shrink.json, made by scripts/make_shrink_golden.py with
//! Pillow's `draft`): on the 13 photos (one of which, the kite, shrinks by 2) and on a
//! 2400 x 2400 JPEG that shrinks by 8. A photo too small to shrink must keep exactly the
//! default version's box and code (whose agreement with the reference is
//! reference_cli.rs's to check).
//!
//! With `crop_at_extractor_scale` as well, a main object the shrunk pixels cover with
//! fewer than 224 x 224 is read again at the scale that covers that: stored under the
//! `.shrink.region` versions, with the boxes of `.shrink` and the codes of its own
//! reference (fixtures/golden_codes_shrink_region.json, the same script).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{imgfeat_with, index_ok, photo_paths, reference_box, repo, shown_main_box};
use serde_json::Value;

const SHRINK: (&str, &str) = ("IMGFEAT_PIPELINE__DECODE__SHRINK_ON_LOAD", "true");
const REGION: (&str, &str) = ("IMGFEAT_PIPELINE__DECODE__CROP_AT_EXTRACTOR_SCALE", "true");

fn golden() -> Value {
    read_golden("fixtures/golden_codes_shrink.json")
}

fn read_golden(path: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(path)).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The 13 photos and the large JPEG, in one folder.
fn corpus(dir: &Path) -> Vec<PathBuf> {
    let folder = dir.join("photos");
    std::fs::create_dir(&folder).unwrap();
    let mut paths: Vec<PathBuf> = photo_paths();
    paths.push(repo().join("fixtures/imaging/draft/large.jpg"));
    paths
        .iter()
        .map(|p| {
            let to = folder.join(p.file_name().unwrap());
            std::fs::copy(p, &to).unwrap();
            to
        })
        .collect()
}

/// (main box as x1, y1, x2, y2; code hex; code version) as `show` reports them.
fn shown(store: &Path, env: &[(&str, &str)], photo: &Path) -> (Vec<u64>, String, String) {
    let (code, shown, stderr) = imgfeat_with(store, env, &["show", photo.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    (
        shown_main_box(&shown),
        shown["code_hex"].as_str().unwrap().to_owned(),
        shown["code_version"].as_str().unwrap().to_owned(),
    )
}

#[test]
fn shrink_on_load_stores_its_own_references_boxes_and_codes_under_its_own_version() {
    let golden = golden();
    let dir = tempfile::tempdir().unwrap();
    let photos = corpus(dir.path());
    let folder = photos[0].parent().unwrap().to_str().unwrap();
    let (full_store, shrunk_store) = (
        dir.path().join("full.sqlite3"),
        dir.path().join("shrunk.sqlite3"),
    );
    index_ok(&full_store, &[], folder, 14);
    index_ok(&shrunk_store, &[SHRINK], folder, 14);

    let mut shrunk_photos = 0;
    for photo in &photos {
        let name = photo.file_name().unwrap().to_str().unwrap();
        let reference = &golden["photos"][name];
        let (full_box, full_code, full_version) = shown(&full_store, &[], photo);
        let (ours_box, ours_code, version) = shown(&shrunk_store, &[SHRINK], photo);
        assert!(!full_version.contains(".shrink"), "{full_version}");
        assert!(
            version.starts_with("ssd_mobilenetv2_oidv4_24cls@2.shrink+"),
            "{name}: stored under {version}"
        );

        assert_eq!(ours_box, reference_box(reference), "{name}: the main box");
        if reference["shrink"] == 1 {
            // Not shrunk: exactly the default version's result, which reference_cli.rs
            // holds to the reference (where one photo's code may differ in a bit whose
            // projection is a rounding away from zero).
            assert_eq!((&ours_box, &ours_code), (&full_box, &full_code), "{name}");
        } else {
            assert_eq!(
                ours_code,
                reference["code"].as_str().unwrap(),
                "{name}: the code"
            );
            shrunk_photos += 1;
        }
    }
    assert_eq!(shrunk_photos, 2, "the kite (1/2) and the large JPEG (1/8)");
}

#[test]
fn the_crop_read_again_gives_its_references_codes_under_its_own_version() {
    let (shrunk, again) = (
        golden(),
        read_golden("fixtures/golden_codes_shrink_region.json"),
    );
    let dir = tempfile::tempdir().unwrap();
    let photos = corpus(dir.path());
    let folder = photos[0].parent().unwrap().to_str().unwrap();
    let (shrunk_store, store) = (
        dir.path().join("shrunk.sqlite3"),
        dir.path().join("region.sqlite3"),
    );
    index_ok(&shrunk_store, &[SHRINK], folder, 14);
    index_ok(&store, &[SHRINK, REGION], folder, 14);

    let mut read_again = 0;
    for photo in &photos {
        let name = photo.file_name().unwrap().to_str().unwrap();
        let (ours_box, ours_code, version) = shown(&store, &[SHRINK, REGION], photo);
        assert!(
            version.starts_with("ssd_mobilenetv2_oidv4_24cls@2.shrink.region+"),
            "{name}: stored under {version}"
        );
        // The same detection as `.shrink`: only the crop is read again.
        assert_eq!(ours_box, reference_box(&shrunk["photos"][name]), "{name}");
        let reference = again["photos"][name]["code"].as_str().unwrap();
        if reference == shrunk["photos"][name]["code"] {
            // Not read again: exactly `.shrink`'s code, which the test above holds to
            // its reference.
            let (_, shrunk_code, _) = shown(&shrunk_store, &[SHRINK], photo);
            assert_eq!(ours_code, shrunk_code, "{name}: the code");
        } else {
            assert_eq!(ours_code, reference, "{name}: the code");
            read_again += 1;
        }
    }
    // The kite (1/2) and the large JPEG (1/8) hold their main objects in fewer than
    // 224 pixels a side once shrunk: both are read again, at full size.
    assert_eq!(read_again, 2, "photos whose crop was read again");
}
