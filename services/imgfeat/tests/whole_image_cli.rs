//! A whole-image detector version (`code_from = "whole_image"` in its manifest) through
//! the real binary: its codes are stored beside the main-object version's under a name
//! of their own, hash the whole image whatever the detector finds, and keep the
//! detections. Where the main-object version itself fell back to the whole image, both
//! versions hashed the same pixels, so their codes must be equal bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{imgfeat_with, photo_paths};

const WHOLE: (&str, &str) = (
    "IMGFEAT_PIPELINE__MODELS__DETECTOR",
    "ssd_mobilenetv2_oidv4_24cls_whole_image.toml",
);

#[test]
fn a_whole_image_version_codes_whole_images_beside_the_main_object_version() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite3");
    let photos = photo_paths();
    let folder = photos[0].parent().unwrap().to_str().unwrap();
    for env in [&[][..], &[WHOLE][..]] {
        let (code, summary, stderr) = imgfeat_with(&store, env, &["index", folder]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(summary["processed"], 13, "{summary}");
    }

    let (mut boxed, mut same_pixels) = (0, 0);
    for photo in &photos {
        let photo = photo.to_str().unwrap();
        let (code, main, stderr) = imgfeat_with(&store, &[], &["show", photo]);
        assert_eq!(code, 0, "{stderr}");
        let (code, whole, stderr) = imgfeat_with(&store, &[WHOLE], &["show", photo]);
        assert_eq!(code, 0, "{stderr}");

        assert!(
            whole["code_version"]
                .as_str()
                .unwrap()
                .starts_with("ssd_mobilenetv2_oidv4_24cls_whole_image@2+"),
            "{}",
            whole["code_version"]
        );
        assert_ne!(main["code_version"], whole["code_version"]);
        let (d, w) = (&whole["detection"], &main["detection"]);
        let full = serde_json::json!({
            "x": 0, "y": 0, "width": d["image_width"], "height": d["image_height"]
        });
        assert_eq!(d["main"]["crop"], full, "{photo}");
        assert!(d["main"]["detection"].is_null(), "{photo}");
        // The same network found the same objects; only the code's input differs.
        assert_eq!(d["detections"], w["detections"], "{photo}");

        if w["main"]["crop"] == full {
            same_pixels += 1;
            assert_eq!(main["code_hex"], whole["code_hex"], "{photo}");
        } else {
            boxed += 1;
        }
    }
    // The 13 photos have both cases, so both halves of the check ran.
    assert!(
        boxed > 0 && same_pixels > 0,
        "{boxed} boxed, {same_pixels} whole"
    );
}
