use std::process::ExitCode;

use anyhow::Context;
use imgfeat_app::AppSettings;
use imgfeat_app::settings::{StoreKind, StoreSettings};
use imgfeat_app::stores::OpenStore;
use serde::Serialize;

use crate::cli::StoreCommand;

#[derive(Serialize)]
struct Migrated {
    store: String,
    schema_version: i64,
    applied: Vec<i64>,
}

pub async fn run(
    settings: &AppSettings,
    cmd: StoreCommand,
    json: bool,
) -> anyhow::Result<ExitCode> {
    match cmd {
        StoreCommand::Migrate => migrate(&settings.store, json).await,
        StoreCommand::Copy {
            from,
            to,
            checkpoint,
            page,
        } => {
            let from_store = open_named(&settings.store, &from)
                .await
                .context("opening --from")?;
            let to_store = open_named(&settings.store, &to)
                .await
                .context("opening --to")?;
            let progress = imgfeat_store::copy::copy(
                from_store.export.as_ref(),
                to_store.results.as_ref(),
                &checkpoint,
                page,
                |p| {
                    if !json {
                        eprintln!(
                            "  {} images ({} detections, {} codes, {} failures) copied",
                            p.images, p.detections, p.codes, p.failures
                        );
                    }
                },
            )
            .await?;
            if json {
                super::print_json(&serde_json::json!({
                    "images": progress.images,
                    "detections": progress.detections,
                    "codes": progress.codes,
                    "failures": progress.failures,
                    "done": progress.done,
                }))?;
            } else {
                println!(
                    "copied {} images from {from} to {to} (checkpoint {})",
                    progress.images,
                    checkpoint.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn migrate(store: &StoreSettings, json: bool) -> anyhow::Result<ExitCode> {
    let out = match store.kind {
        StoreKind::Embedded => {
            // Opening migrates; the version is the one this build writes.
            store.open_embedded()?;
            Migrated {
                store: store.path.display().to_string(),
                schema_version: i64::from(imgfeat_store::SCHEMA_VERSION),
                applied: Vec::new(),
            }
        }
        #[cfg(not(feature = "cql"))]
        StoreKind::Cql => {
            anyhow::bail!("store.kind = \"cql\": this imgfeat was built without its `cql` feature")
        }
        #[cfg(feature = "cql")]
        StoreKind::Cql => {
            let report = imgfeat_cql::CqlStore::migrate(&store.cql).await?;
            Migrated {
                store: format!(
                    "cql {} keyspace {}",
                    store.cql.nodes.join(","),
                    store.cql.keyspace
                ),
                schema_version: i64::from(report.current),
                applied: report.applied.into_iter().map(i64::from).collect(),
            }
        }
    };
    if json {
        super::print_json(&out)?;
    } else {
        println!(
            "{}: schema version {} (applied now: {:?})",
            out.store, out.schema_version, out.applied
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `cql:host:port,...` or a SQLite file path.
async fn open_named(base: &StoreSettings, name: &str) -> anyhow::Result<OpenStore> {
    let mut settings = base.clone();
    match name.strip_prefix("cql:") {
        Some(nodes) => {
            settings.kind = StoreKind::Cql;
            settings.cql.nodes = nodes.split(',').map(str::to_string).collect();
        }
        None => {
            settings.kind = StoreKind::Embedded;
            settings.path = name.into();
        }
    }
    Ok(settings.open().await?)
}
