//! The whole pipeline against the Python reference, through the real binary: `imgfeat
//! index` with the default configuration on the 13 photos must store the reference's
//! main box (as integers) on every photo and its 64-bit code on at least 12 of them
//! (fixtures/golden_codes.json, a copy of shared/models/golden_codes.json). A 13th photo
//! may differ only in bits whose projection is within the near-zero margin that
//! shared/model/tests/golden.rs allows: a sign the last rounding of a resize can flip.
//!
//! shared/model/tests/golden.rs checks the backbone and head from the reference's box;
//! this checks everything else too: decode, the detector's resize and batching, the
//! choice and rounding of the main box, and what the detector hands the extractor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{imgfeat, photo_paths, reference_box, repo, shown_main_box};
use imgfeat_core::{BinaryCode, CropRect};
use imgfeat_imaging::{DecodeLimits, decode_rgb, resize_to_tensor};
use imgfeat_model::{Backbone, HashHead, Manifest, OrtRuntime, Runtime, SessionOptions};
use serde_json::Value;

/// As in shared/model/tests/golden.rs: relative to the photo's median |projection|.
const NEAR_ZERO: f32 = 0.02;

fn golden() -> Value {
    let text = std::fs::read_to_string(repo().join("fixtures/golden_codes.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// For each bit where `stored` and `theirs` differ, its |projection| / median
/// |projection|, the projections computed as the extractor does from `region` (the
/// reference's box, which the test has already found equal to the stored one).
fn margins_of_differing_bits(
    photo: &std::path::Path,
    region: CropRect,
    stored: &BinaryCode,
    theirs: &BinaryCode,
) -> Vec<f32> {
    let rt: Runtime = OrtRuntime::get().unwrap().into();
    let mut backbone = Backbone::load(
        &rt,
        &repo().join("models/efficientnet_lite0_imagenet.toml"),
        SessionOptions::default(),
    )
    .unwrap();
    let head = HashHead::load(
        &Manifest::load(&repo().join("models/simhash64_effnet_lite0.toml")).unwrap(),
    )
    .unwrap();
    let img = decode_rgb(&std::fs::read(photo).unwrap(), &DecodeLimits::default()).unwrap();
    let (w, h) = backbone.input_size();
    let mut input = vec![0f32; (w * h * 3) as usize];
    resize_to_tensor(&img, region, w, h, &mut input).unwrap();
    let projections = head
        .project(&backbone.embed(&input, 1).unwrap().remove(0))
        .unwrap();
    let mut mags: Vec<f32> = projections.iter().map(|p| p.abs()).collect();
    mags.sort_by(f32::total_cmp);
    let median = mags[mags.len() / 2];
    (0..64)
        .filter(|&j| stored.bit(j) != theirs.bit(j))
        .map(|j| projections[j].abs() / median)
        .collect()
}

#[test]
fn index_with_the_defaults_stores_the_references_boxes_and_codes() {
    let golden = golden();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store.sqlite3");
    let photos = photo_paths();
    assert_eq!(photos.len(), 13);
    let folder = photos[0].parent().unwrap().to_str().unwrap();
    let (code, summary, stderr) = imgfeat(&store, &["index", folder]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(summary["processed"], 13, "{summary}");

    let (mut same_code, mut report, mut differing) = (0, Vec::new(), Vec::new());
    for photo in &photos {
        let name = photo.file_name().unwrap().to_str().unwrap();
        let reference = &golden["photos"][name];
        assert_eq!(reference["exif_orientation"], 1, "{name}");
        let (code, shown, stderr) = imgfeat(&store, &["show", photo.to_str().unwrap()]);
        assert_eq!(code, 0, "{stderr}");
        let their_box = reference_box(reference);
        assert_eq!(shown_main_box(&shown), their_box, "{name}: the main box");

        let theirs = BinaryCode::from_bytes(
            64,
            hex::decode(reference["code"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let ours = BinaryCode::from_bytes(
            64,
            hex::decode(shown["code_hex"].as_str().unwrap()).unwrap(),
        )
        .unwrap();
        let distance = ours.hamming(&theirs).unwrap();
        report.push(format!("{name}: {distance} bits"));
        if distance == 0 {
            same_code += 1;
        } else {
            let region = CropRect {
                x: their_box[0] as u32,
                y: their_box[1] as u32,
                width: (their_box[2] - their_box[0]) as u32,
                height: (their_box[3] - their_box[1]) as u32,
            };
            differing.push((
                name.to_string(),
                margins_of_differing_bits(photo, region, &ours, &theirs),
            ));
        }
    }
    println!("{}", report.join("\n"));
    assert!(
        same_code >= 12,
        "{same_code} of 13 codes equal the reference's:\n{}",
        report.join("\n")
    );
    for (name, margins) in differing {
        assert!(
            margins.iter().all(|m| *m < NEAR_ZERO),
            "{name}: bits differ away from zero, margins {margins:?}"
        );
    }
}
