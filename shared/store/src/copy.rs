//! Moving results between stores (`imgfeat store copy`), whatever the two stores are:
//! the source is read page by page through [`ExportStore`], the destination written
//! through [`ResultStore`], and the cursor saved after every page so that a copy
//! interrupted after hours resumes where it stopped instead of starting over.
//!
//! Writes are idempotent upserts, so the page that was in flight when a copy died is
//! simply written again on resume.

use std::path::{Path, PathBuf};

use imgfeat_core::ports::{ExportCursor, ExportStore, ResultStore, StoreError};

/// How far a copy got. Saved as the checkpoint after every page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CopyProgress {
    /// Pages written, over every run of this copy.
    pub pages: u64,
    pub images: u64,
    pub detections: u64,
    pub codes: u64,
    pub failures: u64,
    /// Where the next page starts; `None` before the first page and once done.
    pub cursor: Option<ExportCursor>,
    /// The source is exhausted: nothing left to copy.
    pub done: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("reading the source store: {0}")]
    Source(StoreError),
    #[error("writing the destination store: {0}")]
    Destination(StoreError),
    #[error("checkpoint {path}: {detail}")]
    Checkpoint { path: PathBuf, detail: String },
}

impl CopyProgress {
    // The store crate has no serde derive; the checkpoint is small enough to spell out.
    fn to_json(&self) -> String {
        serde_json::json!({
            "pages": self.pages,
            "images": self.images,
            "detections": self.detections,
            "codes": self.codes,
            "failures": self.failures,
            "cursor": self.cursor.as_ref().map(|c| c.0.clone()),
            "done": self.done,
        })
        .to_string()
    }

    fn from_json(text: &str) -> Result<Self, String> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let count = |k: &str| {
            v.get(k)
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| format!("missing count {k:?}"))
        };
        let cursor = match v.get("cursor") {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) => Some(ExportCursor(s.clone())),
            Some(other) => return Err(format!("cursor is not a string: {other}")),
        };
        Ok(CopyProgress {
            pages: count("pages")?,
            images: count("images")?,
            detections: count("detections")?,
            codes: count("codes")?,
            failures: count("failures")?,
            cursor,
            done: v
                .get("done")
                .and_then(serde_json::Value::as_bool)
                .ok_or("missing \"done\"")?,
        })
    }
}

