use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "ONNX Runtime library not found (looked in: {tried}). Run `scripts/setup-onnxruntime.sh` \
         in the repository to install the pinned onnxruntime 1.31.1 library into .local/onnxruntime, \
         or set IMGFEAT_ORT_LIB to the path of libonnxruntime.so.1.31.1"
    )]
    RuntimeNotFound { tried: String },
    #[error("could not load ONNX Runtime from {path}: {message}")]
    RuntimeLoad { path: PathBuf, message: String },
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("manifest {path} is invalid: {message}")]
    Manifest { path: PathBuf, message: String },
    #[error(
        "{path} has sha256 {actual}, but its manifest expects {expected}: wrong or corrupt model file"
    )]
    HashMismatch {
        path: PathBuf,
        expected: String,
        actual: String,
    },
    #[error("model {model} does not fit its manifest: {message}")]
    Shape { model: String, message: String },
    #[error("ONNX Runtime error in {model}: {message}")]
    Ort { model: String, message: String },
    #[error(
        "OpenVINO library not found (looked in: {tried}). Run `scripts/setup-openvino.sh` in \
         the repository to install the pinned OpenVINO 2026.4.1 libraries into .local/openvino, \
         or set IMGFEAT_OPENVINO_DIR to a folder holding libopenvino_c.so"
    )]
    OpenVinoNotFound { tried: String },
    #[error("OpenVINO error in {model}: {message}")]
    OpenVino { model: String, message: String },
    /// Settings or a model this machine or build cannot run as asked.
    #[error("{message}")]
    Unsupported { message: String },
}
