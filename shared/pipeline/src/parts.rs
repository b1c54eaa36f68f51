//! Loading the models named by the settings onto their own threads, and assembling
//! the stages from them and the adapters a service picked.

use std::sync::Arc;

use imgfeat_core::ModelVersion;
use imgfeat_core::ports::{ImageSource, ResultStore};
use imgfeat_model::{
    CodeFrom, Detector, Extractor, MainObjectRule, Manifest, ManifestKind, Runtime,
};

use crate::chain::Downstream;
use crate::detect_stage::DetectorStage;
use crate::events::Events;
use crate::extract_stage::ExtractorStage;
use crate::settings::PipelineSettings;
use imgfeat_exec::cpu_pool::CpuPool;
use imgfeat_exec::model_thread::ModelThread;

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error(transparent)]
    Model(#[from] imgfeat_model::ModelError),
    #[error(transparent)]
    Thread(#[from] imgfeat_exec::model_thread::ModelThreadError),
    #[error(transparent)]
    Pool(#[from] imgfeat_exec::cpu_pool::PoolError),
}

pub struct DetectorParts {
    pub model: ModelThread<Detector>,
    pub version: ModelVersion,
    /// `detector+backbone+head` from the manifests: what jobs that pin a code version
    /// are checked against.
    pub code_version: ModelVersion,
    pub input_size: (u32, u32),
    /// The feature network's input: crops are handed on already stretched to it.
    pub crop_size: (u32, u32),
    /// The configured rule, with what the detector's manifest says the code is of.
    pub rule: MainObjectRule,
}

pub struct ExtractorParts {
    pub model: ModelThread<Extractor>,
    /// `backbone@v+head@v`, before the detector's version is prefixed.
    pub version: ModelVersion,
    pub input_size: (u32, u32),
    pub bits: usize,
}

pub fn load_detector(settings: &PipelineSettings) -> Result<DetectorParts, LoadError> {
    let dir = settings.models.resolve_dir().map_err(LoadError::Settings)?;
    let runtime = Runtime::open(&settings.runtime, settings.models.shared_intra_threads)?;
    let crop_size = backbone_input(&dir.join(&settings.models.backbone))?;
    let rule = main_object_rule(settings)?;
    let (_, code_version) = settings.versions().map_err(LoadError::Settings)?;
    let path = dir.join(&settings.models.detector);
    let session = settings.models.detector_session;
    let thresholds = settings.models.thresholds;
    let workers = settings.models.detector_workers;
    let (model, (version, input_size)) = ModelThread::spawn("detector", workers, move || {
        Detector::load(&runtime, &path, session, thresholds).map(|d| {
            let info = (d.version().clone(), d.input_size());
            (d, info)
        })
    })?;
    let version = crate::recipe::detector_version(version, &settings.decode.decoding())
        .map_err(|e| LoadError::Settings(e.to_string()))?;
    Ok(DetectorParts {
        model,
        version,
        code_version,
        input_size,
        crop_size,
        rule,
    })
}

/// The main-object rule of the configured detector: the settings' rule, made "always the
/// whole image" when the detector's manifest says its version codes whole images. Every
/// place that picks a main object (stages, serve, training, benchmarks) asks here, so
/// none can code a whole-image version's images from a crop or the reverse.
pub fn main_object_rule(settings: &PipelineSettings) -> Result<MainObjectRule, LoadError> {
    let dir = settings.models.resolve_dir().map_err(LoadError::Settings)?;
    let manifest = Manifest::load(&dir.join(&settings.models.detector))?;
    match &manifest.kind {
        ManifestKind::Detector(spec) => Ok(MainObjectRule {
            whole_image: spec.code_from == CodeFrom::WholeImage,
            ..settings.detector.main_object
        }),
        _ => Err(LoadError::Settings(format!(
            "pipeline.models.detector: {} is not a detector manifest",
            manifest.name
        ))),
    }
}

/// The backbone's input size from its manifest alone: a detector pool never loads the
/// backbone, yet must cut crops to its size.
fn backbone_input(manifest: &std::path::Path) -> Result<(u32, u32), LoadError> {
    let manifest = Manifest::load(manifest)?;
    match &manifest.kind {
        ManifestKind::Backbone(spec) => Ok((spec.input.width, spec.input.height)),
        _ => Err(LoadError::Settings(format!(
            "pipeline.models.backbone: {} is not a backbone manifest",
            manifest.name
        ))),
    }
}

pub fn load_extractor(settings: &PipelineSettings) -> Result<ExtractorParts, LoadError> {
    let dir = settings.models.resolve_dir().map_err(LoadError::Settings)?;
    let runtime = Runtime::open(&settings.runtime, settings.models.shared_intra_threads)?;
    let backbone = dir.join(&settings.models.backbone);
    let head = dir.join(&settings.models.hash_head);
    let session = settings.models.extractor_session;
    let workers = settings.models.extractor_workers;
    let (model, (version, input_size, bits)) =
        ModelThread::spawn("extractor", workers, move || {
            Extractor::load(&runtime, &backbone, &head, session).map(|e| {
                let info = (e.version().clone(), e.input_size(), e.bits());
                (e, info)
            })
        })?;
    Ok(ExtractorParts {
        model,
        version,
        input_size,
        bits,
    })
}

pub fn cpu_pool(settings: &PipelineSettings) -> Result<CpuPool, LoadError> {
    Ok(CpuPool::new(
        settings.decode.threads,
        settings.decode.max_queued,
    )?)
}

pub struct StageAdapters {
    pub source: Arc<dyn ImageSource>,
    pub store: Arc<dyn ResultStore>,
    pub downstream: Downstream,
}

pub fn detector_stage(
    settings: &PipelineSettings,
    parts: &DetectorParts,
    pool: CpuPool,
    adapters: StageAdapters,
    events: Events,
) -> DetectorStage {
    DetectorStage {
        source: adapters.source,
        store: adapters.store,
        downstream: adapters.downstream,
        model: parts.model.clone(),
        model_version: parts.version.clone(),
        code_version: parts.code_version.clone(),
        input_size: parts.input_size,
        crop_size: parts.crop_size,
        pool,
        decoding: settings.decode.decoding(),
        config: crate::detect_stage::DetectorStageConfig {
            main_object: parts.rule,
            ..settings.detector.clone()
        },
        events,
        build_record: crate::recipe::build_record,
        cancelled: None,
    }
}

pub fn extractor_stage(
    settings: &PipelineSettings,
    parts: &ExtractorParts,
    pool: CpuPool,
    store: Arc<dyn ResultStore>,
    events: Events,
) -> ExtractorStage {
    ExtractorStage {
        store,
        model: parts.model.clone(),
        extractor_version: parts.version.clone(),
        input_size: parts.input_size,
        pool,
        limits: settings.decode.limits(),
        config: settings.extractor.clone(),
        events,
        code_events: Arc::new(crate::code_events::NoAnnouncements),
    }
}
