//! The embedded job, `imgfeat index`: a folder walked, each image registered under an
//! ID, and the pipeline's two stages run in this process over an in-process queue
//! ([`local_queue`], the stand-in for RabbitMQ) into the store. It composes the
//! pipeline with adapters, so it lives above it: the pipeline knows ports only.

pub mod index;
pub mod local_queue;

pub use index::{IndexOptions, IndexRun, IndexSummary};
