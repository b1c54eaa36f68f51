//! `[pipeline.detector] crop_encoding = "lossless"` through the real binary: the stored
//! crop of every JPEG photo is cut from its file (another size than the re-encoded
//! crop), a PNG's is re-encoded (the same as the default's), and no box or code changes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{imgfeat_with, index_ok, photo_paths};
use serde_json::Value;

const LOSSLESS: (&str, &str) = ("IMGFEAT_PIPELINE__DETECTOR__CROP_ENCODING", "lossless");

fn show(store: &Path, env: &[(&str, &str)], photo: &Path) -> Value {
    let (code, shown, stderr) = imgfeat_with(store, env, &["show", photo.to_str().unwrap()]);
    assert_eq!(code, 0, "{stderr}");
    shown
}

#[test]
fn lossless_crops_are_cut_from_jpeg_files_and_change_no_code() {
    let dir = tempfile::tempdir().unwrap();
    let photos = photo_paths();
    let folder = photos[0].parent().unwrap().to_str().unwrap();
    let (reencoded, lossless) = (
        dir.path().join("re.sqlite3"),
        dir.path().join("cut.sqlite3"),
    );
    index_ok(&reencoded, &[], folder, 13);
    index_ok(&lossless, &[LOSSLESS], folder, 13);
    let mut cut = 0;
    for photo in &photos {
        let name = photo.file_name().unwrap().to_string_lossy();
        let (a, b) = (
            show(&reencoded, &[], photo),
            show(&lossless, &[LOSSLESS], photo),
        );
        assert_eq!(a["code_hex"], b["code_hex"], "{name}");
        assert_eq!(a["code_version"], b["code_version"], "{name}");
        assert_eq!(a["detection"]["main"], b["detection"]["main"], "{name}");
        let sizes = (&a["crop_jpeg_bytes"], &b["crop_jpeg_bytes"]);
        if name.ends_with(".jpg") {
            assert_ne!(
                sizes.0, sizes.1,
                "{name}: the crop was not cut from the file"
            );
            cut += 1;
        } else {
            assert_eq!(sizes.0, sizes.1, "{name}: a PNG's crop is re-encoded");
        }
    }
    assert_eq!(cut, 9);
}
