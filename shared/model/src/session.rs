//! One ONNX Runtime session with its options, fed NHWC f32 batches.

use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;
use serde::{Deserialize, Serialize};

use crate::{ModelError, OrtRuntime};

/// Threading and memory of one session. Spinning is off by default: on a small machine
/// the decode pool shares the cores, and spinning intra-op threads starve it (measured on
/// this 2-core VM: 2-3x slower under load with spinning on).
///
/// Even without spinning, a session with several intra-op threads waits at each parallel
/// operator's barrier in a pause loop whenever another session or a decode task has
/// preempted one of its threads (perf of `index`, detector on both cores: 6-8 % of all
/// samples in that loop). The pipeline therefore runs one-thread sessions, one copy per
/// core ([`SessionOptions::one_thread`], `ModelSettings`' default); a session on several
/// threads is a setting, for a model alone on its cores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionOptions {
    pub intra_threads: usize,
    pub spinning: bool,
    /// ONNX Runtime's `session.dynamic_block_base`; 0 leaves it off. With it, a parallel
    /// operator's work is handed out in shrinking blocks that idle threads take, instead
    /// of one equal share per thread, so a thread preempted by the other session or by
    /// decoding delays the operator by a block rather than by its whole share.
    /// Off by default: on 2 cores, base 4 gave 1.00-1.04x and base 8 0.95-1.02x the
    /// default end to end (imgfeat-bench, `--e2e b4:block=4`, two pairs each), within
    /// the machine's noise.
    pub dynamic_block_base: u32,
    /// ONNX Runtime's memory pattern: it plans one block for all of a run's
    /// intermediate tensors, per input shape.
    pub memory_pattern: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self::half_the_cores()
    }
}

impl SessionOptions {
    /// Intra-op threads on half the cores (at least one), no spinning.
    pub fn half_the_cores() -> Self {
        Self::with_threads(cores() / 2)
    }

    /// One intra-op thread (no pool, so no barrier waits), no memory pattern: the
    /// session of a model worker that runs whole batches on one core. The pattern is
    /// planned per input shape, and batches vary in size, so it only adds blocks
    /// (`index`, two workers per model, batches of 4: peak RSS 643-661 MB without
    /// against 689-695 with, at the same speed). The CPU arena stays: without it the
    /// same run took 1.15-1.19x the RSS and ran 0.82-0.87x as fast.
    pub fn one_thread() -> Self {
        Self {
            memory_pattern: false,
            ..Self::with_threads(1)
        }
    }

    fn with_threads(n: usize) -> Self {
        Self {
            intra_threads: n.max(1),
            spinning: false,
            dynamic_block_base: 0,
            memory_pattern: true,
        }
    }
}

/// The cores this process may use (at least one), which the thread defaults count in.
pub fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// A float output of a run, copied out of ONNX Runtime's buffers.
#[derive(Debug, Clone)]
pub struct TensorOutput {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

pub(crate) struct OnnxSession {
    session: Session,
    model: String,
    input_name: String,
    height: usize,
    width: usize,
}

impl OnnxSession {
    pub(crate) fn load(
        runtime: &OrtRuntime,
        path: &Path,
        model: &str,
        input_name: &str,
        width: u32,
        height: u32,
        options: SessionOptions,
    ) -> Result<Self, ModelError> {
        let ort_err = |e: ort::Error<_>| ModelError::Ort {
            model: model.to_string(),
            message: e.to_string(),
        };
        let session = Session::builder(runtime.environment())
            .map_err(|e| ModelError::Ort {
                model: model.to_string(),
                message: e.to_string(),
            })?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(ort_err)?
            .with_intra_threads(options.intra_threads.max(1))
            .map_err(ort_err)?
            .with_config_entry(
                "session.dynamic_block_base",
                options.dynamic_block_base.to_string(),
            )
            .map_err(ort_err)?
            .with_inter_threads(1)
            .map_err(ort_err)?
            .with_intra_op_spinning(options.spinning)
            .map_err(ort_err)?
            .with_inter_op_spinning(false)
            .map_err(ort_err)?
            .with_memory_pattern(options.memory_pattern)
            .map_err(ort_err)?
            .commit_from_file(path)
            .map_err(|e| ModelError::Ort {
                model: model.to_string(),
                message: format!("loading {}: {e}", path.display()),
            })?;
        if !session.inputs().iter().any(|i| i.name() == input_name) {
            return Err(ModelError::Shape {
                model: model.to_string(),
                message: format!("the graph has no input named {input_name:?}"),
            });
        }
        Ok(Self {
            session,
            model: model.to_string(),
            input_name: input_name.to_string(),
            height: height as usize,
            width: width as usize,
        })
    }

