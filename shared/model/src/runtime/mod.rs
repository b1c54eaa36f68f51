//! The runtimes a model graph can run on, behind one interface ([`GraphSession`]), and
//! the settings that choose one. ONNX Runtime is the default and the reference's own
//! runtime; OpenVINO runs the same ONNX files, often faster on Intel and AMD CPUs with
//! AVX-512, and is loaded from the library its PyPI wheel ships
//! (`scripts/setup-openvino.sh`).
//!
//! Versions stay honest: ONNX Runtime at f32 is the reference's own runtime and keeps
//! the manifests' versions. Any other runtime and precision stores under
//! `name@v.RUNTIME` (`@2.openvino-f32`, `@1.openvino-bf16`), unless the manifest lists
//! it in `same_version_on`, a claim a test must back: the fp32 pair lists
//! `openvino-f32`, whose boxes and codes `services/imgfeat/tests/runtimes_cli.rs`
//! checks are bit-identical to ONNX Runtime's on the golden photos. The INT8 files do
//! not: OpenVINO's int8 kernels round otherwise than MLAS's.

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
use crate::{Manifest, ManifestKind, ModelError, cpu};

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

    /// The CPU features (any one) this precision's kernels need.
    pub fn requires_cpu(self) -> &'static [&'static str] {
        match self {
            Precision::F32 => &[],
            Precision::Bf16 => &["amx_bf16", "avx512_bf16"],
        }
    }
}

impl RuntimeSettings {
    /// `ort`, `openvino-f32` or `openvino-bf16`: in version names, logs and benchmarks.
    pub fn label(&self) -> String {
        match self.backend {
            Backend::Ort => "ort".into(),
            Backend::Openvino => format!("openvino-{}", self.precision.as_str()),
        }
    }

    /// The version a network's results are stored under on this runtime: the
    /// manifest's on ONNX Runtime at f32 or on a runtime the manifest's
    /// `same_version_on` lists; `name@v.LABEL` on any other.
    pub fn version_of(&self, manifest: &Manifest) -> Result<ModelVersion, ModelError> {
        let version = manifest.model_version()?;
        let label = self.label();
        let same = match &manifest.kind {
            ManifestKind::Detector(spec) | ManifestKind::Backbone(spec) => {
                label == "ort" || spec.same_version_on.contains(&label)
            }
            // Heads run in Rust, not on the runtime.
            _ => true,
        };
        if same {
            return Ok(version);
        }
        ModelVersion::new(format!("{version}.{label}")).map_err(|e| ModelError::Unsupported {
            message: e.to_string(),
        })
    }

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
            Backend::Openvino => Err(ModelError::Unsupported {
                message: "this build has no OpenVINO support (cargo feature `openvino`)".into(),
            }),
        }
    }

    /// The settings this runtime was opened with.
    pub fn settings(&self) -> RuntimeSettings {
        match self {
            Runtime::Ort(_) => RuntimeSettings::default(),
            #[cfg(feature = "openvino")]
            Runtime::Openvino(rt) => RuntimeSettings {
                backend: Backend::Openvino,
                precision: rt.precision(),
            },
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

    fn manifest(same_version_on: &str) -> Manifest {
        let text = format!(
            "name = \"net\"\nversion = \"2\"\nkind = \"backbone\"\nlicence = \"x\"\n\
             provenance = \"x\"\nfile = \"net.onnx\"\nsha256 = \"00\"\n\
             same_version_on = [{same_version_on}]\n\
             [input]\nname = \"images\"\nlayout = \"NHWC\"\nwidth = 8\nheight = 8\n\
             [outputs]\nembedding = \"embedding\"\n"
        );
        toml::from_str(&text).unwrap()
    }

    #[test]
    fn only_ort_and_the_runtimes_a_manifest_vouches_for_keep_its_version() {
        let at = |backend, precision| RuntimeSettings { backend, precision };
        let vouched = manifest("\"openvino-f32\"");
        let silent = manifest("");
        let version = |s: RuntimeSettings, m: &Manifest| s.version_of(m).unwrap().to_string();
        assert_eq!(version(RuntimeSettings::default(), &silent), "net@2");
        assert_eq!(
            version(at(Backend::Openvino, Precision::F32), &vouched),
            "net@2"
        );
        assert_eq!(
            version(at(Backend::Openvino, Precision::F32), &silent),
            "net@2.openvino-f32"
        );
        assert_eq!(
            version(at(Backend::Openvino, Precision::Bf16), &vouched),
            "net@2.openvino-bf16"
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
