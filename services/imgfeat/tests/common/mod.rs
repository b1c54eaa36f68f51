//! What the CLI tests share: running the real binary, the shipped photos, and copies of
//! them as a user would upload them again.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

use image::codecs::jpeg::JpegEncoder;
use serde_json::Value;

pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn imgfeat(store: &Path, args: &[&str]) -> (i32, Value, String) {
    imgfeat_with(store, &[], args)
}

/// [`imgfeat`] with extra environment, e.g. `IMGFEAT_PIPELINE__MODELS__DETECTOR`.
pub fn imgfeat_with(store: &Path, env: &[(&str, &str)], args: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_imgfeat"))
        .envs(env.iter().copied())
        .arg("--store")
        .arg(store)
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout).unwrap_or(Value::Null);
    (out.status.code().unwrap_or(-1), json, stderr)
}

/// `imgfeat index FOLDER` into `store` under `env`, which must succeed and process
/// `processed` images.
pub fn index_ok(store: &Path, env: &[(&str, &str)], folder: &str, processed: u64) {
    let (code, summary, stderr) = imgfeat_with(store, env, &["index", folder]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["processed"], processed, "{summary}");
}

/// A transformed copy as a user would upload it again: shifted by a 4 % border crop,
/// scaled to 0.6x and re-encoded as JPEG quality 60.
pub fn degraded_copy(original: &Path, out: &Path) {
    let img = image::open(original).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let (x0, y0) = (w * 4 / 100, h * 4 / 100);
    let shifted = image::imageops::crop_imm(&img, x0, y0, w - x0, h - y0).to_image();
    let small = image::imageops::resize(
        &shifted,
        (shifted.width() * 6 / 10).max(1),
        (shifted.height() * 6 / 10).max(1),
        image::imageops::FilterType::Triangle,
    );
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, 60)
        .encode_image(&small)
        .unwrap();
    std::fs::write(out, bytes).unwrap();
}

pub fn photo_paths() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures/photos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

/// The main box `show --json` reports, as the reference writes boxes: x1, y1, x2, y2.
pub fn shown_main_box(shown: &Value) -> Vec<u64> {
    let crop = &shown["detection"]["main"]["crop"];
    let n = |k: &str| crop[k].as_u64().unwrap();
    vec![n("x"), n("y"), n("x") + n("width"), n("y") + n("height")]
}

/// A golden file's `box` of one photo: x1, y1, x2, y2.
pub fn reference_box(reference: &Value) -> Vec<u64> {
    reference["box"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}
