//! The code a search starts from: a stored image (by ID or by the path it was indexed
//! from), or a file never indexed, run through the same pipeline as `imgfeat index`
//! so that its code is the one indexing would store, bit for bit.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use imgfeat_app::AppSettings;
use imgfeat_core::ports::ResultStore;
use imgfeat_core::{BinaryCode, ImageId, ModelVersion};
use imgfeat_pipeline::Events;
use imgfeat_store::SqliteStore;

/// What the search starts from.
pub struct Probe {
    /// The stored image the code belongs to (left out of its own neighbours), if any.
    pub image_id: Option<ImageId>,
    pub code: BinaryCode,
    /// How the probe was found: `stored`, `computed` or `computed+stored`.
    pub origin: &'static str,
}

/// Resolves `arg`: a decimal ID, a file indexed before (embedded store), or a file to
/// run through the pipeline now (stored only with `store_it`).
pub async fn resolve(
    settings: &AppSettings,
    results: &dyn ResultStore,
    embedded: Option<&Arc<SqliteStore>>,
    version: &ModelVersion,
    arg: &str,
    store_it: bool,
) -> anyhow::Result<Probe> {
    if let Ok(id) = arg.parse::<u64>() {
        let id = ImageId(id);
        let Some(rec) = results.code(id, version).await? else {
            return Err(super::NotFound(format!("image {id} has no code under {version}")).into());
        };
        return Ok(Probe {
            image_id: Some(id),
            code: rec.code,
            origin: "stored",
        });
    }
    let path = std::fs::canonicalize(arg)
        .map_err(|e| anyhow::anyhow!("{arg} is neither an image ID nor a readable file: {e}"))?;
    if let Some(store) = embedded
        && let Some(id) = store.id_of_path(&path.display().to_string()).await?
        && let Some(rec) = results.code(id, version).await?
    {
        return Ok(Probe {
            image_id: Some(id),
            code: rec.code,
            origin: "stored",
        });
    }
    if store_it {
        let Some(store) = embedded else {
            bail!("--store-it needs the embedded store: the fleet indexes into CQL through ingest");
        };
        let id = index_file(settings, store.clone(), &path, version).await?;
        let Some(rec) = results.code(id, version).await? else {
            bail!(
                "{} was indexed but has no code: {}",
                path.display(),
                failure_of(store.as_ref(), id).await
            );
        };
        return Ok(Probe {
            image_id: Some(id),
            code: rec.code,
            origin: "computed+stored",
        });
    }
    // A scratch store in a temporary folder: the real one is left untouched.
    let scratch_dir = tempfile::tempdir().context("creating a scratch folder")?;
    let scratch = Arc::new(SqliteStore::open(
        &scratch_dir.path().join("probe.sqlite3"),
    )?);
    let id = index_file(settings, scratch.clone(), &path, version).await?;
    let Some(rec) = scratch.code(id, version).await? else {
        bail!(
            "{}: {}",
            path.display(),
            failure_of(scratch.as_ref(), id).await
        );
    };
    Ok(Probe {
        image_id: None,
        code: rec.code,
        origin: "computed",
    })
}

async fn index_file(
    settings: &AppSettings,
    store: Arc<SqliteStore>,
    file: &Path,
    version: &ModelVersion,
) -> anyhow::Result<ImageId> {
    let files: Vec<PathBuf> = vec![file.to_path_buf()];
    let label = file.display().to_string();
    let (coded_as, _) = super::local_index::index_files(
        &settings.pipeline,
        store.clone(),
        &label,
        &files,
        Events::new(),
    )
    .await?;
    if coded_as != *version {
        bail!("the pipeline codes under {coded_as}, the search is over {version}");
    }
    store
        .id_of_path(&file.display().to_string())
        .await?
        .with_context(|| format!("{} was not registered", file.display()))
}

/// Why an image has no code, in one line for the error message.
async fn failure_of(store: &dyn ResultStore, id: ImageId) -> String {
    match store.failures(id).await {
        Ok(f) if !f.is_empty() => f
            .iter()
            .map(|f| format!("{} failed: {}", f.stage.as_str(), f.reason.message))
            .collect::<Vec<_>>()
            .join("; "),
        Ok(_) => "no code and no recorded failure".into(),
        Err(e) => format!("reading its failures: {e}"),
    }
}
