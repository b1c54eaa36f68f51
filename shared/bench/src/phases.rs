//! What the model phases need before they measure anything (sessions, detector and
//! backbone tensors from real photos), and the like-for-like ceilings measured again
//! right before each end-to-end run.

use std::path::PathBuf;

use imgfeat_pipeline::PipelineSettings;

use crate::imaging_phase::{self, CropChainReport, DecodeReport};
use crate::models_phase::{Ceiling, CeilingMode, Models, SessionKey, Tensors};
use crate::{BenchError, BenchOptions, ceiling_config};

pub struct Prepared {
    pub models: Models,
    pub tensors: Tensors,
    pub decode: DecodeReport,
    pub crop_chain: CropChainReport,
}

/// Loads the models and builds `options.model_tensors` detector and backbone tensors
/// from the photos (the backbone's from the main objects the detector finds). With
/// `whole_corpus`, decode + resize is timed over every file for report (a).
pub fn prepare(
    options: &BenchOptions,
    files: &[PathBuf],
    whole_corpus: bool,
) -> Result<Prepared, BenchError> {
    let base = &options.pipeline;
    let limits = base.decode.limits();
    let dir = base.models.resolve_dir().map_err(BenchError::Options)?;
    let mut models = Models::new(
        &dir,
        &base.models.detector,
        &base.models.backbone,
        &base.models.hash_head,
        &base.runtime,
    )?;
    let keep = options.model_tensors.max(8).div_ceil(8) * 8;
    let decoded = if whole_corpus {
        files
    } else {
        &files[..keep.min(files.len())]
    };

    tracing::info!("(a) decode + resize");
    let (decode, det_tensors, sizes) =
        imaging_phase::decode_and_resize(decoded, (300, 300), &limits, keep)?;
    let mut tensors = Tensors {
        detector: det_tensors,
        sizes,
        detector_len: 300 * 300 * 3,
        backbone: Vec::new(),
        backbone_len: 224 * 224 * 3,
    };
    // The crop chain on the main objects the pipeline's detector finds.
    let primary_det: SessionKey = base.models.detector_session.into();
    let detections = models.detect_all(primary_det, &tensors)?;
    let kept_files: Vec<PathBuf> = (0..keep).map(|i| files[i % files.len()].clone()).collect();
    let (crop_chain, backbone) = imaging_phase::crop_chain(
        &kept_files,
        &detections,
        &imgfeat_pipeline::parts::main_object_rule(base)
            .map_err(|e| BenchError::Options(e.to_string()))?,
        base.detector.crop_jpeg_quality,
        (224, 224),
        (300, 300),
        &limits,
    )?;
    tensors.backbone = backbone;
    Ok(Prepared {
        models,
        tensors,
        decode,
        crop_chain,
    })
}

/// The two ceilings with `settings`' own sessions and batch (alternating, concurrent),
/// measured now. The sessions are dropped before returning, so the end-to-end run that
/// follows has the machine (and its memory) to itself.
pub fn own_ceilings(
    options: &BenchOptions,
    files: &[PathBuf],
    settings: &PipelineSettings,
) -> Result<Vec<Ceiling>, BenchError> {
    let mut prepared = prepare(options, files, false)?;
    [CeilingMode::Alternating, CeilingMode::Concurrent]
        .into_iter()
        .map(|mode| {
            prepared.models.ceiling(
                ceiling_config(settings, mode),
                &prepared.tensors,
                options.model_budget,
            )
        })
        .collect()
}
