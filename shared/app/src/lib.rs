//! What every imgfeat binary does the same way: read layered settings, set up logging,
//! and open the adapters the settings choose. Binaries stay thin on top of this.
//!
//! Each network adapter is a feature (all on by default): `amqp` (the broker and the
//! worker loop), `cql` (the CQL store and image source), `http-source`. Without one,
//! its settings still parse and print, and choosing it is a clear error at start-up:
//! the embedded `imgfeat` CLI builds without all three.

pub mod layers;
pub mod logging;
pub mod paths;
pub mod settings;
pub mod signals;
pub mod stores;
#[cfg(feature = "amqp")]
pub mod worker;
pub mod worker_settings;
#[cfg(feature = "amqp")]
mod worker_telemetry;

pub use layers::{load_settings, settings_from, settings_from_vars};
pub use settings::{AppSettings, SearchSettings, SettingsError};
