//! `imgfeat eval`: seeded copies of the photos, coded by each model version into a
//! scratch store, and the near-duplicate report (imgfeat-eval has the logic).
//!
//! Versions: the configured one, or one per `--models DETECTOR[,BACKBONE[,HEAD]]`
//! (manifest file names; unset parts come from the settings). The copies are made once
//! and shared by every version.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use imgfeat_app::AppSettings;
use imgfeat_eval::{CodedItem, Corpus, EvalReport, VersionReport, corpus, report, split};
use imgfeat_pipeline::{Events, PipelineSettings};
use imgfeat_store::SqliteStore;

use crate::progress::ProgressSink;

pub struct EvalArgs<'a> {
    pub dirs: &'a [PathBuf],
    pub copies: usize,
    pub seed: u64,
    pub limit: Option<usize>,
    pub models: &'a [String],
    pub plot: Option<&'a Path>,
    /// Only one part of the photos, with the held-out percent that defines it.
    pub part: Option<(split::Part, u8)>,
    pub quiet: bool,
}

pub async fn run(
    settings: &AppSettings,
    args: EvalArgs<'_>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let mut photos = Vec::new();
    for dir in args.dirs {
        if !dir.is_dir() {
            bail!("{} is not a folder", dir.display());
        }
        photos.extend(corpus::list_photos(dir, None)?);
    }
    if let Some((part, percent)) = args.part {
        photos = split::select(&photos, percent, part);
    }
    if let Some(n) = args.limit {
        photos.truncate(n);
    }
    if photos.is_empty() {
        bail!("no image files in the given folders");
    }
    let pipelines = args
        .models
        .iter()
        .map(|spec| with_models(&settings.pipeline, spec))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let pipelines = if pipelines.is_empty() {
        vec![settings.pipeline.clone()]
    } else {
        pipelines
    };

    let scratch = tempfile::tempdir().context("creating a scratch folder")?;
    let corpus_dir = scratch.path().join("corpus");
    std::fs::create_dir(&corpus_dir).context("creating the corpus folder")?;
    let (seed, copies) = (args.seed, args.copies);
    let corpus = {
        let dir = corpus_dir.clone();
        tokio::task::spawn_blocking(move || corpus::prepare(&photos, &dir, seed, copies))
            .await
            .context("the copy maker stopped")??
    };
    tracing::info!(images = corpus.items.len(), "corpus written");

    let mut versions = Vec::new();
    for (i, pipeline) in pipelines.iter().enumerate() {
        let store_path = scratch.path().join(format!("eval-{i}.sqlite3"));
        versions.push(evaluate_version(pipeline, &corpus, &store_path, args.quiet || json).await?);
    }
    let report = EvalReport {
        folder: args
            .dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(" + "),
        seed,
        copies_per_photo: copies,
        photos_skipped: corpus
            .skipped
            .iter()
            .map(|(p, r)| (p.display().to_string(), r.clone()))
            .collect(),
        versions,
    };
    if let Some(path) = args.plot {
        let with_text = imgfeat_eval::plot::write_png(&report.versions, path)
            .with_context(|| format!("writing {}", path.display()))?;
        if !with_text {
            tracing::warn!("{} has no text: no font was found", path.display());
        }
    }
    if json {
        super::print_json(&report)?;
    } else {
        print!("{}", report::render_text(&report));
    }
    Ok(ExitCode::SUCCESS)
}

/// Settings for one `--models` spec.
fn with_models(base: &PipelineSettings, spec: &str) -> anyhow::Result<PipelineSettings> {
    let mut p = base.clone();
    let parts: Vec<&str> = spec.split(',').map(str::trim).collect();
    if parts.len() > 3 || parts.iter().any(|s| s.is_empty()) {
        bail!("--models {spec}: expected DETECTOR[,BACKBONE[,HEAD]] manifest names");
    }
    p.models.detector = parts[0].to_string();
    if let Some(b) = parts.get(1) {
        p.models.backbone = b.to_string();
    }
    if let Some(h) = parts.get(2) {
        p.models.hash_head = h.to_string();
    }
    Ok(p)
}

async fn evaluate_version(
    pipeline: &PipelineSettings,
    corpus: &Corpus,
    store_path: &Path,
    quiet: bool,
) -> anyhow::Result<VersionReport> {
    let store = Arc::new(SqliteStore::open(store_path)?);
    let progress = Arc::new(ProgressSink::new(!quiet));
    let files = corpus.files();
    let (version, summary) = super::local_index::index_files(
        pipeline,
        store.clone(),
        "eval corpus",
        &files,
        Events::new().with(progress.clone()),
    )
    .await?;
    progress.finish();
    tracing::info!(
        %version,
        images_per_second = summary.images_per_second,
        failed = summary.failed_total(),
        "corpus coded"
    );

    let mut codes: HashMap<u64, Vec<u8>> = HashMap::new();
    imgfeat_search::store_loader::scan_codes(store.as_ref(), &version, |page| {
        for rec in page {
            codes.insert(rec.image_id.0, rec.code.as_bytes().to_vec());
        }
        Ok(())
    })
    .await?;
    let mut items = Vec::with_capacity(corpus.items.len());
    let mut uncoded = 0;
    for item in &corpus.items {
        match codes.remove(&item.id) {
            Some(code) => items.push(CodedItem {
                photo: item.photo,
                copy: item.copy,
                kind: item.params.as_ref().map(|p| p.kind),
                code,
            }),
            None => uncoded += 1,
        }
    }
    let version = version.to_string();
    let report =
        tokio::task::spawn_blocking(move || imgfeat_eval::evaluate(&version, &items, uncoded))
            .await
            .context("the evaluation stopped")??;
    Ok(report)
}
