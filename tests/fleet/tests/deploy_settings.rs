#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The settings the deployment files give the services load with the services' own
//! settings types (which refuse unknown keys) and pass their validation.
//!
//! Always checked: every `docker/config/*.toml` and `k8s/base/config/*.toml` file alone.
//! With `IMGFEAT_DEPLOY_SETTINGS=<json>` (written by `scripts/check-deploy.sh` from
//! docker-compose.yml and the rendered k8s manifests): each container's config file
//! together with its environment, exactly as the binary layers them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use imgfeat_app::worker::WorkerSettings;
use imgfeat_app::{SettingsError, settings_from};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Which settings type a binary reads.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Ingest,
    Search,
    Serve,
    Worker,
    /// The `imgfeat` CLI (the migration Job).
    Cli,
}

fn kind_of(binary: &str) -> Kind {
    match binary {
        "imgfeat-ingest" => Kind::Ingest,
        "imgfeat-search" => Kind::Search,
        "imgfeat-serve" => Kind::Serve,
        "imgfeat-detector" | "imgfeat-extractor" => Kind::Worker,
        "imgfeat" => Kind::Cli,
        other => panic!("no settings type known for binary {other}"),
    }
}

/// Layers defaults, the file and the environment the way the binary does, then validates.
fn load(kind: Kind, file: Option<&Path>, env: &HashMap<String, String>) -> Result<(), String> {
    let vars = env.clone().into_iter();
    let checked =
        match kind {
            Kind::Worker => settings_from(WorkerSettings::detector_defaults(), file, vars)
                .and_then(|s| s.validate()),
            Kind::Cli => settings_from(imgfeat_app::AppSettings::default(), file, vars)
                .and_then(|s| s.validate()),
            Kind::Search => settings_from(imgfeat_search_service::Settings::default(), file, vars)
                .and_then(|s| s.validate()),
            Kind::Serve => settings_from(imgfeat_serve::Settings::default(), file, vars)
                .and_then(|s| s.validate()),
            Kind::Ingest => settings_from(imgfeat_ingest::Settings::default(), file, vars)
                .and_then(|s| {
                    s.validate()
                        .map_err(|e| SettingsError::Invalid(e.to_string()))
                }),
        };
    checked.map_err(|e| e.to_string())
}

fn toml_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    out.sort();
    out
}

#[test]
fn every_deploy_config_file_loads_alone() {
    let mut checked = 0;
    for dir in ["docker/config", "k8s/base/config"] {
        for file in toml_files(&repo().join(dir)) {
            let name = file.file_stem().unwrap().to_string_lossy().to_string();
            let kind = if name.starts_with("ingest") {
                Kind::Ingest
            } else if name.starts_with("search") {
                Kind::Search
            } else if name.starts_with("serve") {
                Kind::Serve
            } else if name.starts_with("migrate") {
                Kind::Cli
            } else {
                Kind::Worker
            };
            // Ingest's API token is never in a file: the deployments give it from a
            // Secret (k8s) or the shell (compose), as this environment does.
            let env: HashMap<String, String> = match kind {
                Kind::Ingest | Kind::Search | Kind::Serve => [(
                    "IMGFEAT_HTTP__TOKEN".to_owned(),
                    "from-the-secret-0123456789".to_owned(),
                )]
                .into(),
                _ => HashMap::new(),
            };
            if let Err(e) = load(kind, Some(&file), &env) {
                panic!("{}: {e}", file.display());
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "only {checked} config files found");
}

#[test]
fn a_misspelt_key_is_refused() {
    let dir = std::env::temp_dir().join(format!("imgfeat-deploy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("worker.toml");
    std::fs::write(&file, "[telemetry]\nlisen = \"0.0.0.0:1\"\n").unwrap();
    let err = load(Kind::Worker, Some(&file), &HashMap::new()).unwrap_err();
    assert!(err.contains("lisen"), "{err}");
    let env: HashMap<String, String> =
        [("IMGFEAT_HTTP__LISTN".to_owned(), "0.0.0.0:1".to_owned())].into();
    let err = load(Kind::Ingest, None, &env).unwrap_err();
    assert!(err.contains("IMGFEAT_HTTP__LISTN"), "{err}");
    // A worker has no `http` section: one env file shared by every service sets it for
    // the others, and the worker leaves it alone.
    let env: HashMap<String, String> =
        [("IMGFEAT_HTTP__LISTEN".to_owned(), "0.0.0.0:1".to_owned())].into();
    load(Kind::Worker, None, &env).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_container_loads_its_file_and_environment() {
    let Ok(path) = std::env::var("IMGFEAT_DEPLOY_SETTINGS") else {
        eprintln!(
            "SKIPPED: set IMGFEAT_DEPLOY_SETTINGS (scripts/check-deploy.sh does) to check the containers' environments"
        );
        return;
    };
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert!(!list.is_empty(), "{path} lists no container");
    let mut failures = Vec::new();
    for c in &list {
        let origin = c["origin"].as_str().unwrap();
        let kind = kind_of(c["binary"].as_str().unwrap());
        let file = c["config_file"].as_str().map(|f| repo().join(f));
        let env: HashMap<String, String> = serde_json::from_value(c["env"].clone()).unwrap();
        if let Err(e) = load(kind, file.as_deref(), &env) {
            failures.push(format!("{origin}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    eprintln!("checked the settings of {} containers", list.len());
}
