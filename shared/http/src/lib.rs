//! What stands in front of every imgfeat HTTP API, in one place so that every service
//! that listens is authenticated, limited and timed out the same way: the `[http]`
//! settings, the two listeners ([`Listeners`]), the bearer token ([`auth`]), the limits
//! and the timeout ([`guard`]), and the JSON error shape ([`ApiError`], with the
//! `reason` codes of [`reasons`]).

pub mod auth;
mod error;
pub mod guard;
mod listeners;
mod metrics;
pub mod reasons;
mod settings;

pub use auth::BearerAuth;
pub use error::ApiError;
pub use guard::assemble;
pub use listeners::Listeners;
pub use metrics::HttpMetrics;
pub use reasons::with_reasons;
pub use settings::{AuthMode, HttpSettings, MIN_TOKEN_LEN, TelemetrySettings, Token};
