//! A graph on ONNX Runtime, with the session options of [`SessionOptions`].

use std::path::Path;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::TensorRef;

use super::{GraphSession, OrtRuntime};
use crate::ModelError;
use crate::session::{SessionOptions, TensorOutput};

pub(crate) struct OrtSession {
    session: Session,
    model: String,
    input_name: String,
}

impl OrtSession {
    pub(crate) fn load(
        runtime: &OrtRuntime,
        path: &Path,
        model: &str,
        input_name: &str,
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
        })
    }
}

impl GraphSession for OrtSession {
    fn output_names(&self) -> Vec<String> {
        self.session
            .outputs()
            .iter()
            .map(|o| o.name().to_string())
            .collect()
    }

    fn run(
        &mut self,
        shape: [usize; 4],
        input: &[f32],
        outputs: &[&str],
    ) -> Result<Vec<TensorOutput>, ModelError> {
        let model = self.model.clone();
        let ort_err = |e: ort::Error| ModelError::Ort {
            model: model.clone(),
            message: e.to_string(),
        };
        let tensor = TensorRef::from_array_view((shape, input)).map_err(ort_err)?;
        let results = self
            .session
            .run(ort::inputs![self.input_name.as_str() => tensor])
            .map_err(ort_err)?;
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
