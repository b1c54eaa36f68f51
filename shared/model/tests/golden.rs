//! Golden tests: our detectors and backbone on the 13 real photos, against the Python
//! reference outputs (onnxruntime 1.31.1, Pillow bilinear resize) in
//! fixtures/golden_outputs.json.
//!
//! Tolerances, stated once: a reference detection must be found with the same label,
//! IoU >= 0.9 with the reference box and |score difference| <= 0.02; only reference
//! detections within 0.02 of the 0.3 threshold may be missing, and an extra detection
//! may appear only within 0.02 of the threshold. Embeddings: L2 norm within 0.5 %, and
//! each of the first 8 values within 0.005 for PNG photos and 0.01 for JPEG ones. Both
//! sides decode JPEGs with libjpeg-turbo, so what is left is the resize's fixed-point
//! rounding, which 4:2:0 chroma gives more to disagree on (measured: PNG max 0.0018,
//! JPEG max 0.0062; with zune-jpeg it was 0.0253).
//!
//! Codes: fixtures/golden_codes.json (a copy of shared/models/golden_codes.json) holds
//! the reference's box and 64-bit code of each photo. From that box, our crop, resize,
//! backbone and SimHash head must give the same code bit for bit, on every photo the
//! reference decoded as we do (it ignored EXIF orientation; we apply it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use imgfeat_core::{BinaryCode, BoundingBox, CropRect, Detection};
use imgfeat_imaging::{DecodeLimits, RgbImage, decode_rgb, resize_to_tensor};
use imgfeat_model::{
    Backbone, Detector, DetectorThresholds, HashHead, Manifest, OrtRuntime, Runtime, SessionOptions,
};
use serde_json::Value;

const SCORE_TOL: f32 = 0.02;
const THRESHOLD: f32 = 0.3;
const PNG_TOL: f32 = 0.005;
const JPEG_TOL: f32 = 0.01;
/// A differing code bit is allowed only where our projection is this close to zero,
/// relative to the photo's median |projection|: a sign the resize's last rounding can
/// flip, not a different code.
const NEAR_ZERO: f32 = 0.02;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn golden() -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/golden_outputs.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn photos() -> Vec<(String, RgbImage)> {
    let mut names: Vec<_> = std::fs::read_dir(repo().join("fixtures/photos"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    assert_eq!(names.len(), 13, "the 13 reference photos");
    names
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, decode_rgb(&bytes, &DecodeLimits::default()).unwrap())
        })
        .collect()
}

fn tensor(images: &[&RgbImage], w: u32, h: u32) -> Vec<f32> {
    let n = (w * h * 3) as usize;
    let mut out = vec![0f32; n * images.len()];
    for (img, chunk) in images.iter().zip(out.chunks_mut(n)) {
        resize_to_tensor(img, CropRect::whole(img.width(), img.height()), w, h, chunk).unwrap();
    }
    out
}

fn options() -> SessionOptions {
    SessionOptions {
        intra_threads: 2,
        ..SessionOptions::default()
    }
}

fn backbone() -> Backbone {
    let rt: Runtime = OrtRuntime::get().unwrap().into();
    Backbone::load(
        &rt,
        &repo().join("models/efficientnet_lite0_imagenet.toml"),
        options(),
    )
    .unwrap()
}

fn detector(manifest: &str) -> Detector {
    let rt: Runtime = OrtRuntime::get().unwrap().into();
    let thresholds = DetectorThresholds {
        score: THRESHOLD,
        nms_iou: if manifest.starts_with("nanodet") {
            0.5
        } else {
            0.45
        },
        max_detections: 100,
    };
    Detector::load(
        &rt,
        &repo().join("models").join(manifest),
        options(),
        Some(thresholds),
    )
    .unwrap()
}

