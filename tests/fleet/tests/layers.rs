//! The arrows between the crates (ARCHITECTURE.md), read from the workspace's own
//! manifests: the pipeline and what it stands on know ports, never an adapter; an
//! adapter stands on core alone; no production crate depends on a test kit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};

/// Each workspace crate's normal (not dev, not build) dependencies on other workspace
/// crates, and whether it is production code (under `shared/` or `services/`).
fn workspace_edges() -> BTreeMap<String, (bool, BTreeSet<String>)> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--offline",
            "--no-deps",
            "--format-version",
            "1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = meta["workspace_root"].as_str().unwrap().to_owned();
    let packages = meta["packages"].as_array().unwrap();
    let names: BTreeSet<String> = packages
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect();
    packages
        .iter()
        .map(|p| {
            let manifest = p["manifest_path"].as_str().unwrap();
            let relative = manifest.strip_prefix(&root).unwrap_or(manifest);
            let production = relative.starts_with("/shared/") || relative.starts_with("/services/");
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .filter(|n| names.contains(n))
                .collect();
            (p["name"].as_str().unwrap().to_owned(), (production, deps))
        })
        .collect()
}

const ADAPTERS: [&str; 6] = [
    "imgfeat-amqp",
    "imgfeat-cql",
    "imgfeat-store",
    "imgfeat-sources",
    "imgfeat-http",
    "imgfeat-telemetry",
];

#[test]
fn the_arrows_point_down() {
    let edges = workspace_edges();
    let deps = |name: &str| &edges.get(name).unwrap_or_else(|| panic!("no {name}")).1;

    // The pipeline and everything below it: ports only.
    let above_the_stages = ADAPTERS.iter().copied().chain([
        "imgfeat-app",
        "imgfeat-embedded",
        "imgfeat-infer",
        "imgfeat-search",
    ]);
    let above: BTreeSet<&str> = above_the_stages.collect();
    for lower in [
        "imgfeat-core",
        "imgfeat-imaging",
        "imgfeat-model",
        "imgfeat-exec",
        "imgfeat-pipeline",
    ] {
        let wrong: Vec<_> = deps(lower)
            .iter()
            .filter(|d| above.contains(d.as_str()))
            .collect();
        assert!(wrong.is_empty(), "{lower} depends on {wrong:?}");
    }

    // An adapter stands on core (a source may read the CQL adapter's settings and
    // session); it knows no stage, no other adapter, and nothing above.
    for adapter in [
        "imgfeat-amqp",
        "imgfeat-cql",
        "imgfeat-store",
        "imgfeat-http",
    ] {
        let wrong: Vec<_> = deps(adapter)
            .iter()
            .filter(|d| *d != "imgfeat-core")
            .collect();
        assert!(wrong.is_empty(), "{adapter} depends on {wrong:?}");
    }
    let sources: Vec<_> = deps("imgfeat-sources").iter().cloned().collect();
    assert_eq!(sources, ["imgfeat-core", "imgfeat-cql"]);

    // Test kits are dev-dependencies of production code, never dependencies.
    for (name, (production, d)) in &edges {
        if *production {
            for kit in ["imgfeat-testkit", "imgfeat-store-conformance"] {
                assert!(!d.contains(kit), "{name} depends on the test kit {kit}");
            }
        }
    }
}
