//! Learning hash heads from the user's own photos (`imgfeat head train`).
//!
//! [`embed`] runs each photo's main-object crop and seeded augmented views of it
//! through the detector and backbone as the pipeline does; [`cache`] keeps those
//! embeddings between runs. [`itq`] (PCA + iterative quantization) and [`deepbit`]
//! (a projection invariant to the views, then the same rotation) learn a linear head;
//! [`objectives`] scores it; [`head_file`] writes it as a `linear_hash` model.

pub mod cache;
pub mod deepbit;
pub mod embed;
pub mod head_file;
pub mod itq;
mod linalg;
pub mod objectives;
mod train;

pub use embed::{EmbedSpec, Embeddings};
pub use head_file::{HeadRecord, write_head};
pub use objectives::Objectives;
pub use train::{LinearHead, Method, fit};

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Model(#[from] imgfeat_model::ModelError),
    #[error(transparent)]
    Imaging(#[from] imgfeat_imaging::ImagingError),
    #[error(transparent)]
    Eval(#[from] imgfeat_eval::EvalError),
    #[error("linear algebra: {0}")]
    Linalg(String),
    #[error("{0}")]
    Invalid(String),
    #[error("embedding cache {path}: {message}")]
    Cache { path: String, message: String },
}

impl TrainError {
    pub(crate) fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.display().to_string();
        move |source| TrainError::Io { path, source }
    }
}

/// Where long steps report: the CLI draws a bar, tests pass [`NoProgress`].
pub trait Progress {
    /// A step named `phase` starts, with `total` units of work.
    fn start(&self, phase: &str, total: u64);
    /// `done` units are finished; `loss` is the current objective, if the phase has one.
    fn advance(&self, done: u64, loss: Option<f64>);
    fn finish(&self);
}

pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64, _: Option<f64>) {}
    fn finish(&self) {}
}
