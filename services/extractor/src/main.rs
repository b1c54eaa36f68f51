//! `imgfeat-extractor`: consumes extract jobs, embeds each job's crop, hashes it
//! to a binary code and stores it. All logic is in `imgfeat_app::worker`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use imgfeat_app::worker::{WorkerSettings, run_extractor};

#[derive(Parser)]
#[command(version, about = "imgfeat extractor: extract jobs -> codes")]
struct Args {
    /// TOML settings file; IMGFEAT_* environment variables override it.
    #[arg(long, env = "IMGFEAT_CONFIG")]
    config: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings =
        WorkerSettings::load_over(WorkerSettings::extractor_defaults(), args.config.as_deref())
            .context("invalid settings")?;
    imgfeat_app::logging::init(&settings.log);
    run_extractor(settings, imgfeat_pipeline::Events::new()).await?;
    Ok(())
}
