//! A graph on OpenVINO's CPU plugin, read straight from the ONNX file (no IR
//! conversion step), with one stream of `intra_threads` threads: the same shape as an
//! ONNX Runtime session of the pipeline's one-thread-per-copy layout.

use std::path::Path;

use openvino::{
    CompiledModel, Core, DeviceType, ElementType, InferRequest, RwPropertyKey, Shape, Tensor,
};

use super::{GraphSession, OpenVinoRuntime};
use crate::ModelError;
use crate::session::{SessionOptions, TensorOutput};

/// Fields drop in order: the request before its compiled model before the core.
pub(crate) struct OpenVinoSession {
    request: InferRequest,
    compiled: CompiledModel,
    _core: Core,
    model: String,
    input_name: String,
}

impl OpenVinoSession {
    pub(crate) fn load(
        runtime: &OpenVinoRuntime,
        path: &Path,
        model: &str,
        input_name: &str,
        options: SessionOptions,
    ) -> Result<Self, ModelError> {
        let err = |what: &str, e: &dyn std::fmt::Display| ModelError::OpenVino {
            model: model.to_string(),
            message: format!("{what}: {e}"),
        };
        let mut core = Core::new().map_err(|e| err("creating a core", &e))?;
        let threads = options.intra_threads.max(1).to_string();
        let precision = runtime.precision().as_str();
        // Spinning and ONNX Runtime's block base have no OpenVINO counterpart; one
        // stream and the thread count keep it to the cores the settings give it. No
        // pinning: the pipeline runs a copy of each model per core beside the decode
        // pool, and copies pinned by separate cores could land on the same core.
        let properties = [
            (RwPropertyKey::HintEnableCpuPinning, "NO"),
            (RwPropertyKey::InferenceNumThreads, threads.as_str()),
            (RwPropertyKey::NumStreams, "1"),
            (RwPropertyKey::HintInferencePrecision, precision),
            (RwPropertyKey::HintPerformanceMode, "LATENCY"),
        ];
        core.set_properties(&DeviceType::CPU, properties)
            .map_err(|e| err("setting CPU properties", &e))?;
        let path_str = path.to_str().ok_or_else(|| ModelError::OpenVino {
            model: model.to_string(),
            message: format!("{} is not UTF-8", path.display()),
        })?;
        let graph = core
            .read_model_from_file(path_str, "")
            .map_err(|e| err(&format!("reading {}", path.display()), &e))?;
        let inputs = (0..graph.get_inputs_len().map_err(|e| err("inputs", &e))?)
            .map(|i| graph.get_input_by_index(i).and_then(|n| n.get_name()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| err("input names", &e))?;
        if !inputs.iter().any(|n| n == input_name) {
            return Err(ModelError::Shape {
                model: model.to_string(),
                message: format!("the graph has no input named {input_name:?} (it has {inputs:?})"),
            });
        }
        let mut compiled = core
            .compile_model(&graph, DeviceType::CPU)
            .map_err(|e| err("compiling for the CPU", &e))?;
        let request = compiled
            .create_infer_request()
            .map_err(|e| err("creating an infer request", &e))?;
        Ok(Self {
            request,
            compiled,
            _core: core,
            model: model.to_string(),
            input_name: input_name.to_string(),
        })
    }

    fn err(&self, what: &str, e: impl std::fmt::Display) -> ModelError {
        ModelError::OpenVino {
            model: self.model.clone(),
            message: format!("{what}: {e}"),
        }
    }
}

impl GraphSession for OpenVinoSession {
    fn output_names(&self) -> Vec<String> {
        let count = self.compiled.get_output_size().unwrap_or(0);
        (0..count)
            .filter_map(|i| self.compiled.get_output_by_index(i).ok()?.get_name().ok())
            .collect()
    }

    fn run(
        &mut self,
        shape: [usize; 4],
        input: &[f32],
        outputs: &[&str],
    ) -> Result<Vec<TensorOutput>, ModelError> {
        let dims = shape.map(|d| d as i64);
        let shape = Shape::new(&dims).map_err(|e| self.err("input shape", e))?;
        let mut tensor =
            Tensor::new(ElementType::F32, &shape).map_err(|e| self.err("input tensor", e))?;
        tensor
            .get_data_mut::<f32>()
            .map_err(|e| self.err("input tensor", e))?
            .copy_from_slice(input);
        self.request
            .set_tensor(&self.input_name, &tensor)
            .map_err(|e| self.err("setting the input", e))?;
        self.request.infer().map_err(|e| self.err("inference", e))?;
        outputs
            .iter()
            .map(|name| {
                let out = self
                    .request
                    .get_tensor(name)
                    .map_err(|e| self.err(&format!("output {name}"), e))?;
                let shape = out
                    .get_shape()
                    .map_err(|e| self.err(&format!("output {name}"), e))?
                    .get_dimensions()
                    .iter()
                    .map(|d| (*d).max(0) as usize)
                    .collect();
                let data = out
                    .get_data::<f32>()
                    .map_err(|e| self.err(&format!("output {name}"), e))?
                    .to_vec();
                Ok(TensorOutput { shape, data })
            })
            .collect()
    }
}
