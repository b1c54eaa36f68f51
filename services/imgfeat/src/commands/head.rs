//! `imgfeat head train`: learn a hash head from the photos of a folder (imgfeat-train
//! has the logic) and write it as a new model version beside the others.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use imgfeat_app::AppSettings;
use imgfeat_eval::{corpus, split};
use imgfeat_model::{Backbone, Detector, Runtime};
use imgfeat_train::{EmbedSpec, Embeddings, HeadRecord, Method, cache, embed, head_file};
use serde::Serialize;

use crate::progress::TrainBar;

pub struct TrainArgs<'a> {
    pub dir: &'a Path,
    pub bits: usize,
    pub method: Method,
    pub seed: u64,
    pub views: usize,
    pub out: &'a Path,
    pub held_out_percent: u8,
    pub limit: Option<usize>,
    pub cache: Option<&'a Path>,
    pub quiet: bool,
}

#[derive(Serialize)]
struct TrainReport {
    manifest: String,
    method: &'static str,
    bits: usize,
    photos: usize,
    images: usize,
    photo_list_sha256: String,
    objectives: imgfeat_train::Objectives,
}

pub async fn train(
    settings: &AppSettings,
    args: TrainArgs<'_>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !args.dir.is_dir() {
        bail!("{} is not a folder", args.dir.display());
    }
    let all = corpus::list_photos(args.dir, None)?;
    let mut photos = split::select(&all, args.held_out_percent, split::Part::Training);
    if let Some(n) = args.limit {
        photos.truncate(n);
    }
    if photos.is_empty() {
        bail!("no training photos in {}", args.dir.display());
    }
    let names: Vec<String> = photos
        .iter()
        .map(|p| {
            p.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
        .collect();
    let (_, list_sha) = head_file::photo_list(&names);
    let pipeline = settings.pipeline.clone();
    let models = pipeline
        .models
        .resolve_dir()
        .map_err(|e| anyhow::anyhow!(e))?;
    let spec = EmbedSpec {
        views: args.views,
        seed: args.seed,
        rule: imgfeat_pipeline::parts::main_object_rule(&pipeline)?,
        limits: pipeline.decode.limits(),
    };
    let (bits, method, seed, quiet) = (args.bits, args.method, args.seed, args.quiet || json);
    let cache_dir = args.cache.map(Path::to_path_buf);
    let record_base = (names, list_sha.clone());
    let out = args.out.to_path_buf();
    let selection = split::describe(args.held_out_percent, split::Part::Training);

    let (embeddings, record) = tokio::task::spawn_blocking(move || {
        embeddings_for(
            &models,
            &pipeline,
            &photos,
            &spec,
            cache_dir.as_deref(),
            quiet,
            &record_base.1,
        )
        .map(|(e, detector, backbone)| {
            let record = HeadRecord {
                version: "1".into(),
                method: method.name(),
                photos: record_base.0,
                selection,
                views: spec.views,
                augmentations: augmentations(),
                seed,
                detector,
                whole_image: spec.rule.whole_image,
                backbone,
            };
            (e, record)
        })
    })
    .await
    .context("the embedding thread stopped")??;

    let out_for_fit = out.clone();
    let (head, images, photos_used) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bar = TrainBar::new(!quiet);
        let head = imgfeat_train::fit(&embeddings, method, bits, seed, &bar)?;
        imgfeat_train::write_head(&out_for_fit, &head, &record)?;
        Ok((head, embeddings.rows.len(), embeddings.photos()))
    })
    .await
    .context("the training thread stopped")??;

    let report = TrainReport {
        manifest: out.display().to_string(),
        method: method.name(),
        bits,
        photos: photos_used,
        images,
        photo_list_sha256: list_sha,
        objectives: head.objectives,
    };
    if json {
        super::print_json(&report)?;
    } else {
        let o = &report.objectives;
        println!(
            "{}: {} head, {} bits, from {} images ({} photos x {} views + the photos)",
            report.manifest, report.method, bits, images, report.photos, args.views
        );
        println!(
            "quantization loss {:.4}  bit imbalance {:.4}  bits flipped by a view {:.4}  between photos {:.4}",
            o.quantization, o.imbalance, o.view_flips, o.distinct_flips
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The augmentations the views are drawn from, for the manifest.
fn augmentations() -> String {
    imgfeat_eval::TransformKind::ALL
        .iter()
        .map(|k| format!("{} ({})", k.name(), k.description()))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The embeddings from the cache when it has them, else computed (and cached); with
/// the detector and backbone versions they come from.
fn embeddings_for(
    models: &Path,
    pipeline: &imgfeat_pipeline::PipelineSettings,
    photos: &[PathBuf],
    spec: &EmbedSpec,
    cache_dir: Option<&Path>,
    quiet: bool,
    list_sha: &str,
) -> anyhow::Result<(Embeddings, String, String)> {
    let detector_path = models.join(&pipeline.models.detector);
    let backbone_path = models.join(&pipeline.models.backbone);
    let version = |p: &Path| -> anyhow::Result<String> {
        Ok(imgfeat_model::Manifest::load(p)?.version()?.to_string())
    };
    let (detector_version, backbone_version) = (version(&detector_path)?, version(&backbone_path)?);
    let key = [
        list_sha.to_string(),
        spec.views.to_string(),
        spec.seed.to_string(),
        detector_version.clone(),
        backbone_version.clone(),
        format!("{:?}", spec.rule),
    ];
    let cached =
        cache_dir.map(|d| cache::path_for(d, &key.iter().map(String::as_str).collect::<Vec<_>>()));
    if let Some(path) = &cached
        && let Some(e) = cache::read(path)?
    {
        tracing::info!(cache = %path.display(), images = e.rows.len(), "embeddings from the cache");
        return Ok((e, detector_version, backbone_version));
    }
    let runtime = Runtime::open(&pipeline.runtime, pipeline.models.shared_intra_threads)?;
    let mut detector = Detector::load(
        &runtime,
        &detector_path,
        pipeline.models.detector_session,
        pipeline.models.thresholds,
    )
    .context("loading the detector")?;
    let mut backbone = Backbone::load(&runtime, &backbone_path, pipeline.models.extractor_session)
        .context("loading the backbone")?;
    let bar = TrainBar::new(!quiet);
    let e = embed::embed_photos(photos, &mut detector, &mut backbone, spec, &bar)?;
    if let Some(path) = &cached {
        cache::write(path, &e)?;
    }
    Ok((e, detector_version, backbone_version))
}