/// Reads the checkpoint of an earlier run, if any.
pub async fn load_checkpoint(path: &Path) -> Result<Option<CopyProgress>, CopyError> {
    match tokio::fs::read_to_string(path).await {
        Ok(text) => CopyProgress::from_json(&text)
            .map(Some)
            .map_err(|detail| checkpoint_error(path, detail)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(checkpoint_error(path, e)),
    }
}

/// Writes the checkpoint so that a crash leaves either the old or the new one, never a
/// torn file: a temporary file beside it, flushed to disk, then renamed over it.
async fn save_checkpoint(path: &Path, progress: &CopyProgress) -> Result<(), CopyError> {
    let path = path.to_path_buf();
    let json = progress.to_json();
    tokio::task::spawn_blocking(move || write_atomically(&path, json.as_bytes()))
        .await
        .map_err(|e| CopyError::Checkpoint {
            path: PathBuf::new(),
            detail: e.to_string(),
        })?
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CopyError> {
    use std::io::Write;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp).map_err(|e| checkpoint_error(&tmp, e))?;
    f.write_all(bytes).map_err(|e| checkpoint_error(&tmp, e))?;
    f.sync_all().map_err(|e| checkpoint_error(&tmp, e))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(|e| checkpoint_error(path, e))
}

fn checkpoint_error(path: &Path, detail: impl ToString) -> CopyError {
    CopyError::Checkpoint {
        path: path.to_path_buf(),
        detail: detail.to_string(),
    }
}

/// Copies every result of `from` into `to`, `page` images at a time, resuming from
/// `checkpoint` if an earlier run left one (a finished copy returns at once; delete the
/// checkpoint to copy again). `progress` is called after every page.
///
/// Within a page, codes are written after detections and failures after codes, because
/// storing a code clears its version's failures: failures still in the source must
/// survive the copy.
pub async fn copy(
    from: &dyn ExportStore,
    to: &dyn ResultStore,
    checkpoint: &Path,
    page: usize,
    mut progress: impl FnMut(&CopyProgress),
) -> Result<CopyProgress, CopyError> {
    let page = page.max(1);
    let mut state = load_checkpoint(checkpoint).await?.unwrap_or_default();
    if state.done {
        tracing::info!(checkpoint = %checkpoint.display(), "copy already finished");
        return Ok(state);
    }
    if state.pages > 0 {
        tracing::info!(checkpoint = %checkpoint.display(), pages = state.pages, images = state.images, "resuming copy");
    }
    loop {
        let (images, next) = from
            .export_page(state.cursor.as_ref(), page)
            .await
            .map_err(CopyError::Source)?;
        let mut detections = Vec::new();
        let mut codes = Vec::new();
        let mut failures = Vec::new();
        for r in &images {
            detections.extend(r.detections.iter().cloned());
            codes.extend(r.codes.iter().cloned());
            failures.extend(r.failures.iter().cloned());
        }
        to.put_detections(&detections)
            .await
            .map_err(CopyError::Destination)?;
        to.put_codes(&codes).await.map_err(CopyError::Destination)?;
        to.put_failures(&failures)
            .await
            .map_err(CopyError::Destination)?;

        state.pages += 1;
        state.images += images.len() as u64;
        state.detections += detections.len() as u64;
        state.codes += codes.len() as u64;
        state.failures += failures.len() as u64;
        state.done = next.is_none();
        state.cursor = next;
        save_checkpoint(checkpoint, &state).await?;
        progress(&state);
        if state.done {
            return Ok(state);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use imgfeat_core::ports::ImageResults;
    use imgfeat_core::{
        BinaryCode, CodeRecord, CropRect, DetectionRecord, FailureKind, FailureReason,
        FailureRecord, ImageId, MainObject, ModelVersion, Stage,
    };

    use super::*;
    use crate::SqliteStore;

    fn v(s: &str) -> ModelVersion {
        ModelVersion::new(s).unwrap()
    }

    /// 40 images: each with a detection, most with a code, some with a failure only,
    /// some with a failure under a version that also has a code elsewhere.
    async fn fill(store: &SqliteStore) {
        let (det, ext) = (v("ssd@1"), v("ext@1"));
        let mut dets = Vec::new();
        let mut codes = Vec::new();
        let mut fails = Vec::new();
        for i in 0..40u64 {
            let id = ImageId(if i % 2 == 0 { i } else { u64::MAX - i });
            dets.push(DetectionRecord {
                image_id: id,
                model_version: det.clone(),
                image_width: 100,
                image_height: 80,
                detections: vec![],
                main: MainObject {
                    crop: CropRect::whole(100, 80),
                    detection: None,
                },
                crop_jpeg: vec![i as u8; 16],
            });
            if i % 5 != 0 {
                let bytes = (i * 0x0101_0101_0101).to_be_bytes().to_vec();
                codes.push(CodeRecord {
                    image_id: id,
                    model_version: ext.clone(),
                    code: BinaryCode::from_bytes(64, bytes).unwrap(),
                });
            }
            if i % 5 == 0 || i % 7 == 0 {
                fails.push(FailureRecord {
                    image_id: id,
                    model_version: if i % 5 == 0 { ext.clone() } else { det.clone() },
                    stage: Stage::Extract,
                    reason: FailureReason::new(FailureKind::Internal, format!("boom {i}")),
                    attempts: 2,
                    at_ms: 1_000 + i,
                });
            }
        }
        store.put_detections(&dets).await.unwrap();
        store.put_codes(&codes).await.unwrap();
        store.put_failures(&fails).await.unwrap();
    }

    async fn everything(store: &SqliteStore) -> Vec<ImageResults> {
        imgfeat_store_conformance::all_exports(store).await.unwrap()
    }

    #[tokio::test]
    async fn copies_everything_and_a_finished_copy_is_not_redone() {
        let dir = tempfile::tempdir().unwrap();
        let src = SqliteStore::open(&dir.path().join("src.sqlite")).unwrap();
        let dst = SqliteStore::open(&dir.path().join("dst.sqlite")).unwrap();
        fill(&src).await;
        let ckpt = dir.path().join("copy.checkpoint");
        let mut calls = 0;
        let done = copy(&src, &dst, &ckpt, 7, |_| calls += 1).await.unwrap();
        assert!(done.done);
        assert_eq!(done.images, 40);
        assert_eq!(done.pages, calls);
        assert!(calls >= 6, "{calls} pages of 7 for 40 images");
        assert_eq!(everything(&dst).await, everything(&src).await);
        assert_eq!(load_checkpoint(&ckpt).await.unwrap(), Some(done.clone()));

        let again = copy(&src, &dst, &ckpt, 7, |_| panic!("no pages expected"))
            .await
            .unwrap();
        assert_eq!(again, done);
    }

    /// A destination that dies after a number of writes, like a copy killed mid-way.
    struct Flaky<'a> {
        inner: &'a SqliteStore,
        writes_left: AtomicUsize,
    }

    impl Flaky<'_> {
        fn spend(&self) -> Result<(), StoreError> {
            let left = self.writes_left.load(Ordering::SeqCst);
            if left == 0 {
                return Err(StoreError::Unavailable("killed".into()));
            }
            self.writes_left.store(left - 1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[async_trait]
    impl ResultStore for Flaky<'_> {
        async fn put_detections(&self, r: &[DetectionRecord]) -> Result<(), StoreError> {
            self.spend()?;
            self.inner.put_detections(r).await
        }
        async fn put_codes(&self, r: &[CodeRecord]) -> Result<(), StoreError> {
            self.spend()?;
            self.inner.put_codes(r).await
        }
        async fn put_failures(&self, r: &[FailureRecord]) -> Result<(), StoreError> {
            self.spend()?;
            self.inner.put_failures(r).await
        }
        async fn detection(
            &self,
            id: ImageId,
            v: &ModelVersion,
        ) -> Result<Option<DetectionRecord>, StoreError> {
            self.inner.detection(id, v).await
        }
        async fn code(
            &self,
            id: ImageId,
            v: &ModelVersion,
        ) -> Result<Option<CodeRecord>, StoreError> {
            self.inner.code(id, v).await
        }
        async fn failures(&self, id: ImageId) -> Result<Vec<FailureRecord>, StoreError> {
            self.inner.failures(id).await
        }
        async fn coded(
            &self,
            ids: &[ImageId],
            v: &ModelVersion,
        ) -> Result<HashSet<ImageId>, StoreError> {
            self.inner.coded(ids, v).await
        }
        async fn code_page(
            &self,
            v: &ModelVersion,
            after: Option<&imgfeat_core::ports::ScanCursor>,
            limit: usize,
        ) -> Result<imgfeat_core::ports::CodePage, StoreError> {
            self.inner.code_page(v, after, limit).await
        }
    }

    #[tokio::test]
    async fn an_interrupted_copy_resumes_from_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let src = SqliteStore::open(&dir.path().join("src.sqlite")).unwrap();
        let dst = SqliteStore::open(&dir.path().join("dst.sqlite")).unwrap();
        fill(&src).await;
        let ckpt = dir.path().join("copy.checkpoint");

        // Three writes a page: dies half-way through the third page.
        let flaky = Flaky {
            inner: &dst,
            writes_left: AtomicUsize::new(7),
        };
        let err = copy(&src, &flaky, &ckpt, 5, |_| {}).await.unwrap_err();
        assert!(matches!(err, CopyError::Destination(_)), "{err}");
        let saved = load_checkpoint(&ckpt).await.unwrap().unwrap();
        assert_eq!((saved.pages, saved.images, saved.done), (2, 10, false));
        assert!(saved.cursor.is_some());

        let mut first_page_seen = None;
        let done = copy(&src, &dst, &ckpt, 5, |p| {
            first_page_seen.get_or_insert(p.pages);
        })
        .await
        .unwrap();
        assert_eq!(first_page_seen, Some(3), "resumed after the saved pages");
        assert!(done.done);
        assert_eq!(done.images, 40, "each image counted once over both runs");
        assert_eq!(everything(&dst).await, everything(&src).await);
    }

    #[tokio::test]
    async fn a_torn_checkpoint_is_an_error_not_a_fresh_start() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = dir.path().join("copy.checkpoint");
        tokio::fs::write(&ckpt, "{\"pages\": 1").await.unwrap();
        let src = SqliteStore::open(&dir.path().join("src.sqlite")).unwrap();
        let dst = SqliteStore::open(&dir.path().join("dst.sqlite")).unwrap();
        let err = copy(&src, &dst, &ckpt, 5, |_| {}).await.unwrap_err();
        assert!(matches!(err, CopyError::Checkpoint { .. }), "{err}");
    }

    #[test]
    fn checkpoints_round_trip() {
        let p = CopyProgress {
            pages: 3,
            images: 20,
            detections: 20,
            codes: 15,
            failures: 2,
            cursor: Some(ExportCursor("-9001".into())),
            done: false,
        };
        assert_eq!(CopyProgress::from_json(&p.to_json()).unwrap(), p);
        let fresh = CopyProgress::default();
        assert_eq!(CopyProgress::from_json(&fresh.to_json()).unwrap(), fresh);
    }
}
