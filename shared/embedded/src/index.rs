//! `imgfeat index DIR`: the whole pipeline in one process over a folder, with the
//! in-process queue between the same detector and extractor stages the fleet runs.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use imgfeat_core::message::{DetectJob, ExtractJob};
use imgfeat_core::ports::{JobPublisher, PathRegistry, ResultStore, StoreError};
use imgfeat_core::{ImageId, ModelVersion, now_ms};
use serde::Serialize;
use walkdir::WalkDir;

use crate::local_queue::{in_process_retry, local_queue};
use imgfeat_core::shutdown::Shutdown;
use imgfeat_pipeline::chain::Downstream;
use imgfeat_pipeline::events::{Event, EventSink, Events, Outcome, Worker};
use imgfeat_pipeline::parts::{self, DetectorParts, ExtractorParts, StageAdapters};
use imgfeat_pipeline::settings::PipelineSettings;
use imgfeat_sources::PathMapSource;

/// File endings the folder scan treats as images. Anything else is ignored; a file with
/// an image ending that is not an image is recorded as a failure.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read folder {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("{0}")]
    Version(String),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct IndexOptions {
    /// Process every image again, even those already done under this model version.
    pub force: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct IndexSummary {
    pub folder: String,
    pub detector_version: String,
    pub code_version: String,
    /// Image files found.
    pub discovered: u64,
    /// Other files, not considered.
    pub ignored: u64,
    /// Already coded under this version.
    pub skipped: u64,
    /// Coded in this run.
    pub processed: u64,
    /// Failed in this run, by reason.
    pub failed: BTreeMap<String, u64>,
    pub seconds: f64,
    pub images_per_second: f64,
}

impl IndexSummary {
    pub fn failed_total(&self) -> u64 {
        self.failed.values().sum()
    }
}

/// Counts final outcomes as they happen.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<(u64, BTreeMap<String, u64>)>,
}

impl Tally {
    fn counts(&self) -> (u64, BTreeMap<String, u64>) {
        self.inner.lock().map(|g| g.clone()).unwrap_or_default()
    }
}

impl EventSink for Tally {
    fn emit(&self, event: &Event) {
        let Event::Completed {
            worker, outcome, ..
        } = event
        else {
            return;
        };
        let Ok(mut g) = self.inner.lock() else {
            return;
        };
        match (worker, outcome) {
            (Worker::Extractor, Outcome::Ok) => g.0 += 1,
            (_, Outcome::Failed(k) | Outcome::DeadLettered(k)) => {
                *g.1.entry(k.as_str().to_string()).or_default() += 1
            }
            _ => {}
        }
    }
}

/// Image files below `dir` (recursively, sorted), and how many other files there were.
///
/// A linked file is read wherever it points: a folder of links into a photo library is
/// an ordinary way to choose what to index, and `index` reads only what its user can.
/// Linked folders are never descended (they may lead back into `dir` or pull in a
/// whole tree by accident) and count as ignored, as do dangling links.
pub fn scan_folder(dir: &Path) -> Result<(Vec<PathBuf>, u64), IndexError> {
    let folder_error = |path: &Path, source: std::io::Error| IndexError::Folder {
        path: path.to_path_buf(),
        source,
    };
    // A missing or unreadable folder is an error, not an empty index.
    std::fs::metadata(dir).map_err(|e| folder_error(dir, e))?;
    let mut images = Vec::new();
    let mut ignored = 0;
    for entry in WalkDir::new(dir).min_depth(1).follow_links(false) {
        let entry = entry.map_err(|e| {
            let at = e.path().unwrap_or(dir).to_path_buf();
            folder_error(&at, e.into())
        })?;
        let kind = entry.file_type();
        if kind.is_dir() {
            continue;
        }
        let path = entry.into_path();
        if kind.is_symlink() && !links_to_a_file(&path) {
            ignored += 1;
        } else if is_image_name(&path) {
            images.push(path);
        } else {
            ignored += 1;
        }
    }
    images.sort();
    Ok((images, ignored))
}

fn links_to_a_file(link: &Path) -> bool {
    std::fs::metadata(link).is_ok_and(|m| m.is_file())
}

fn is_image_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

pub struct IndexRun<'a> {
    pub settings: &'a PipelineSettings,
    pub detector: &'a DetectorParts,
    pub extractor: &'a ExtractorParts,
    pub store: Arc<dyn ResultStore>,
    pub registry: &'a dyn PathRegistry,
    pub events: Events,
}

