//! A feature network: NHWC batch in, one embedding per image out.

use std::path::Path;

use imgfeat_core::ModelVersion;

use crate::manifest::{Manifest, ManifestKind};
use crate::session::ModelSession;
use crate::{ModelError, Runtime, SessionOptions};

pub struct Backbone {
    session: ModelSession,
    embedding_output: String,
    version: ModelVersion,
    width: u32,
    height: u32,
}

impl Backbone {
    pub fn load(
        runtime: &Runtime,
        manifest_path: &Path,
        options: SessionOptions,
    ) -> Result<Self, ModelError> {
        let manifest = Manifest::load(manifest_path)?;
        let ManifestKind::Backbone(spec) = &manifest.kind else {
            return Err(ModelError::Manifest {
                path: manifest_path.to_path_buf(),
                message: format!("{} is not a backbone", manifest.name),
            });
        };
        let mut opened = ModelSession::open(runtime, &manifest, spec, options, &["embedding"])?;
        let embedding_output = opened.outputs.remove(0);
        let (session, version) = (opened.session, opened.version);
        Ok(Self {
            session,
            embedding_output,
            version,
            width: spec.input.width,
            height: spec.input.height,
        })
    }

    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    pub fn input_size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Embeds a batch of `batch` NHWC images.
    pub fn embed(&mut self, input: &[f32], batch: usize) -> Result<Vec<Vec<f32>>, ModelError> {
        let mut outputs = self
            .session
            .run(input, batch, &[self.embedding_output.as_str()])?;
        let out = outputs.pop().ok_or_else(|| ModelError::Shape {
            model: self.version.to_string(),
            message: "no embedding output".into(),
        })?;
        if out.shape.len() != 2 || out.shape[0] != batch || out.shape[1] == 0 {
            return Err(ModelError::Shape {
                model: self.version.to_string(),
                message: format!("embedding has shape {:?}", out.shape),
            });
        }
        Ok(out.data.chunks(out.shape[1]).map(<[f32]>::to_vec).collect())
    }
}
