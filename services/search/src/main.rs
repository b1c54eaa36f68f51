//! `imgfeat-search`: flags, logging and signals; the service is `imgfeat_search_service::run`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use imgfeat_search_service::{Listeners, Settings};

#[derive(Parser)]
#[command(
    version,
    about = "imgfeat search: one shard of a code version in memory, similar-image queries"
)]
struct Args {
    /// TOML configuration file (then IMGFEAT_* environment variables override it).
    #[arg(long, env = "IMGFEAT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = Settings::load(args.config.as_deref()).context("invalid configuration")?;
    imgfeat_app::logging::init(&settings.log);
    let listeners = Listeners::bind(&settings.http, &settings.telemetry).await?;
    // On stdout, for scripts and tests that start us on port 0.
    listeners.announce()?;
    let shutdown = imgfeat_app::signals::shutdown_on_signal();
    imgfeat_search_service::run(settings, listeners, shutdown).await
}
