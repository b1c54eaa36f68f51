//! The extractor model: a backbone and the hash head that belongs to its model version.

use std::path::Path;

use imgfeat_core::{BinaryCode, ModelVersion};

use crate::manifest::Manifest;
use crate::{Backbone, HashHead, ModelError, Runtime, SessionOptions};

pub struct Extractor {
    backbone: Backbone,
    head: HashHead,
    version: ModelVersion,
}

impl Extractor {
    pub fn load(
        runtime: &Runtime,
        backbone_manifest: &Path,
        head_manifest: &Path,
        options: SessionOptions,
    ) -> Result<Self, ModelError> {
        let backbone = Backbone::load(runtime, backbone_manifest, options)?;
        let head = HashHead::load(&Manifest::load(head_manifest)?)?;
        Self::new(backbone, head)
    }

    pub fn new(backbone: Backbone, head: HashHead) -> Result<Self, ModelError> {
        let version = head
            .version()
            .after(backbone.version())
            .map_err(|e| ModelError::Shape {
                model: head.version().to_string(),
                message: e.to_string(),
            })?;
        Ok(Self {
            backbone,
            head,
            version,
        })
    }

    /// `backbone@v+head@v`: the version of codes made from a detector's crops is this
    /// after the detector's version.
    pub fn version(&self) -> &ModelVersion {
        &self.version
    }

    /// The version under which codes of crops from `detector` are stored.
    pub fn code_version(&self, detector: &ModelVersion) -> Result<ModelVersion, ModelError> {
        self.version.after(detector).map_err(|e| ModelError::Shape {
            model: self.version.to_string(),
            message: e.to_string(),
        })
    }

    pub fn input_size(&self) -> (u32, u32) {
        self.backbone.input_size()
    }

    pub fn bits(&self) -> usize {
        self.head.bits()
    }

    /// Embeds and hashes a batch of `batch` NHWC images.
    pub fn codes(&mut self, input: &[f32], batch: usize) -> Result<Vec<BinaryCode>, ModelError> {
        self.backbone
            .embed(input, batch)?
            .iter()
            .map(|e| self.head.code(e))
            .collect()
    }

    pub fn backbone_mut(&mut self) -> &mut Backbone {
        &mut self.backbone
    }
}
