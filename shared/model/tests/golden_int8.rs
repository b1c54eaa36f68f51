//! Golden tests of the INT8 models (models/*_int8.toml) on the 13 real photos, against
//! the Python reference of the same INT8 files (onnxruntime 1.31.1, Pillow bilinear
//! resize, EXIF orientation applied) in fixtures/golden_int8.json, written by
//! tools/quantize/make_golden.py.
//!
//! Tolerances, measured: both sides run the same INT8 kernels, but the resize's last
//! rounding (ours vs Pillow's) moves activations across quantization steps, and the INT8
//! models amplify it: on darknet_dog.jpg our Bicycle scores 0.677 against the Python
//! reference's 0.707 (fp32: 0.670), and the first 16 embedding values differ by up to
//! 0.05 (fp32 model: 0.125). So detections are held loosely (a reference detection
//! scoring >= 0.35 must be found with its label, IoU >= 0.85 (darknet_kite's person: 0.896)
//! and |score difference| <= 0.05;
//! an extra one must score under 0.45, the main-object floor plus that margin; the main
//! object must be the reference's), and the embeddings relatively: over the 13 photos, our
//! mean max |difference| to the INT8 reference must be under half the fp32 model's (from
//! the reference file), each photo under 0.15. Loading the fp32 file under the INT8
//! manifest (its sha256 changed to match) fails the embedding test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use imgfeat_core::{BoundingBox, CropRect};
use imgfeat_imaging::{DecodeLimits, RgbImage, decode_rgb, resize_to_tensor};
use imgfeat_model::postprocess::choose_main_object;
use imgfeat_model::{
    Backbone, Detector, DetectorThresholds, MainObjectRule, Manifest, OrtRuntime, SessionOptions,
};
use serde_json::Value;

const DETECTOR: &str = "ssd_mobilenetv2_oidv4_24cls_int8.toml";
const BACKBONE: &str = "efficientnet_lite0_imagenet_int8.toml";
const THRESHOLD: f32 = 0.3;
const SCORE_TOL: f32 = 0.05;
const BOX_IOU: f32 = 0.85;
/// Reference detections below this may be missing: the threshold plus the margin.
const MAY_MISS: f32 = 0.35;
/// Extra detections must score under this: the main-object floor plus the margin.
const EXTRA_BELOW: f32 = 0.45;
const PHOTO_TOL: f32 = 0.15;
/// Our mean max |difference| against the fp32 model's, both to the INT8 reference.
const RELATIVE_TOL: f32 = 0.5;
const NORM_TOL: f32 = 0.03;

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn reference() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/golden_int8.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The reference's photos, decoded as the pipeline decodes them.
fn photo(name: &str) -> RgbImage {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/photos")
        .join(name);
    decode_rgb(&std::fs::read(path).unwrap(), &DecodeLimits::default()).unwrap()
}

fn input(img: &RgbImage, region: CropRect, (w, h): (u32, u32)) -> Vec<f32> {
    let mut out = vec![0f32; (w * h * 3) as usize];
    resize_to_tensor(img, region, w, h, &mut out).unwrap();
    out
}

