//! The pipeline stages and their plumbing: fetch -> decode -> batch -> infer -> crop
//! -> persist -> publish -> ack. Stages know ports, never adapters; services (and the
//! embedded `index` run, `imgfeat-embedded`) choose the adapters.

pub mod batch_runs;
pub mod batcher;
pub mod cancelled;
pub mod chain;
pub mod code_events;
pub mod detect_stage;
pub mod events;
pub mod extract_stage;
mod intake;
pub mod parts;
mod per_item;
pub mod recipe;
pub mod settings;
mod settle;

pub use batcher::BatchPolicy;
pub use events::{Event, EventSink, Events, Outcome, Phase, Worker};
pub use imgfeat_core::shutdown::{Shutdown, ShutdownTrigger, shutdown_pair};
pub use settings::PipelineSettings;
