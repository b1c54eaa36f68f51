//! Models: graphs on ONNX Runtime or OpenVINO behind small typed wrappers, model manifests checked at
//! load, and the pure pre/post-processing around them (SSD decoding, NMS, main-object
//! choice, hash heads).

pub mod backbone;
pub mod cpu;
pub mod detector;
pub mod error;
pub mod extractor;
pub mod hash;
pub mod manifest;
pub mod postprocess;
pub mod runtime;
pub mod session;

pub use backbone::Backbone;
pub use detector::Detector;
pub use error::ModelError;
pub use extractor::Extractor;
pub use hash::HashHead;
pub use manifest::{CodeFrom, Manifest, ManifestKind};
pub use postprocess::{DetectorThresholds, MainObjectRule};
pub use runtime::{Backend, OrtRuntime, Precision, Runtime, RuntimeSettings};
pub use session::{SessionOptions, TensorOutput};
