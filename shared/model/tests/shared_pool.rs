//! ONNX Runtime's global thread pool (`pipeline.models.shared_intra_threads`): sessions
//! load and run on it, and the pool, being the process's, cannot be asked for again
//! with another size. Its own test binary, so the process starts without a runtime.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use imgfeat_model::{Backbone, OrtRuntime, Runtime, SessionOptions};

#[test]
fn sessions_run_on_the_shared_pool_and_its_size_is_fixed() {
    let rt: Runtime = OrtRuntime::with_shared_pool(2).unwrap().into();
    let manifest =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/efficientnet_lite0_imagenet.toml");
    let mut backbone = Backbone::load(&rt, &manifest, SessionOptions::default()).unwrap();
    let (w, h) = backbone.input_size();
    // Two different inputs in one batch: the pool's threads split real work.
    let n = (w * h * 3) as usize;
    let input: Vec<f32> = (0..2 * n)
        .map(|i| ((i % 251) as f32 / 125.0) - 1.0)
        .collect();
    let embeddings = backbone.embed(&input, 2).unwrap();
    assert_eq!(embeddings.len(), 2);
    assert!(embeddings.iter().flatten().all(|v| v.is_finite()));
    assert_ne!(embeddings[0], embeddings[1]);

    assert!(
        OrtRuntime::with_shared_pool(2).is_ok(),
        "the same size again"
    );
    let err = OrtRuntime::with_shared_pool(0)
        .err()
        .expect("another size is refused");
    assert!(err.to_string().contains("already loaded with 2"), "{err}");
    assert!(
        OrtRuntime::get().is_ok(),
        "no preference: the loaded runtime"
    );
}
