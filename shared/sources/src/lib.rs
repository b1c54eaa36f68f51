//! The image sources, one module per place images live, each behind the
//! `ImageSource` port of `imgfeat-core`: a folder ([`fs`]), an HTTP(S) URL template
//! ([`http`], feature `http`), a CQL blob table ([`cql`], feature `cql`).
//!
//! A worker's settings choose one ([`SourceSettings::open`], which hands back the port
//! and its readiness check); nothing here knows about the pipeline.

#[cfg(feature = "cql")]
pub mod cql;
pub mod fs;
#[cfg(feature = "http")]
pub mod http;
mod open;
pub mod settings;

#[cfg(feature = "cql")]
pub use cql::{CqlImageSource, SourceSetupError as CqlSourceSetupError};
pub use fs::{PathMapSource, TemplateSource};
#[cfg(feature = "http")]
pub use http::{HttpSource, HttpSourceError};
pub use open::OpenSourceError;
pub use settings::{CqlSourceConfig, HttpSourceConfig, IdType, SourceSettings};
