//! One model graph with its options, fed NHWC f32 batches, on whichever runtime the
//! settings chose.

use serde::{Deserialize, Serialize};

use crate::runtime::{GraphSession, Runtime};
use crate::{ModelError, cpu};

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

/// A model graph on the runtime the settings chose, with the input's shape checked
/// here once for every runtime.
pub(crate) struct ModelSession {
    graph: Box<dyn GraphSession>,
    model: String,
    height: usize,
    width: usize,
}

impl ModelSession {
    pub(crate) fn output_names(&self) -> Vec<String> {
        self.graph.output_names()
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
        let shape = [batch, self.height, self.width, 3];
        self.graph.run(shape, input, outputs)
    }
}

/// A session opened from a manifest's ONNX spec, with the graph outputs of the given
/// roles resolved and checked, and the model's version.
pub(crate) struct OpenedModel {
    pub session: ModelSession,
    /// Graph output names, in the order the roles were asked for.
    pub outputs: Vec<String>,
    pub version: imgfeat_core::ModelVersion,
}

impl ModelSession {
    /// Verifies the model file's hash and that this CPU has what the model's kernels
    /// need, opens it, and checks that the graph has an output for every role the
    /// manifest maps. The version is the manifest's, or the runtime's own (see
    /// [`crate::RuntimeSettings::version_of`]).
    pub(crate) fn open(
        runtime: &Runtime,
        manifest: &crate::Manifest,
        spec: &crate::manifest::OnnxSpec,
        options: SessionOptions,
        roles: &[&str],
    ) -> Result<OpenedModel, ModelError> {
        if let Some(why) = cpu::missing(&spec.requires_cpu, &cpu::flags()) {
            return Err(ModelError::Unsupported {
                message: format!(
                    "model {} {why} (its manifest's requires_cpu); use the model without \
                     that suffix on this machine",
                    manifest.name
                ),
            });
        }
        let path = manifest.verified_file(&spec.file, &spec.sha256)?;
        let graph = runtime.load_graph(&path, &manifest.name, &spec.input.name, options)?;
        let session = ModelSession {
            graph,
            model: manifest.name.clone(),
            height: spec.input.height as usize,
            width: spec.input.width as usize,
        };
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
        let version = runtime.settings().version_of(manifest)?;
        Ok(OpenedModel {
            session,
            outputs,
            version,
        })
    }
}
