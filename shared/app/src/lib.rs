//! What every imgfeat binary does the same way: read layered settings, set up logging,
//! and open the adapters the settings choose. Binaries stay thin on top of this.

pub mod layers;
pub mod logging;
pub mod paths;
pub mod settings;
pub mod stores;
pub mod worker;
mod worker_telemetry;

pub use layers::{load_settings, settings_from, settings_from_vars};
pub use settings::{AppSettings, SearchSettings, SettingsError};
