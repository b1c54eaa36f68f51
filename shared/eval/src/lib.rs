//! `imgfeat eval`: a reproducible near-duplicate benchmark on any folder of photos.
//!
//! [`corpus`] writes each photo and its seeded transformed copies ([`transform`]) under
//! numeric names into a scratch folder; the command runs them through the pipeline and
//! hands the codes to [`evaluate`], which ranks every code against every copy
//! ([`metrics`]) and builds the [`report`]; [`plot`] draws its two histograms.

pub mod corpus;
mod evaluate;
pub mod metrics;
pub mod plot;
pub mod report;
mod rotate;
pub mod split;
pub mod transform;

pub use corpus::{Corpus, CorpusItem};
pub use evaluate::{CodedItem, evaluate};
pub use report::{EvalReport, VersionReport};
pub use transform::{TransformKind, TransformParams};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("image: {0}")]
    Image(#[from] image::ImageError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("none of the {0} photos could be decoded")]
    NoPhotos(usize),
    #[error("--copies must be 1-999, not {0}")]
    Copies(usize),
    #[error("plot: {0}")]
    Plot(String),
    #[error("codes of one version have {0} and {1} bits")]
    MixedLengths(u32, u32),
}
