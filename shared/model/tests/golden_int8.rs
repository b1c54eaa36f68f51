//! Golden tests of the INT8 pairs on the 13 real photos, against the Python reference of
//! the same INT8 files (onnxruntime 1.31.1, Pillow bilinear resize, EXIF orientation
//! applied) written by tools/quantize/make_golden.py: models/*_int8.toml (7-bit weights,
//! any x86-64) against fixtures/golden_int8.json, and models/*_int8_vnni.toml (8-bit
//! weights) against fixtures/golden_int8_vnni.json, skipped on CPUs without VNNI or AMX.
//! Both pairs are held to the same tolerances.
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
//!
//! Measured (the test prints them; AVX-512 VNNI machine, 2026-11-30): int8 worst box IoU
//! 0.878, |score difference| 0.040, main-object IoU 0.884, embeddings 0.48 against the
//! fp32 model's 2.34 (0.21 of it), worst photo 0.080; int8_vnni 0.907, 0.027, 0.934,
//! 0.46 against 1.00 (0.45: its fp32 model is nearer, the 8-bit pair being closer to
//! fp32), worst photo 0.086. Within the tolerances above, which stay as they were. The
//! int8_vnni backbone's version 2 (first 2 convs fp32, not 8): 0.56 against 1.47 (0.38),
//! worst photo 0.122 (darknet_kite, whole image).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use imgfeat_core::{BoundingBox, CropRect};
use imgfeat_imaging::{DecodeLimits, RgbImage, decode_rgb, resize_to_tensor};
use imgfeat_model::postprocess::choose_main_object;
use imgfeat_model::{
    Backbone, Detector, DetectorThresholds, MainObjectRule, Manifest, OrtRuntime, Runtime,
    SessionOptions,
};
use serde_json::Value;

/// One INT8 pair and its Python reference.
struct Pair {
    detector: &'static str,
    backbone: &'static str,
    reference: &'static str,
    /// 8-bit weights: only CPUs whose int8 dot products accumulate in int32 (VNNI, AMX)
    /// compute what the reference holds; MLAS's AVX2 u8s8 kernels saturate.
    needs_vnni: bool,
}

/// 7-bit weights: the same integers on every x86-64 (the reference, written on an AVX2
/// machine, is reproduced exactly on an AVX-512 VNNI one).
const INT8: Pair = Pair {
    detector: "ssd_mobilenetv2_oidv4_24cls_int8.toml",
    backbone: "efficientnet_lite0_imagenet_int8.toml",
    reference: "golden_int8.json",
    needs_vnni: false,
};

const INT8_VNNI: Pair = Pair {
    detector: "ssd_mobilenetv2_oidv4_24cls_int8_vnni.toml",
    backbone: "efficientnet_lite0_imagenet_int8_vnni.toml",
    reference: "golden_int8_vnni.json",
    needs_vnni: true,
};
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

fn reference(pair: &Pair) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures")
        .join(pair.reference);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Whether this CPU runs the pair's kernels as its reference was computed (the
/// `/proc/cpuinfo` flags MLAS's int32-accumulating int8 paths need).
fn runs_here(pair: &Pair) -> bool {
    if !pair.needs_vnni {
        return true;
    }
    let flags = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let exact = flags
        .lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| {
            l.split_whitespace()
                .any(|f| matches!(f, "avx512_vnni" | "avx_vnni" | "amx_int8"))
        });
    if !exact {
        eprintln!(
            "skipped: {} needs AVX512-VNNI, AVX-VNNI or AMX-INT8 (this CPU has none; its AVX2 int8 kernels saturate with 8-bit weights)",
            pair.detector
        );
    }
    exact
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
    for (fp32, int8, vnni) in [
        (
            "ssd_mobilenetv2_oidv4_24cls.toml",
            INT8.detector,
            INT8_VNNI.detector,
        ),
        (
            "efficientnet_lite0_imagenet.toml",
            INT8.backbone,
            INT8_VNNI.backbone,
        ),
    ] {
        let version = |m: &str| {
            Manifest::load(&models().join(m))
                .unwrap()
                .model_version()
                .unwrap()
        };
        let (f, a, b) = (version(fp32), version(int8), version(vnni));
        assert_ne!(
            a, f,
            "{int8}: results must be stored apart from the fp32 model's"
        );
        assert_ne!(
            b, f,
            "{vnni}: results must be stored apart from the fp32 model's"
        );
        assert_ne!(b, a, "{vnni}: other bytes than {int8}, so another version");
    }
}

#[test]
fn int8_detector_matches_its_python_reference() {
    detector_matches_its_python_reference(&INT8);
}

#[test]
fn int8_vnni_detector_matches_its_python_reference() {
    if runs_here(&INT8_VNNI) {
        detector_matches_its_python_reference(&INT8_VNNI);
    }
}

#[test]
fn int8_backbone_matches_its_python_reference_whole_and_cropped() {
    backbone_matches_its_python_reference(&INT8);
}

#[test]
fn int8_vnni_backbone_matches_its_python_reference_whole_and_cropped() {
    if runs_here(&INT8_VNNI) {
        backbone_matches_its_python_reference(&INT8_VNNI);
    }
}

fn detector_matches_its_python_reference(pair: &Pair) {
    let reference = reference(pair);
    let thresholds = DetectorThresholds {
        score: THRESHOLD,
        nms_iou: 0.45,
        max_detections: 20,
    };
    let mut det = Detector::load(
        &OrtRuntime::get().unwrap().into(),
        &models().join(pair.detector),
        one_thread(),
        Some(thresholds),
    )
    .unwrap();
    let mut compared = 0;
    let (mut worst_iou, mut worst_score, mut worst_main) = (1f32, 0f32, 1f32);
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
            // The closest same-label match of a detection that must be found, for the
            // margins printed below.
            let closest = ours
                .iter()
                .filter(|o| o.label == label && score >= MAY_MISS)
                .max_by(|a, b| a.bbox.iou(&rbox).total_cmp(&b.bbox.iou(&rbox)));
            if let Some(o) = closest {
                worst_iou = worst_iou.min(o.bbox.iou(&rbox));
                worst_score = worst_score.max((o.score - score).abs());
            }
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
        worst_main = worst_main.min(ours_box.iou(&ref_box));
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
    println!(
        "{}: {compared} reference detections, worst box IoU {worst_iou}, worst |score difference| {worst_score}, worst main-object IoU {worst_main}",
        pair.detector
    );
    assert!(compared >= 10, "compared only {compared} detections");
}

fn backbone_matches_its_python_reference(pair: &Pair) {
    let reference = reference(pair);
    let rt: Runtime = OrtRuntime::get().unwrap().into();
    let mut backbone = Backbone::load(&rt, &models().join(pair.backbone), one_thread()).unwrap();
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
    println!(
        "{}: mean max |diff|: ours {ours_total}/13, the fp32 model's {fp32_total}/13",
        pair.backbone
    );
    assert!(
        ours_total <= RELATIVE_TOL * fp32_total,
        "not nearer the INT8 reference than the fp32 model is: {ours_total} vs {fp32_total} (sums)"
    );
}
