//! `imgfeat-detector`: consumes detect jobs (live before backfill), detects, crops,
//! stores, publishes extract jobs. All logic is in `imgfeat_app::worker`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use imgfeat_app::worker::{WorkerSettings, run_detector};

#[derive(Parser)]
#[command(
    version,
    about = "imgfeat detector: detect jobs -> detections and crops -> extract jobs"
)]
struct Args {
    /// TOML settings file; IMGFEAT_* environment variables override it.
    #[arg(long, env = "IMGFEAT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings =
        WorkerSettings::load_over(WorkerSettings::detector_defaults(), args.config.as_deref())
            .context("invalid settings")?;
    imgfeat_app::logging::init(&settings.log);
    run_detector(settings, imgfeat_pipeline::Events::new()).await?;
    Ok(())
}
