//! The runtimes through the real binary. The fp32 pair's manifests vouch that OpenVINO
//! at f32 keeps their versions (`same_version_on`), so it must store exactly what ONNX
//! Runtime stores: the same main box and the same code, bit for bit, on every golden
//! photo. bf16 changes the numbers, so it must store under its own versions and never
//! under the f32 ones. A model or precision this CPU
//! cannot run as its version promises is refused at start-up with the reason.
//!
//! OpenVINO's libraries come from `scripts/setup-openvino.sh` (scripts/test.sh runs it).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;

use common::{imgfeat_with, photo_paths, repo};
use serde_json::Value;

const OPENVINO: (&str, &str) = ("IMGFEAT_PIPELINE__RUNTIME__BACKEND", "openvino");
const BF16: (&str, &str) = ("IMGFEAT_PIPELINE__RUNTIME__PRECISION", "bf16");

fn openvino_installed() {
    let local = repo().join(".local/openvino/runtime/lib/intel64/libopenvino_c.so");
    assert!(
        local.is_file() || std::env::var_os("IMGFEAT_OPENVINO_DIR").is_some(),
        "OpenVINO is not installed: run scripts/setup-openvino.sh"
    );
}

fn index(store: &Path, env: &[(&str, &str)]) -> (i32, Value, String) {
    let photos = photo_paths();
    let folder = photos[0].parent().unwrap().to_str().unwrap();
    imgfeat_with(store, env, &["index", folder])
}

/// Per photo: the main box's crop and the code, as `show` reports them under `env`.
fn stored(store: &Path, env: &[(&str, &str)]) -> Vec<(String, Value, Value, Value)> {
    photo_paths()
        .iter()
        .map(|photo| {
            let (code, shown, stderr) =
                imgfeat_with(store, env, &["show", photo.to_str().unwrap()]);
            assert_eq!(code, 0, "{stderr}");
            (
                photo.file_name().unwrap().to_string_lossy().into_owned(),
                shown["detection"]["main"]["crop"].clone(),
                shown["code_hex"].clone(),
                shown["code_version"].clone(),
            )
        })
        .collect()
}

#[test]
fn openvino_f32_stores_onnx_runtimes_boxes_and_codes_under_the_same_version() {
    openvino_installed();
    let dir = tempfile::tempdir().unwrap();
    let (ort_store, ov_store) = (
        dir.path().join("ort.sqlite3"),
        dir.path().join("ov.sqlite3"),
    );
    let (code, summary, stderr) = index(&ort_store, &[]);
    assert_eq!(
        (code, &summary["processed"]),
        (0, &Value::from(13)),
        "{stderr}"
    );
    let (code, summary, stderr) = index(&ov_store, &[OPENVINO, ("RUST_LOG", "imgfeat_model=info")]);
    assert_eq!(
        (code, &summary["processed"]),
        (0, &Value::from(13)),
        "{stderr}"
    );
    assert!(
        stderr.contains("loaded OpenVINO"),
        "not run on OpenVINO:\n{stderr}"
    );

    let (ort, ov) = (stored(&ort_store, &[]), stored(&ov_store, &[OPENVINO]));
    for (a, b) in ort.iter().zip(&ov) {
        assert!(a.2.is_string(), "{}: no code stored by ONNX Runtime", a.0);
        assert_eq!(
            a, b,
            "{}: ONNX Runtime's then OpenVINO's (crop, code, version)",
            a.0
        );
    }
}

#[test]
fn bf16_stores_under_its_own_version_or_is_refused_where_the_cpu_lacks_it() {
    openvino_installed();
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("bf16.sqlite3");
    let flags = imgfeat_model::cpu::flags();
    let (code, summary, stderr) = index(&store, &[OPENVINO, BF16]);
    if !flags.contains("avx512_bf16") && !flags.contains("amx_bf16") {
        assert_ne!(code, 0, "bf16 ran on a CPU without bf16 kernels");
        assert!(
            stderr.contains("needs one of the CPU features [amx_bf16, avx512_bf16]"),
            "{stderr}"
        );
        return;
    }
    assert_eq!(
        (code, &summary["processed"]),
        (0, &Value::from(13)),
        "{stderr}"
    );
    let bf16 = stored(&store, &[OPENVINO, BF16]);
    for (name, _, code, version) in &bf16 {
        assert!(code.is_string(), "{name}: no bf16 code");
        let version = version.as_str().unwrap();
        // detector@v.openvino-bf16+backbone@v.openvino-bf16+head@v: both networks.
        assert_eq!(
            version.matches(".openvino-bf16").count(),
            2,
            "{name}: {version}"
        );
    }
    // Nothing was stored under the f32 version: the two never mix (`show` finds no
    // result of its version: exit 3).
    for photo in photo_paths() {
        let (code, shown, stderr) = imgfeat_with(&store, &[], &["show", photo.to_str().unwrap()]);
        assert!(
            code == 3 || shown["code_hex"].is_null(),
            "{}: a bf16 run stored an f32-version code: {shown} {stderr}",
            photo.display()
        );
    }
}

#[test]
fn settings_and_models_the_machine_cannot_honour_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sqlite3");
    let (code, _, stderr) = index(&store, &[BF16]);
    assert_ne!(code, 0);
    assert!(stderr.contains("needs backend = \"openvino\""), "{stderr}");

    // A backbone whose manifest needs a CPU feature no CPU has.
    let models = dir.path().join("models");
    std::fs::create_dir(&models).unwrap();
    for entry in std::fs::read_dir(repo().join("models")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap();
        if name == "efficientnet_lite0_imagenet.toml" {
            let text = std::fs::read_to_string(&path).unwrap();
            let text = text.replacen(
                "\n[input]",
                "\nrequires_cpu = [\"imgfeat_no_such_flag\"]\n\n[input]",
                1,
            );
            std::fs::write(models.join(name), text).unwrap();
        } else {
            std::os::unix::fs::symlink(&path, models.join(name)).unwrap();
        }
    }
    let env = [("IMGFEAT_PIPELINE__MODELS__DIR", models.to_str().unwrap())];
    let (code, _, stderr) = index(&store, &env);
    assert_ne!(code, 0, "a model this CPU cannot run was loaded");
    assert!(
        stderr.contains("needs one of the CPU features [imgfeat_no_such_flag]"),
        "{stderr}"
    );
}
