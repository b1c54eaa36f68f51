//! The properties the fuzz targets check. Each function takes arbitrary bytes and
//! panics only when a property is broken: a parser that panics, or one that accepts
//! what it promised to refuse. cargo-fuzz drives them with generated inputs
//! (`scripts/fuzz.sh`); `tests/corpus.rs` replays the kept corpus and every crash ever
//! found, so a fixed crash stays fixed.

// A broken expectation here is the finding, reported by the panic it raises.
#![allow(clippy::expect_used)]

mod image;
mod message;
#[cfg(feature = "services")]
mod requests;
#[cfg(feature = "services")]
mod settings;

pub use image::decode_image;
pub use message::decode_message;
#[cfg(feature = "services")]
pub use requests::parse_ingest_request;
#[cfg(feature = "services")]
pub use settings::parse_settings;

/// What a target runs on one input.
pub type Check = fn(&[u8]);

/// The targets by name, as cargo-fuzz and the corpus folders call them.
#[cfg(feature = "services")]
pub const TARGETS: &[(&str, Check)] = &[
    ("decode_image", decode_image),
    ("decode_message", decode_message),
    ("parse_settings", parse_settings),
    ("ingest_request", parse_ingest_request),
];
