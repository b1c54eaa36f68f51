//! Logging set-up: human-readable by default, JSON lines on request, filtered by
//! `RUST_LOG` or the configured level.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `tracing` filter directive, e.g. `info` or `imgfeat_pipeline=debug,info`.
    pub level: String,
    /// JSON lines (one object per event, fields such as image_id and model_version).
    pub json: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            level: "warn".into(),
            json: false,
        }
    }
}

/// Installs the global subscriber; a second call is a no-op.
pub fn init(settings: &LogSettings) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, never into a log file or collector.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    let _ = if settings.json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