fn one_thread() -> SessionOptions {
    SessionOptions {
        intra_threads: 1,
        ..SessionOptions::default()
    }
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn int8_models_are_their_own_versions() {
    for (int8, fp32) in [
        (DETECTOR, "ssd_mobilenetv2_oidv4_24cls.toml"),
        (BACKBONE, "efficientnet_lite0_imagenet.toml"),
    ] {
        let a = Manifest::load(&models().join(int8)).unwrap();
        let b = Manifest::load(&models().join(fp32)).unwrap();
        assert_ne!(
            a.model_version().unwrap(),
            b.model_version().unwrap(),
            "{int8}: results must be stored apart from the fp32 model's"
        );
    }
}

#[test]
fn int8_detector_matches_its_python_reference() {
    let reference = reference();
    let thresholds = DetectorThresholds {
        score: THRESHOLD,
        nms_iou: 0.45,
        max_detections: 20,
    };
    let mut det = Detector::load(
        &OrtRuntime::get().unwrap(),
        &models().join(DETECTOR),
        one_thread(),
        Some(thresholds),
    )
    .unwrap();
    let mut compared = 0;
    for (name, r) in reference["photos"].as_object().unwrap() {
        let img = photo(name);
        let whole = CropRect::whole(img.width(), img.height());
        let ours = det
            .detect(
                &input(&img, whole, det.input_size()),
                &[(img.width(), img.height())],
            )
            .unwrap()
            .remove(0);
        for d in r["detections"].as_array().unwrap() {
            let (label, score) = (
                d["label"].as_str().unwrap(),
                d["score"].as_f64().unwrap() as f32,
            );
            let b = floats(&d["box_xyxy"]);
            let rbox = BoundingBox {
                x1: b[0],
                y1: b[1],
                x2: b[2],
                y2: b[3],
            };
            let found = ours.iter().any(|o| {
                o.label == label
                    && o.bbox.iou(&rbox) >= BOX_IOU
                    && (o.score - score).abs() <= SCORE_TOL
            });
            assert!(
                found || score < MAY_MISS,
                "{name}: reference {label} {score} {b:?} not found in {ours:#?}"
            );
            compared += 1;
        }
        // The main object, as the pipeline chooses it, has the reference's box.
        let main = choose_main_object(&ours, img.width(), img.height(), &MainObjectRule::default());
        let m: Vec<f32> = floats(&r["main_box"]);
        let c = main.crop;
        let (ours_box, ref_box) = (
            BoundingBox {
                x1: c.x as f32,
                y1: c.y as f32,
                x2: (c.x + c.width) as f32,
                y2: (c.y + c.height) as f32,
            },
            BoundingBox {
                x1: m[0],
                y1: m[1],
                x2: m[2],
                y2: m[3],
            },
        );
        // 0.85 like the detections above: measured 0.88 on darknet_kite, where INT8
        // magnifies the small Rust/Pillow resize difference.
        assert!(
            ours_box.iou(&ref_box) >= 0.85,
            "{name}: main object {c:?} vs reference {m:?}"
        );
        for o in &ours {
            let known = r["detections"].as_array().unwrap().iter().any(|d| {
                d["label"].as_str() == Some(o.label.as_str())
                    && (d["score"].as_f64().unwrap() as f32 - o.score).abs() <= SCORE_TOL
            });
            assert!(
                known || o.score < EXTRA_BELOW,
                "{name}: extra detection {o:?}"
            );
        }
    }
    assert!(compared >= 10, "compared only {compared} detections");
}

#[test]
fn int8_backbone_matches_its_python_reference_whole_and_cropped() {
    let reference = reference();
    let rt = OrtRuntime::get().unwrap();
    let mut backbone = Backbone::load(&rt, &models().join(BACKBONE), one_thread()).unwrap();
    let size = backbone.input_size();
    let (mut ours_total, mut fp32_total) = (0f32, 0f32);
    let photos = reference["photos"].as_object().unwrap();
    for (name, r) in photos {
        let img = photo(name);
        let whole = CropRect::whole(img.width(), img.height());
        let emb = backbone
            .embed(&input(&img, whole, size), 1)
            .unwrap()
            .remove(0);
        let norm = emb.iter().map(|v| v * v).sum::<f32>().sqrt();
        let ref_norm = r["embedding_l2norm"].as_f64().unwrap() as f32;
        assert!(
            (norm - ref_norm).abs() <= NORM_TOL * ref_norm,
            "{name}: norm {norm} vs {ref_norm}"
        );
        let (first, fp32) = (
            floats(&r["embedding_first16"]),
            floats(&r["fp32_embedding_first16"]),
        );
        let (d, d_fp32) = (max_diff(&emb[..16], &first), max_diff(&fp32, &first));
        println!("{name}: whole image max |diff| {d} (fp32 model: {d_fp32})");
        assert!(d <= PHOTO_TOL, "{name}: {:?} vs {first:?}", &emb[..16]);
        ours_total += d;
        fp32_total += d_fp32;

        // The reference's main object (the detector test checks we choose the same).
        let b: Vec<u32> = r["main_box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as u32)
            .collect();
        let region = CropRect {
            x: b[0],
            y: b[1],
            width: b[2] - b[0],
            height: b[3] - b[1],
        };
        let crop = backbone
            .embed(&input(&img, region, size), 1)
            .unwrap()
            .remove(0);
        let expected = floats(&r["crop_embedding_first16"]);
        let d = max_diff(&crop[..16], &expected);
        println!("{name}: main-object crop max |diff| {d}");
        assert!(
            d <= PHOTO_TOL,
            "{name}: crop {:?} vs {expected:?}",
            &crop[..16]
        );
    }
    println!("mean max |diff|: ours {ours_total}/13, the fp32 model's {fp32_total}/13");
    assert!(
        ours_total <= RELATIVE_TOL * fp32_total,
        "not nearer the INT8 reference than the fp32 model is: {ours_total} vs {fp32_total} (sums)"
    );
}
