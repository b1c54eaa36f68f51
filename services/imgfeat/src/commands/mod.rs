#[cfg(feature = "bench")]
mod bench;
mod config;
mod dedup;
#[cfg(feature = "amqp")]
mod dlq;
#[cfg(feature = "eval")]
mod eval;
#[cfg(feature = "train")]
mod head;
mod index;
mod local_index;
mod plan;
mod probe;
mod saved_index;
mod show;
mod similar;
mod store;

use std::process::ExitCode;

use anyhow::Context;
use imgfeat_app::AppSettings;

#[cfg(feature = "eval")]
use crate::cli::PartArg;
use crate::cli::{Cli, Command, ConfigCommand};
#[cfg(feature = "train")]
use crate::cli::{HeadCommand, MethodArg};

/// Exit code of a command whose image or code is not in the store, apart from failures
/// (1) and usage errors (2, as clap gives them).
pub const EXIT_NOT_FOUND: u8 = 3;

/// What was asked for is not stored: exits with [`EXIT_NOT_FOUND`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct NotFound(pub String);

/// Commands that only read the store: on the embedded store they must not create a
/// folder and an empty store where a mistyped path points.
fn reads_only(command: &Command) -> bool {
    matches!(
        command,
        Command::Show { .. }
            | Command::Dedup { .. }
            | Command::Plan(_)
            | Command::Similar {
                store_it: false,
                ..
            }
    )
}

fn must_exist(store: &imgfeat_app::settings::StoreSettings) -> anyhow::Result<()> {
    if store.kind == imgfeat_app::settings::StoreKind::Embedded && !store.path.is_file() {
        anyhow::bail!(
            "no store at {}: nothing was indexed there (run `imgfeat index DIR` first, or name \
             the store with --store)",
            store.path.display()
        );
    }
    Ok(())
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Printing defaults needs no valid settings of its own.
    if let Command::Config(ConfigCommand::Defaults { service }) = cli.command {
        print!("{}", config::defaults(service)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut settings =
        AppSettings::load(cli.global.config.as_deref()).context("loading settings")?;
    if let Some(store) = &cli.global.store {
        settings.store.path = store.clone();
    }
    imgfeat_app::logging::init(&settings.log);
    let json = cli.global.json;
    if reads_only(&cli.command) {
        must_exist(&settings.store)?;
    }
    match cli.command {
        Command::Index {
            dir,
            force,
            quiet,
            metrics_addr,
        } => index::run(&settings, &dir, force, quiet, json, metrics_addr.as_deref()).await,
        Command::Show { image } => show::run(&settings, &image, json).await,
        Command::Similar {
            image,
            k,
            radius,
            store_it,
        } => {
            let args = similar::SimilarArgs {
                image: &image,
                k,
                radius,
                store_it,
            };
            similar::run(&settings, args, json).await
        }
        Command::Dedup { radius, csv, quiet } => {
            let format = match (json, csv) {
                (true, _) => dedup::DedupFormat::Json,
                (_, true) => dedup::DedupFormat::Csv,
                _ => dedup::DedupFormat::Text,
            };
            dedup::run(&settings, radius, format, quiet).await
        }
        #[cfg(feature = "bench")]
        Command::Bench {
            images,
            seed,
            corpus,
            variants,
            repeats,
            model_seconds,
            e2e_only,
        } => {
            let variants = variants
                .iter()
                .map(|s| s.parse::<imgfeat_bench::Variant>())
                .collect::<Result<Vec<_>, _>>()?;
            let options = imgfeat_bench::BenchOptions {
                images,
                seed,
                corpus_dir: corpus,
                pipeline: settings.pipeline.clone(),
                variants,
                repeats,
                model_budget: std::time::Duration::from_secs_f64(model_seconds.max(0.1)),
                e2e_only,
                ..imgfeat_bench::BenchOptions::default()
            };
            bench::run(options, json).await
        }
        #[cfg(feature = "eval")]
        Command::Eval {
            dirs,
            copies,
            seed,
            limit,
            models,
            plot,
            part,
            held_out,
            quiet,
        } => {
            let part = match part {
                PartArg::All => None,
                PartArg::Training => Some(imgfeat_eval::split::Part::Training),
                PartArg::HeldOut => Some(imgfeat_eval::split::Part::HeldOut),
            };
            let args = eval::EvalArgs {
                dirs: &dirs,
                copies,
                seed,
                limit,
                models: &models,
                plot: plot.as_deref(),
                part: part.map(|p| (p, held_out)),
                quiet,
            };
            eval::run(&settings, args, json).await
        }
        #[cfg(feature = "train")]
        Command::Head(HeadCommand::Train {
            dir,
            bits,
            method,
            seed,
            views,
            out,
            held_out,
            limit,
            cache,
            quiet,
        }) => {
            let method = match method {
                MethodArg::Itq => imgfeat_train::Method::Itq,
                MethodArg::Deepbit => imgfeat_train::Method::Deepbit,
            };
            let args = head::TrainArgs {
                dir: &dir,
                bits: usize::from(bits),
                method,
                seed,
                views,
                out: &out,
                held_out_percent: held_out,
                limit,
                cache: Some(&cache),
                quiet,
            };
            head::train(&settings, args, json).await
        }
        Command::Store(cmd) => store::run(&settings, cmd, json).await,
        #[cfg(feature = "amqp")]
        Command::Dlq(cmd) => dlq::run(&settings, cmd, json).await,
        Command::Config(_) => Ok(ExitCode::SUCCESS),
        Command::Plan(args) => {
            plan::run(&settings, args, json).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// A Hamming radius must stay within half the code: past it two codes agree on fewer
/// bits than two unrelated photos' do on average, so "near" would mean nothing.
pub fn check_radius(radius: u32, bits: u32) -> anyhow::Result<()> {
    if radius > bits / 2 {
        anyhow::bail!(
            "a radius of {radius} is beyond half of the {bits}-bit codes ({}): use 0..={}",
            bits / 2,
            bits / 2
        );
    }
    Ok(())
}

/// Prints a value as pretty JSON.
pub fn print_json<T: serde::Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// An image named on the command line: a decimal ID, or a file indexed before.
pub async fn resolve_image(
    store: &imgfeat_store::SqliteStore,
    arg: &str,
) -> anyhow::Result<imgfeat_core::ImageId> {
    if let Ok(id) = arg.parse::<u64>() {
        return Ok(imgfeat_core::ImageId(id));
    }
    let path = std::fs::canonicalize(arg)
        .map_err(|e| anyhow::anyhow!("{arg} is neither an image ID nor a readable file: {e}"))?;
    store
        .id_of_path(&path.display().to_string())
        .await?
        .ok_or_else(|| NotFound(format!("{} has not been indexed", path.display())).into())
}
