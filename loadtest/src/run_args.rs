//! The options every mode shares, flattened into each mode's own: one definition, one
//! help text, one default.

use std::path::PathBuf;

/// What every mode takes.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Folder with the binaries the mode starts; default: the folder of this executable.
    #[arg(long)]
    pub bin_dir: Option<PathBuf>,
    /// Also write the report as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

impl RunArgs {
    /// Writes `report` as JSON where `--json` says, if it says.
    pub fn write_json(&self, report: &impl serde::Serialize) -> anyhow::Result<()> {
        if let Some(path) = &self.json {
            std::fs::write(path, serde_json::to_vec_pretty(report)?)?;
        }
        Ok(())
    }
}

/// What the modes that start a fleet on the broker take besides.
#[derive(clap::Args, Debug, Clone)]
pub struct FleetRunArgs {
    /// Corpus folder (reused when its manifest matches); default under target/.
    #[arg(long)]
    pub corpus: Option<PathBuf>,
    #[arg(long, default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    pub amqp_url: String,
    /// Keep the work dir (configs, logs, store) and print its path.
    #[arg(long)]
    pub keep: bool,
}
