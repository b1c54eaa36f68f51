//! `cargo bench -p imgfeat-bench` (release profile): the same one-run report as
//! `imgfeat bench`. Options after `--`, e.g. `cargo bench -p imgfeat-bench -- --images 1000`.
//!
#![allow(clippy::unwrap_used, clippy::expect_used)]

use clap::Parser;
use imgfeat_bench::BenchArgs;

#[derive(Parser)]
#[command(about = "imgfeat pipeline benchmark (one run)")]
struct Cli {
    #[command(flatten)]
    args: BenchArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "warn,imgfeat_bench=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let report = imgfeat_bench::run(cli.args.options()?).await?;
    imgfeat_bench::print_report(&report);
    if let Some(path) = &cli.args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("report written to {}", path.display());
    }
    Ok(())
}