    pub(crate) fn output_names(&self) -> Vec<String> {
        self.session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect()
    }

    pub(crate) fn input_len(&self) -> usize {
        self.height * self.width * 3
    }

    /// Runs a batch of `batch` images laid out NHWC in `input`, returning the named
    /// outputs in the order asked.
    pub(crate) fn run(
        &mut self,
        input: &[f32],
        batch: usize,
        outputs: &[&str],
    ) -> Result<Vec<TensorOutput>, ModelError> {
        if batch == 0 || input.len() != batch * self.input_len() {
            return Err(ModelError::Shape {
                model: self.model.clone(),
                message: format!(
                    "input has {} values, a batch of {batch} needs {}",
                    input.len(),
                    batch * self.input_len()
                ),
            });
        }
        let ort_err = |e: ort::Error| ModelError::Ort {
            model: self.model.clone(),
            message: e.to_string(),
        };
        let shape = [batch, self.height, self.width, 3];
        let tensor = TensorRef::from_array_view((shape, input)).map_err(ort_err)?;
        let model = self.model.clone();
        let results = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(|e| ModelError::Ort {
                model: model.clone(),
                message: e.to_string(),
            })?;
        outputs
            .iter()
            .map(|name| {
                let value = results.get(*name).ok_or_else(|| ModelError::Shape {
                    model: model.clone(),
                    message: format!("the graph has no output named {name:?}"),
                })?;
                let (shape, data) =
                    value
                        .try_extract_tensor::<f32>()
                        .map_err(|e| ModelError::Ort {
                            model: model.clone(),
                            message: format!("output {name}: {e}"),
                        })?;
                Ok(TensorOutput {
                    shape: shape.iter().map(|d| (*d).max(0) as usize).collect(),
                    data: data.to_vec(),
                })
            })
            .collect()
    }
}

/// A session opened from a manifest's ONNX spec, with the graph outputs of the given
/// roles resolved and checked, and the model's version.
pub(crate) struct OpenedModel {
    pub session: OnnxSession,
    /// Graph output names, in the order the roles were asked for.
    pub outputs: Vec<String>,
    pub version: imgfeat_core::ModelVersion,
}

impl OnnxSession {
    /// Verifies the model file's hash, opens it, and checks that the graph has an
    /// output for every role the manifest maps.
    pub(crate) fn open(
        runtime: &OrtRuntime,
        manifest: &crate::Manifest,
        spec: &crate::manifest::OnnxSpec,
        options: SessionOptions,
        roles: &[&str],
    ) -> Result<OpenedModel, ModelError> {
        let path = manifest.verified_file(&spec.file, &spec.sha256)?;
        let session = OnnxSession::load(
            runtime,
            &path,
            &manifest.name,
            &spec.input.name,
            spec.input.width,
            spec.input.height,
            options,
        )?;
        let names = session.output_names();
        let outputs = roles
            .iter()
            .map(|role| {
                let name = spec.outputs.get(*role).cloned().unwrap_or_default();
                if names.contains(&name) {
                    Ok(name)
                } else {
                    Err(ModelError::Shape {
                        model: manifest.name.clone(),
                        message: format!(
                            "the graph has no output {name:?} for {role} (it has {names:?})"
                        ),
                    })
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let version = manifest.model_version()?;
        Ok(OpenedModel {
            session,
            outputs,
            version,
        })
    }
}
