//! `imgfeat-ingest`: flags, logging and signals; the service is `imgfeat_ingest::run`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use imgfeat_ingest::{Listeners, Settings};

#[derive(Parser)]
#[command(
    version,
    about = "imgfeat ingest: HTTP API, upload events and a watched folder -> detect jobs"
)]
struct Args {
    /// TOML configuration file (then IMGFEAT_* environment variables override it).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Publish new files `<id>.<ext>` appearing in this folder as live jobs.
    #[arg(long)]
    watch: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut settings = Settings::load(args.config.as_deref()).context("invalid configuration")?;
    imgfeat_app::logging::init(&settings.log);
    if let Some(dir) = args.watch {
        settings.watch.dir = Some(dir);
    }
    let listeners = Listeners::bind(&settings.http, &settings.telemetry).await?;
    // On stdout, for scripts and tests that start us on port 0.
    listeners.announce()?;

    let shutdown = imgfeat_app::signals::shutdown_on_signal();
    imgfeat_ingest::run(settings, listeners, shutdown).await?;
    Ok(())
}