impl IndexRun<'_> {
    /// The version codes of this run are stored under.
    pub fn code_version(&self) -> Result<ModelVersion, IndexError> {
        self.extractor
            .version
            .after(&self.detector.version)
            .map_err(|e| IndexError::Version(e.to_string()))
    }

    /// Indexes `dir`: new and failed images, or everything with `force`. Individual bad
    /// images are failures in the summary, not errors of the run.
    pub async fn run(&self, dir: &Path, options: IndexOptions) -> Result<IndexSummary, IndexError> {
        let (files, ignored) = scan_folder(dir)?;
        self.run_files(&dir.display().to_string(), &files, ignored, options)
            .await
    }

    /// Indexes the given image files (`imgfeat similar FILE --store-it` passes one);
    /// `label` names them in the summary, `ignored` is what the caller left out.
    pub async fn run_files(
        &self,
        label: &str,
        files: &[PathBuf],
        ignored: u64,
        options: IndexOptions,
    ) -> Result<IndexSummary, IndexError> {
        let started = Instant::now();
        let code_version = self.code_version()?;
        let keys: Vec<String> = files
            .iter()
            .map(|p| {
                std::fs::canonicalize(p)
                    .unwrap_or_else(|_| p.clone())
                    .display()
                    .to_string()
            })
            .collect();
        let ids = self.registry.register_paths(&keys).await?;

        let tally = Arc::new(Tally::default());
        let events = self.events.clone().with(tally.clone());
        let mut conflicts = 0u64;
        let mut paths: HashMap<ImageId, PathBuf> = HashMap::new();
        for (file, id) in files.iter().zip(ids) {
            match id {
                Ok(id) => {
                    paths.insert(id, file.clone());
                }
                Err(conflict) => {
                    tracing::warn!("{conflict}");
                    conflicts += 1;
                }
            }
        }
        events.emit(Event::Planned {
            images: paths.len() as u64,
        });
        let mut todo: Vec<ImageId> = paths.keys().copied().collect();
        todo.sort();
        let mut skipped = 0u64;
        if !options.force {
            let done = self.store.coded(&todo, &code_version).await?;
            skipped = done.len() as u64;
            todo.retain(|id| !done.contains(id));
            for _ in 0..skipped {
                events.emit(Event::Completed {
                    worker: Worker::Extractor,
                    outcome: Outcome::Skipped,
                    latency_seconds: None,
                });
            }
        }

        self.process(&todo, paths, &events).await;

        let (processed, mut failed) = tally.counts();
        if conflicts > 0 {
            failed.insert("id_conflict".into(), conflicts);
        }
        let seconds = started.elapsed().as_secs_f64();
        Ok(IndexSummary {
            folder: label.to_string(),
            detector_version: self.detector.version.to_string(),
            code_version: code_version.to_string(),
            discovered: files.len() as u64,
            ignored,
            skipped,
            processed,
            failed,
            seconds,
            images_per_second: if seconds > 0.0 {
                processed as f64 / seconds
            } else {
                0.0
            },
        })
    }

    async fn process(&self, todo: &[ImageId], paths: HashMap<ImageId, PathBuf>, events: &Events) {
        if todo.is_empty() {
            return;
        }
        let settings = self.settings;
        let retry = in_process_retry();
        let capacity = settings
            .detector
            .max_in_flight
            .max(settings.detector.batch.max_batch);
        let (detect_pub, detect_rx, _detect_dead) =
            local_queue::<DetectJob>(capacity, retry.clone());
        let (extract_pub, extract_rx, _extract_dead) = local_queue::<ExtractJob>(capacity, retry);

        let pool = match parts::cpu_pool(settings) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("{e}");
                return;
            }
        };
        let source = Arc::new(PathMapSource::new(paths, settings.decode.max_bytes));
        let detector = parts::detector_stage(
            settings,
            self.detector,
            pool.clone(),
            StageAdapters {
                source,
                store: self.store.clone(),
                downstream: Downstream::Queue(Arc::new(extract_pub)),
            },
            events.clone(),
        );
        let extractor = parts::extractor_stage(
            settings,
            self.extractor,
            pool,
            self.store.clone(),
            events.clone(),
        );

        let detect_task = tokio::spawn(Arc::new(detector).run(detect_rx, Shutdown::never()));
        let extract_task = tokio::spawn(Arc::new(extractor).run(extract_rx, Shutdown::never()));

        let now = now_ms();
        for chunk in todo.chunks(64) {
            let jobs: Vec<DetectJob> = chunk
                .iter()
                .map(|&image_id| DetectJob::new(image_id, now))
                .collect();
            if detect_pub.publish(&jobs).await.is_err() {
                tracing::error!("the detector stopped early");
                break;
            }
        }
        drop(detect_pub);
        if let Err(e) = detect_task.await {
            tracing::error!("detector task failed: {e}");
        }
        if let Err(e) = extract_task.await {
            tracing::error!("extractor task failed: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_images_recursively_and_ignores_other_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for f in ["a.JPG", "b.png", "notes.txt", "sub/c.webp", "sub/d"] {
            std::fs::write(dir.path().join(f), b"x").unwrap();
        }
        let (images, ignored) = scan_folder(dir.path()).unwrap();
        let names: Vec<_> = images
            .iter()
            .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["a.JPG", "b.png", "sub/c.webp"]);
        assert_eq!(ignored, 2);
        assert!(scan_folder(&dir.path().join("missing")).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn the_scan_follows_linked_files_but_no_linked_folder_nor_loop() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.jpg"), b"x").unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("sub")).unwrap();
        std::fs::write(d.join("a.jpg"), b"x").unwrap();
        std::fs::write(d.join("sub/b.png"), b"x").unwrap();
        symlink(outside.path().join("secret.jpg"), d.join("out.jpg")).unwrap();
        symlink(outside.path(), d.join("out-dir")).unwrap();
        symlink(d, d.join("sub/loop")).unwrap();
        symlink(d.join("sub"), d.join("sub/loop2")).unwrap();
        symlink(d.join("a.jpg"), d.join("sub/same.jpg")).unwrap();
        symlink(d.join("gone.jpg"), d.join("dangling.jpg")).unwrap();

        let (images, ignored) = scan_folder(d).unwrap();
        let names: Vec<_> = images
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().display().to_string())
            .collect();
        assert_eq!(names, vec!["a.jpg", "out.jpg", "sub/b.png", "sub/same.jpg"]);
        // out-dir, loop, loop2, dangling.jpg
        assert_eq!(ignored, 4);
    }
}
