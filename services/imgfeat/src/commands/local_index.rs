//! Image files through the whole pipeline into an embedded store, in this process, as
//! `imgfeat index` runs them: for a probe that was never indexed and for `eval`'s copies.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use imgfeat_app::paths::SqlitePathRegistry;
use imgfeat_core::ModelVersion;
use imgfeat_embedded::{IndexOptions, IndexRun, IndexSummary};
use imgfeat_pipeline::{Events, PipelineSettings, parts};
use imgfeat_store::SqliteStore;

/// Loads the models `pipeline` names, codes `files` into `store`, and says under which
/// version the codes were stored.
pub async fn index_files(
    pipeline: &PipelineSettings,
    store: Arc<SqliteStore>,
    label: &str,
    files: &[PathBuf],
    events: Events,
) -> anyhow::Result<(ModelVersion, IndexSummary)> {
    let detector = parts::load_detector(pipeline).context("loading the detector")?;
    let extractor = parts::load_extractor(pipeline).context("loading the extractor")?;
    let registry = SqlitePathRegistry(store.clone());
    let run = IndexRun {
        settings: pipeline,
        detector: &detector,
        extractor: &extractor,
        store,
        registry: &registry,
        events,
    };
    let version = run.code_version()?;
    let summary = run
        .run_files(label, files, 0, IndexOptions { force: false })
        .await?;
    Ok((version, summary))
}
