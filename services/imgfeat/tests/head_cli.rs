//! `imgfeat head train` through the real binary: the same seed writes the same bytes,
//! a learned head of 128 or 256 bits goes through `index`, `show` and `similar` on the
//! embedded store, and a learned head beats SimHash on photos it never saw.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo;
use serde_json::Value;

/// A models folder with the shipped models (linked) where trained heads can be written.
fn models_dir(dir: &Path) -> PathBuf {
    let models = dir.join("models");
    std::fs::create_dir(&models).unwrap();
    for entry in std::fs::read_dir(repo().join("models")).unwrap() {
        let path = entry.unwrap().path();
        std::os::unix::fs::symlink(&path, models.join(path.file_name().unwrap())).unwrap();
    }
    models
}

/// Runs the binary with `models` as the models folder and `head` (if any) as the hash
/// head.
fn run(models: &Path, store: &Path, head: Option<&str>, args: &[&str]) -> (i32, Value, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_imgfeat"));
    cmd.env("IMGFEAT_PIPELINE__MODELS__DIR", models)
        .arg("--store")
        .arg(store)
        .arg("--json")
        .args(args);
    if let Some(h) = head {
        cmd.env("IMGFEAT_PIPELINE__MODELS__HASH_HEAD", h);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    (
        out.status.code().unwrap_or(-1),
        serde_json::from_str(&stdout).unwrap_or(Value::Null),
        stderr,
    )
}

fn train(models: &Path, photos: &Path, extra: &[&str]) -> Value {
    let store = models.join("unused.sqlite3");
    let mut args = vec!["head", "train", photos.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let (code, report, stderr) = run(models, &store, None, &args);
    assert_eq!(code, 0, "{stderr}");
    report
}

fn file_bytes(dir: &Path, stem: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(stem))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn training_with_a_seed_writes_the_same_bytes() {
    let photos = repo().join("fixtures/photos");
    let mut runs = Vec::new();
    for seed in ["7", "7", "8"] {
        let dir = tempfile::tempdir().unwrap();
        let models = models_dir(dir.path());
        let out = models.join("learned.toml");
        // Each run computes its own embeddings (its own cache): the whole path is checked.
        let cache = dir.path().join("cache");
        let args = [
            "--bits",
            "64",
            "--method",
            "deepbit",
            "--views",
            "2",
            "--held-out",
            "0",
            "--seed",
            seed,
            "--out",
            out.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ];
        let report = train(&models, &photos, &args);
        assert_eq!(report["photos"], 13, "{report}");
        assert_eq!(report["images"], 39, "{report}");
        runs.push((file_bytes(&models, "learned"), dir));
    }
    assert_eq!(runs[0].0.len(), 4, "manifest, two weight files, photo list");
    assert_eq!(runs[0].0, runs[1].0, "same seed, same bytes");
    let weights = |r: &Vec<(String, Vec<u8>)>| {
        r.iter()
            .find(|(n, _)| n.contains("_projection_"))
            .unwrap()
            .1
            .clone()
    };
    assert_ne!(
        weights(&runs[0].0),
        weights(&runs[2].0),
        "another seed, other views"
    );
}

#[test]
fn codes_of_128_and_256_bits_go_through_index_show_and_similar() {
    let photos = repo().join("fixtures/photos");
    for bits in ["128", "256"] {
        let dir = tempfile::tempdir().unwrap();
        let models = models_dir(dir.path());
        let name = format!("itq{bits}.toml");
        let out = models.join(&name);
        let cache = dir.path().join("cache");
        train(
            &models,
            &photos,
            &[
                "--bits",
                bits,
                "--method",
                "itq",
                "--views",
                "1",
                "--held-out",
                "0",
                "--out",
                out.to_str().unwrap(),
                "--cache",
                cache.to_str().unwrap(),
            ],
        );
        let store = dir.path().join("store.sqlite3");
        let (code, report, stderr) = run(
            &models,
            &store,
            Some(&name),
            &["index", photos.to_str().unwrap(), "--quiet"],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(report["processed"], 13, "{report}");
        assert_eq!(report["failed"], serde_json::json!({}), "{report}");

        let photo = std::fs::canonicalize(&common::photo_paths()[0]).unwrap();
        let photo = photo.to_str().unwrap();
        let (code, shown, stderr) = run(&models, &store, Some(&name), &["show", photo]);
        assert_eq!(code, 0, "{stderr}");
        let version = shown["code_version"].as_str().unwrap();
        assert!(version.contains(&format!("itq{bits}@1")), "{version}");
        let hex = shown["code_hex"].as_str().unwrap();
        assert_eq!(hex.len() * 4, bits.parse::<usize>().unwrap(), "{hex}");

        let (code, similar, stderr) = run(
            &models,
            &store,
            Some(&name),
            &["similar", photo, "--k", "3"],
        );
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(similar["indexed_codes"], 13, "{similar}");
        // The probe is the stored image itself (left out of its own neighbours), coded
        // with the same long code; its neighbours come nearest first.
        assert_eq!(similar["image_id"], shown["image_id"], "{similar}");
        assert_eq!(similar["code_hex"], shown["code_hex"], "{similar}");
        let distances: Vec<u64> = similar["neighbours"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["distance"].as_u64().unwrap())
            .collect();
        assert_eq!(distances.len(), 3, "{similar}");
        assert!(distances.windows(2).all(|w| w[0] <= w[1]), "{distances:?}");
        assert!(distances[2] <= bits.parse::<u64>().unwrap());
    }
}

/// The catalogue of real photos beside the repository (not copied into it).
fn catalogue() -> Option<PathBuf> {
    let dir = repo().join("../shared/catalog-photos");
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} is not there", dir.display());
        None
    }
}

#[test]
fn a_learned_head_beats_simhash_on_held_out_photos() {
    let Some(catalogue) = catalogue() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let models = models_dir(dir.path());
    let out = models.join("learned64.toml");
    let cache = dir.path().join("cache");
    // A subset, so the test runs in CI: 80 training photos x 3 views; 30 held-out
    // photos x 3 copies for the comparison.
    train(
        &models,
        &catalogue,
        &[
            "--bits",
            "64",
            "--method",
            "deepbit",
            "--views",
            "3",
            "--limit",
            "80",
            "--out",
            out.to_str().unwrap(),
            "--cache",
            cache.to_str().unwrap(),
        ],
    );
    let spec = |head: &str| {
        format!("ssd_mobilenetv2_oidv4_24cls.toml,efficientnet_lite0_imagenet.toml,{head}")
    };
    let (code, report, stderr) = run(
        &models,
        &dir.path().join("unused.sqlite3"),
        None,
        &[
            "eval",
            catalogue.to_str().unwrap(),
            "--part",
            "held-out",
            "--limit",
            "30",
            "--copies",
            "3",
            "--seed",
            "11",
            "--quiet",
            "--models",
            &spec("simhash64_effnet_lite0.toml"),
            "--models",
            &spec("learned64.toml"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    let versions = report["versions"].as_array().unwrap();
    let (simhash, learned) = (&versions[0], &versions[1]);
    assert_eq!(simhash["photos"], 30);
    assert_eq!(learned["photos"], 30);
    let number = |v: &Value, path: &[&str]| {
        let mut x = v;
        for p in path {
            x = &x[*p];
        }
        x.as_f64().unwrap_or(f64::NAN)
    };
    let inside = |v: &Value| number(v, &["radius_99", "distinct_inside"]);
    let recall = |v: &Value| number(v, &["retrieval", "recall_at_1"]);
    eprintln!(
        "held out, 64 bits: recall@1 simhash {:.3} learned {:.3}; distinct pairs inside the 99 % radius simhash {:.5} learned {:.5}",
        recall(simhash),
        recall(learned),
        inside(simhash),
        inside(learned)
    );
    // Loose: not worse at finding a copy's photo first, and clearly fewer distinct
    // pairs inside the radius that keeps 99 % of copies.
    assert!(recall(learned) >= recall(simhash) - 0.02, "{report}");
    assert!(inside(learned) < 0.7 * inside(simhash), "{report}");
}
