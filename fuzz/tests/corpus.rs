//! Every input kept for a target, the corpus cargo-fuzz grew and every crash it found
//! (`fuzz/targets/corpus/<target>`, `fuzz/targets/regressions/<target>`), replayed
//! through the target's checks on each `cargo test`.
#![cfg(feature = "services")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn inputs(target: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("targets");
    let mut files = Vec::new();
    for kind in ["corpus", "regressions"] {
        let Ok(dir) = std::fs::read_dir(root.join(kind).join(target)) else {
            continue;
        };
        files.extend(dir.map(|e| e.unwrap().path()).filter(|p| p.is_file()));
    }
    files.sort();
    files
}

#[test]
fn every_kept_input_passes_its_target() {
    for (target, check) in imgfeat_fuzz::TARGETS {
        let files = inputs(target);
        // Seeds are committed for every target: an empty list means a moved folder,
        // and a replay of nothing would pass without checking anything.
        assert!(
            files.len() >= 3,
            "{target}: only {} inputs kept",
            files.len()
        );
        for file in files {
            let data = std::fs::read(&file).unwrap();
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target} fails on {}", file.display());
        }
    }
}
