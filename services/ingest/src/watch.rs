//! The folder source's feed: files `<id>.<ext>` appearing in a directory become live
//! jobs (the detector's folder source reads `<dir>/<id>.<ext>`). Polling, not inotify:
//! it works the same on network mounts and container volumes.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use imgfeat_core::message::DetectJob;
use imgfeat_core::ports::JobPublisher;
use imgfeat_core::{ImageId, ModelVersion, now_ms};

use imgfeat_core::shutdown::Shutdown;

pub struct FolderWatch {
    pub dir: PathBuf,
    pub interval: Duration,
    pub publish_existing: bool,
    /// The detector or code version watched jobs pin, if any.
    pub model: Option<ModelVersion>,
}

/// IDs named by the regular files in `dir`; other names are ignored.
pub async fn scan(dir: &Path) -> std::io::Result<HashSet<u64>> {
    let mut ids = HashSet::new();
    let mut entries = tokio::fs::read_dir(dir).await?;
    while let Some(entry) = entries.next_entry().await? {
        if !entry.file_type().await?.is_file() {
            continue;
        }
        if let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(imgfeat_store::numeric_stem)
        {
            ids.insert(id);
        }
    }
    Ok(ids)
}

/// Scans every `interval` until shutdown and publishes IDs not seen before. An ID
/// counts as seen only once its job is confirmed, so a failed publish is retried at
/// the next scan.
pub async fn watch_folder(
    watch: FolderWatch,
    live: Arc<dyn JobPublisher<DetectJob>>,
    shutdown: Shutdown,
) {
    let mut seen: HashSet<u64> = HashSet::new();
    let mut first = true;
    loop {
        match scan(&watch.dir).await {
            Ok(ids) => {
                if first && !watch.publish_existing {
                    seen = ids;
                } else {
                    let mut new: Vec<u64> = ids.difference(&seen).copied().collect();
                    new.sort_unstable();
                    if !new.is_empty() {
                        let now = now_ms();
                        let jobs: Vec<DetectJob> = new
                            .iter()
                            .map(|&id| {
                                let job = DetectJob::new(ImageId(id), now);
                                match &watch.model {
                                    Some(v) => job.pinned_to(v.clone()),
                                    None => job,
                                }
                            })
                            .collect();
                        match live.publish(&jobs).await {
                            Ok(()) => {
                                tracing::debug!(count = new.len(), "published watched files");
                                seen.extend(new);
                            }
                            Err(e) => tracing::warn!(error = %e, "publishing watched files"),
                        }
                    }
                }
                first = false;
            }
            Err(e) => {
                tracing::warn!(dir = %watch.dir.display(), error = %e, "scanning the watched folder")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(watch.interval) => {}
            _ = shutdown.wait() => return,
        }
    }
}
