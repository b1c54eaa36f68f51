//! The image sources, one module per place images live, each behind the
//! `ImageSource` port of `imgfeat-core`: a folder ([`fs`]), an HTTP(S) URL template
//! ([`http`], feature `http`), a CQL blob table ([`cql`], feature `cql`).
//!
//! Which one a worker uses is chosen from its settings in `imgfeat-app`; nothing here
//! knows about the pipeline.

#[cfg(feature = "cql")]
pub mod cql;
pub mod fs;
#[cfg(feature = "http")]
pub mod http;
pub mod settings;

#[cfg(feature = "cql")]
pub use cql::{CqlImageSource, SourceSetupError as CqlSourceSetupError};
pub use fs::{PathMapSource, TemplateSource};
#[cfg(feature = "http")]
pub use http::{HttpSource, HttpSourceError};
pub use settings::{CqlSourceConfig, HttpSourceConfig, IdType};
