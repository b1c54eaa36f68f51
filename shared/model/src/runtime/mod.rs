//! The runtimes a model graph can run on, behind one interface ([`GraphSession`]), and
//! the settings that choose one. ONNX Runtime is the default and the reference's own
//! runtime; OpenVINO runs the same ONNX files, often faster on Intel and AMD CPUs with
//! AVX-512, and is loaded from the library its PyPI wheel ships
//! (`scripts/setup-openvino.sh`).
//!
//! A runtime that computes the reference's numbers (ONNX Runtime f32, OpenVINO f32:
//! `tests/runtimes.rs` checks the codes are bit-identical on the golden photos) keeps
//! the manifests' versions. A precision that does not (bf16) stores under its own
//! version, `name@v.bf16`, so its codes never mix with f32 codes.

mod ort_loader;
mod ort_session;

#[cfg(feature = "openvino")]
mod openvino_loader;
#[cfg(feature = "openvino")]
mod openvino_session;

use std::path::Path;

use imgfeat_core::ModelVersion;
use serde::{Deserialize, Serialize};

#[cfg(feature = "openvino")]
pub use self::openvino_loader::{OPENVINO_VERSION, OpenVinoRuntime};
pub use self::ort_loader::{ORT_LIB_NAME, ORT_VERSION, OrtRuntime, candidates, locate};
use crate::session::{SessionOptions, TensorOutput};
use crate::{ModelError, cpu};

/// `[pipeline.runtime]`: which runtime runs the models, at which precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeSettings {
    pub backend: Backend,
    pub precision: Precision,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// ONNX Runtime 1.31.1 (`scripts/setup-onnxruntime.sh`).
    #[default]
    Ort,
    /// OpenVINO 2026.4.1 on the CPU (`scripts/setup-openvino.sh`).
    Openvino,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// The graphs' own precision: the reference's numbers.
    #[default]
    F32,
    /// bfloat16 activations and weights where the runtime has kernels for them (AMX or
    /// AVX512-BF16). Faster, with different codes: its own version.
    Bf16,
}

impl Precision {
    pub fn as_str(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }

    /// The version results of a model run at this precision are stored under: the
    /// manifest's for f32, `name@v.bf16` for bf16.
    pub fn version_of(self, version: ModelVersion) -> Result<ModelVersion, ModelError> {
        match self {
            Precision::F32 => Ok(version),
            Precision::Bf16 => {
                ModelVersion::new(format!("{version}.bf16")).map_err(|e| ModelError::Unsupported {
                    message: e.to_string(),
                })
            }
        }
    }

    /// The CPU features (any one) this precision's kernels need.
    pub fn requires_cpu(self) -> &'static [&'static str] {
        match self {
            Precision::F32 => &[],
            Precision::Bf16 => &["amx_bf16", "avx512_bf16"],
        }
    }
}

impl RuntimeSettings {
    /// Settings that parse but cannot run, named by key.
    pub fn validate(&self, shared_intra_threads: usize) -> Result<(), String> {
        match self.backend {
            Backend::Ort if self.precision != Precision::F32 => Err(format!(
                "pipeline.runtime.precision = \"{}\" needs backend = \"openvino\" (ONNX Runtime's CPU kernels are f32)",
                self.precision.as_str()
            )),
            Backend::Openvino if shared_intra_threads > 0 => Err(
                "pipeline.models.shared_intra_threads is ONNX Runtime's shared pool; with backend = \"openvino\" leave it 0".into(),
            ),
            Backend::Openvino if !cfg!(feature = "openvino") => Err(
                "pipeline.runtime.backend = \"openvino\": this build has no OpenVINO support (cargo feature `openvino`)".into(),
            ),
            _ => Ok(()),
        }
    }
}

/// A loaded runtime, shared by the sessions it opens.
#[derive(Clone)]
pub enum Runtime {
    Ort(OrtRuntime),
    #[cfg(feature = "openvino")]
    Openvino(OpenVinoRuntime),
}

impl From<OrtRuntime> for Runtime {
    fn from(rt: OrtRuntime) -> Self {
        Runtime::Ort(rt)
    }
}

