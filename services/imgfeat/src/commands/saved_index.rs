//! The search index of the embedded store, saved beside it: `similar` and `dedup` load
//! the saved file (no scan of the store) while the store's code generation for the
//! version is the one the file was built from, and rebuild and save it otherwise. The
//! CQL store has no such counter, so it is scanned every time (the search service is
//! the way to query it often).

use std::path::{Path, PathBuf};

use imgfeat_app::stores::OpenStore;
use imgfeat_core::ModelVersion;
use imgfeat_search::MultiIndex;
use serde::{Deserialize, Serialize};

/// How the index came to be, for the output and for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexOrigin {
    /// Read from the file saved beside the store.
    Saved,
    /// Built by scanning the store.
    Scanned,
}

#[derive(Serialize, Deserialize, PartialEq, Eq)]
struct Meta {
    version: String,
    generation: u64,
}

pub async fn open(
    store: &OpenStore,
    store_path: &Path,
    version: &ModelVersion,
) -> anyhow::Result<(Option<MultiIndex>, IndexOrigin)> {
    let Some(sqlite) = &store.embedded else {
        return Ok((scan(store, version).await?, IndexOrigin::Scanned));
    };
    // Read before the scan: a write during the scan then leaves a newer generation
    // behind, and the next run rebuilds rather than trusting a stale file.
    let generation = sqlite.code_generation(version).await?;
    let (file, meta_file) = paths(store_path, version);
    let want = Meta {
        version: version.to_string(),
        generation,
    };
    if let Some(index) = load_if_current(&file, &meta_file, &want) {
        return Ok((Some(index), IndexOrigin::Saved));
    }
    let index = scan(store, version).await?;
    if let Some(index) = &index
        && let Err(e) = save(index, &file, &meta_file, &want)
    {
        tracing::warn!(path = %file.display(), "could not save the search index (it will be rebuilt next time): {e:#}");
    }
    Ok((index, IndexOrigin::Scanned))
}

async fn scan(store: &OpenStore, version: &ModelVersion) -> anyhow::Result<Option<MultiIndex>> {
    imgfeat_search::store_loader::load_index(store.results.as_ref(), version, |_| true)
        .await
        .map_err(|e| anyhow::anyhow!("loading the codes of {version}: {e}"))
}

/// `<store>.search/<version>.mih` and its `.json`; the version made safe for a file name.
fn paths(store_path: &Path, version: &ModelVersion) -> (PathBuf, PathBuf) {
    let mut dir = store_path.as_os_str().to_owned();
    dir.push(".search");
    let dir = PathBuf::from(dir);
    let name: String = version
        .as_str()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    (
        dir.join(format!("{name}.mih")),
        dir.join(format!("{name}.json")),
    )
}

/// The saved index, if its meta says it was built from exactly `want`. Anything wrong
/// with either file (absent, stale, damaged) means a rebuild, never an error.
fn load_if_current(file: &Path, meta_file: &Path, want: &Meta) -> Option<MultiIndex> {
    let meta: Meta = serde_json::from_slice(&std::fs::read(meta_file).ok()?).ok()?;
    if meta != *want {
        return None;
    }
    match MultiIndex::load(file) {
        Ok(index) => Some(index),
        Err(e) => {
            tracing::warn!("the saved search index is unreadable, rebuilding it: {e}");
            None
        }
    }
}

/// The index first, then its meta, each through a temporary file and a rename: a crash
/// leaves either the old pair or an index whose meta does not name it yet.
fn save(index: &MultiIndex, file: &Path, meta_file: &Path, meta: &Meta) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let _ = std::fs::remove_file(meta_file);
    let tmp = file.with_extension(format!("mih.{}.tmp", std::process::id()));
    index.save(&tmp)?;
    std::fs::rename(&tmp, file)?;
    let tmp = meta_file.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(meta)?)?;
    std::fs::rename(&tmp, meta_file)?;
    Ok(())
}
