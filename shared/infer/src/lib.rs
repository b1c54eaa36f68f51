//! The in-process inference engine: an image in, its main object and code out, computed
//! by exactly the functions and models `imgfeat index` uses, with images of different
//! callers sharing batches. A service holds one [`Engine`]:
//!
//! - [`admission`]: at most `max_queued` images admitted at once, the next refused at
//!   once (a value, not a log line);
//! - [`batcher`]: one task per model closing batches with the workers' rule, dropping
//!   late items before the model runs, with its own metrics;
//! - [`variant`]: one model version (a detector and an extractor, each on its own
//!   thread and session behind its own batcher);
//! - [`models`]: the versions served side by side;
//! - [`metrics`], [`settings`], [`answer`] (the JSON of an inferred image);
//! - [`http`] (feature `http`): reading images from a request and the `{error, reason}`
//!   answer of each refusal and failure, for the services that take images over HTTP.

pub mod admission;
pub mod answer;
pub mod batcher;
pub mod engine;
#[cfg(feature = "http")]
pub mod http;
pub mod metrics;
pub mod models;
pub mod settings;
pub mod variant;

pub use admission::{Admission, Admitted, Refused};
pub use engine::{Engine, EngineError};
pub use metrics::{BatchMetrics, EngineMetrics};
pub use models::Models;
pub use settings::EngineSettings;
pub use variant::{InferError, Inferred, Timings, Variant};
