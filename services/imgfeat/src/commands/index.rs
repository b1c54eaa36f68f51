use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_app::paths::SqlitePathRegistry;
use imgfeat_embedded::{IndexOptions, IndexRun, IndexSummary};
use imgfeat_pipeline::{Events, parts};

use crate::progress::ProgressSink;

pub async fn run(
    settings: &AppSettings,
    dir: &Path,
    force: bool,
    quiet: bool,
    json: bool,
    metrics_addr: Option<&str>,
) -> anyhow::Result<ExitCode> {
    if !dir.is_dir() {
        anyhow::bail!("{} is not a folder", dir.display());
    }
    let store = settings
        .store
        .open_embedded()
        .with_context(|| format!("opening the store {}", settings.store.path.display()))?;
    let pipeline = &settings.pipeline;
    let detector = parts::load_detector(pipeline).context("loading the detector")?;
    let extractor = parts::load_extractor(pipeline).context("loading the extractor")?;
    let progress = Arc::new(ProgressSink::new(!quiet && !json));
    let mut events = Events::new().with(progress.clone());
    let _metrics = match metrics_addr {
        Some(addr) => {
            let telemetry = imgfeat_telemetry::Telemetry::new("index");
            for (stage, version) in [
                ("detect", &detector.version),
                ("extract", &extractor.version),
            ] {
                telemetry.set_model_version(stage, version);
            }
            events = events.with(telemetry.events());
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("binding --metrics-addr {addr}"))?;
            // Models are loaded and the store is open before the server starts: ready.
            let server = imgfeat_telemetry::serve(
                listener,
                telemetry,
                imgfeat_telemetry::Readiness::new(),
                std::future::pending(),
            );
            Some(AbortOnDrop(tokio::spawn(server)))
        }
        None => None,
    };
    let registry = SqlitePathRegistry(store.clone());
    let run = IndexRun {
        settings: pipeline,
        detector: &detector,
        extractor: &extractor,
        store,
        registry: &registry,
        events,
    };
    let summary = run.run(dir, IndexOptions { force }).await?;
    progress.finish();
    if json {
        super::print_json(&summary)?;
    } else {
        print_summary(&summary, &settings.store.path);
    }
    // Bad images are results (recorded failures), not a failed run.
    Ok(ExitCode::SUCCESS)
}

fn print_summary(s: &IndexSummary, store: &Path) {
    println!("indexed {} into {}", s.folder, store.display());
    println!("  models     {} -> {}", s.detector_version, s.code_version);
    println!(
        "  images     {} found, {} processed, {} skipped (already done), {} failed",
        s.discovered,
        s.processed,
        s.skipped,
        s.failed_total()
    );
    for (reason, n) in &s.failed {
        println!("    failed   {n} {reason}");
    }
    if s.ignored > 0 {
        println!(
            "  ignored    {} files that are not images by name",
            s.ignored
        );
    }
    println!(
        "  throughput {:.1} images/s ({:.1} s)",
        s.images_per_second, s.seconds
    );
}

/// Stops the metrics server when the run is over.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}