fn check_detections(model: &str, photo: &str, ours: &[Detection], reference: &[Value]) {
    let top: Vec<&Detection> = ours.iter().take(5).collect();
    for r in reference {
        let label = r["label"].as_str().unwrap();
        let score = r["score"].as_f64().unwrap() as f32;
        let b: Vec<f32> = r["box_xyxy"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let rbox = BoundingBox {
            x1: b[0],
            y1: b[1],
            x2: b[2],
            y2: b[3],
        };
        let found = ours.iter().find(|d| {
            d.label == label && d.bbox.iou(&rbox) >= 0.9 && (d.score - score).abs() <= SCORE_TOL
        });
        assert!(
            found.is_some() || score < THRESHOLD + SCORE_TOL,
            "{model} {photo}: reference {label} {score} {b:?} not found in {ours:#?}"
        );
    }
    // Anything we report in the top 5 that the reference doesn't have must be marginal.
    for d in top {
        let in_reference = reference.iter().any(|r| {
            r["label"].as_str() == Some(d.label.as_str())
                && (r["score"].as_f64().unwrap() as f32 - d.score).abs() <= SCORE_TOL
        });
        assert!(
            in_reference || d.score < THRESHOLD + SCORE_TOL || reference.len() == 5,
            "{model} {photo}: extra detection {d:?}"
        );
    }
}

fn golden_detectors(manifest: &str, onnx: &str) {
    let golden = golden();
    let mut det = detector(manifest);
    let (w, h) = det.input_size();
    let mut compared = 0;
    for (name, img) in photos() {
        let input = tensor(&[&img], w, h);
        let ours = det
            .detect(&input, &[(img.width(), img.height())])
            .unwrap()
            .remove(0);
        let reference = golden["detectors"][onnx][&name].as_array().unwrap();
        check_detections(manifest, &name, &ours, reference);
        compared += reference.len();
    }
    assert!(
        compared >= 10,
        "compared only {compared} reference detections"
    );
}

#[test]
fn ssd_matches_the_python_reference_on_all_photos() {
    golden_detectors(
        "ssd_mobilenetv2_oidv4_24cls.toml",
        "ssd_mobilenetv2_oidv4_24cls.onnx",
    );
}

#[test]
fn nanodet_matches_the_python_reference_on_all_photos() {
    golden_detectors("nanodet_m_416_coco.toml", "nanodet_m_416_coco.onnx");
}

#[test]
fn backbone_embeddings_match_the_python_reference() {
    let golden = golden();
    let mut backbone = backbone();
    let (w, h) = backbone.input_size();
    for (name, img) in photos() {
        let emb = backbone.embed(&tensor(&[&img], w, h), 1).unwrap().remove(0);
        assert_eq!(emb.len(), 1280);
        let reference = &golden["backbones"]["efficientnet_lite0_imagenet.onnx"][&name];
        let norm = emb.iter().map(|v| v * v).sum::<f32>().sqrt();
        let ref_norm = reference["embedding_l2norm"].as_f64().unwrap() as f32;
        assert!(
            (norm - ref_norm).abs() <= 0.005 * ref_norm,
            "{name}: norm {norm} vs {ref_norm}"
        );
        for (i, r) in reference["embedding_first8"]
            .as_array()
            .unwrap()
            .iter()
            .enumerate()
        {
            let r = r.as_f64().unwrap() as f32;
            println!("{name}: embedding[{i}] |diff| {}", (emb[i] - r).abs());
            let tol = if name.ends_with(".png") {
                PNG_TOL
            } else {
                JPEG_TOL
            };
            assert!(
                (emb[i] - r).abs() <= tol,
                "{name}: embedding[{i}] {} vs {r}",
                emb[i]
            );
        }
    }
}

#[test]
fn batch_of_8_gives_the_same_results_as_batch_of_1() {
    let mut det = detector("ssd_mobilenetv2_oidv4_24cls.toml");
    let (w, h) = det.input_size();
    let photos = photos();
    let eight: Vec<&RgbImage> = photos.iter().take(8).map(|(_, i)| i).collect();
    let sizes: Vec<(u32, u32)> = eight.iter().map(|i| (i.width(), i.height())).collect();
    let batched = det.detect(&tensor(&eight, w, h), &sizes).unwrap();
    let mut any = 0;
    for (i, img) in eight.iter().enumerate() {
        let single = det
            .detect(&tensor(&[img], w, h), &sizes[i..=i])
            .unwrap()
            .remove(0);
        assert_eq!(batched[i].len(), single.len(), "photo {i}");
        for (a, b) in batched[i].iter().zip(&single) {
            assert_eq!(a.label, b.label);
            assert!(
                (a.score - b.score).abs() < 1e-4 && a.bbox.iou(&b.bbox) > 0.999,
                "{a:?} vs {b:?}"
            );
            any += 1;
        }
    }
    assert!(any > 0, "the photos produced detections to compare");

    let mut backbone = backbone();
    let (w, h) = backbone.input_size();
    let batched = backbone.embed(&tensor(&eight, w, h), 8).unwrap();
    for (i, img) in eight.iter().enumerate() {
        let single = backbone.embed(&tensor(&[img], w, h), 1).unwrap().remove(0);
        let max = single
            .iter()
            .zip(&batched[i])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(max < 1e-3, "photo {i}: max |diff| {max}");
    }
}

#[test]
fn codes_match_the_python_reference_bit_for_bit() {
    let text = std::fs::read_to_string(repo().join("fixtures/golden_codes.json")).unwrap();
    let golden: Value = serde_json::from_str(&text).unwrap();
    let mut backbone = backbone();
    let head_manifest = Manifest::load(&repo().join("models/simhash64_effnet_lite0.toml")).unwrap();
    let head = HashHead::load(&head_manifest).unwrap();
    let (w, h) = backbone.input_size();
    let mut report = Vec::new();
    let (mut compared, mut equal, mut near_zero) = (0, 0, 0);
    for (name, img) in photos() {
        let reference = &golden["photos"][&name];
        let b: Vec<u32> = reference["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let (x2, y2) = (b[2].min(img.width()), b[3].min(img.height()));
        let region = CropRect {
            x: b[0],
            y: b[1],
            width: x2 - b[0],
            height: y2 - b[1],
        };
        let mut input = vec![0f32; (w * h * 3) as usize];
        resize_to_tensor(&img, region, w, h, &mut input).unwrap();
        let embedding = backbone.embed(&input, 1).unwrap().remove(0);
        let projections = head.project(&embedding).unwrap();
        let ours = BinaryCode::from_signs(&projections).unwrap();
        let code = reference["code"].as_str().unwrap();
        let theirs = BinaryCode::from_bytes(64, hex::decode(code).unwrap()).unwrap();
        let distance = ours.hamming(&theirs).unwrap();
        // How far from its sign change each differing bit's projection is, against the
        // photo's median |projection|.
        let mut mags: Vec<f32> = projections.iter().map(|p| p.abs()).collect();
        mags.sort_by(f32::total_cmp);
        let median = mags[mags.len() / 2];
        let margins: Vec<f32> = (0..64)
            .filter(|&j| ours.bit(j) != theirs.bit(j))
            .map(|j| projections[j].abs() / median)
            .collect();
        report.push(format!(
            "{name}: {distance} bits, margins {margins:?} of the median |projection| (exif {})",
            reference["exif_orientation"]
        ));
        if reference["exif_orientation"].as_u64() == Some(1) {
            compared += 1;
            equal += usize::from(distance == 0);
            near_zero += usize::from(margins.iter().all(|m| *m < NEAR_ZERO));
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        compared >= 12,
        "only {compared} photos decode as the reference did"
    );
    assert_eq!(near_zero, compared, "codes differ:\n{}", report.join("\n"));
    assert!(
        equal + 1 >= compared,
        "more than one photo differs:\n{}",
        report.join("\n")
    );
}