impl Runtime {
    /// Loads the runtime the settings name (once per process for each kind), after
    /// checking that this CPU has what its precision needs.
    pub fn open(
        settings: &RuntimeSettings,
        shared_intra_threads: usize,
    ) -> Result<Self, ModelError> {
        settings
            .validate(shared_intra_threads)
            .map_err(|message| ModelError::Unsupported { message })?;
        let need: Vec<String> = settings
            .precision
            .requires_cpu()
            .iter()
            .map(|s| s.to_string())
            .collect();
        if let Some(why) = cpu::missing(&need, &cpu::flags()) {
            return Err(ModelError::Unsupported {
                message: format!("precision {}: {why}", settings.precision.as_str()),
            });
        }
        match settings.backend {
            Backend::Ort => Ok(OrtRuntime::with_shared_pool(shared_intra_threads)?.into()),
            #[cfg(feature = "openvino")]
            Backend::Openvino => Ok(Runtime::Openvino(OpenVinoRuntime::get(settings.precision)?)),
            #[cfg(not(feature = "openvino"))]
            Backend::Openvino => unreachable!("validate refuses openvino without the feature"),
        }
    }

    pub fn precision(&self) -> Precision {
        match self {
            Runtime::Ort(_) => Precision::F32,
            #[cfg(feature = "openvino")]
            Runtime::Openvino(rt) => rt.precision(),
        }
    }

    /// A short name for logs and benchmark rows: `ort`, `openvino-f32`, `openvino-bf16`.
    pub fn label(&self) -> String {
        match self {
            Runtime::Ort(_) => "ort".into(),
            #[cfg(feature = "openvino")]
            Runtime::Openvino(rt) => format!("openvino-{}", rt.precision().as_str()),
        }
    }

    pub(crate) fn load_graph(
        &self,
        path: &Path,
        model: &str,
        input_name: &str,
        options: SessionOptions,
    ) -> Result<Box<dyn GraphSession>, ModelError> {
        match self {
            Runtime::Ort(rt) => Ok(Box::new(ort_session::OrtSession::load(
                rt, path, model, input_name, options,
            )?)),
            #[cfg(feature = "openvino")]
            Runtime::Openvino(rt) => Ok(Box::new(openvino_session::OpenVinoSession::load(
                rt, path, model, input_name, options,
            )?)),
        }
    }
}

/// One model graph loaded on a runtime: NHWC f32 batches in, named f32 outputs out.
/// The caller ([`crate::session::ModelSession`]) has checked the input's length.
pub(crate) trait GraphSession: Send {
    fn output_names(&self) -> Vec<String>;
    fn run(
        &mut self,
        shape: [usize; 4],
        input: &[f32],
        outputs: &[&str],
    ) -> Result<Vec<TensorOutput>, ModelError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_is_its_own_version_and_f32_keeps_the_manifests() {
        let v = ModelVersion::new("efficientnet_lite0_imagenet@1").unwrap();
        assert_eq!(Precision::F32.version_of(v.clone()).unwrap(), v);
        assert_eq!(
            Precision::Bf16.version_of(v).unwrap().as_str(),
            "efficientnet_lite0_imagenet@1.bf16"
        );
    }

    #[test]
    fn settings_that_cannot_run_are_refused_by_name() {
        let bf16_on_ort = RuntimeSettings {
            backend: Backend::Ort,
            precision: Precision::Bf16,
        };
        let err = bf16_on_ort.validate(0).unwrap_err();
        assert!(err.contains("needs backend = \"openvino\""), "{err}");
        let shared_pool = RuntimeSettings {
            backend: Backend::Openvino,
            precision: Precision::F32,
        };
        assert!(shared_pool.validate(2).is_err());
        assert!(RuntimeSettings::default().validate(2).is_ok());
    }

    #[test]
    fn settings_parse_as_the_issue_names_them() {
        let s: RuntimeSettings =
            toml::from_str("backend = \"openvino\"\nprecision = \"bf16\"").unwrap();
        assert_eq!(
            (s.backend, s.precision),
            (Backend::Openvino, Precision::Bf16)
        );
        assert!(toml::from_str::<RuntimeSettings>("backend = \"tensorrt\"").is_err());
    }
}
