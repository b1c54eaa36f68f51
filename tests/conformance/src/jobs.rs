//! Checks of [`BackfillStore`] and [`ExportStore`].

use std::collections::HashMap;

use imgfeat_core::ports::{
    BackfillJob, BackfillState, BackfillStore, ExportCursor, ExportStore, ImageResults,
    ResultStore, StoreError,
};
use imgfeat_core::{ImageId, Stage};

use super::fixtures::Gen;
use super::{Violation, ensure, same};

/// Jobs save, load, replace whole, and list oldest first.
pub async fn backfill_jobs_round_trip<S: BackfillStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let tag = format!("conformance-{:016x}", g.u64());
    let now = imgfeat_core::now_ms();
    let older = BackfillJob {
        id: format!("{tag}-older"),
        from: 1 << 63,
        to: u64::MAX - 1,
        model: Some(g.version("backfill")?),
        next: 1 << 63,
        published: 0,
        skipped: 0,
        state: BackfillState::Running,
        created_ms: now,
        updated_ms: now,
    };
    let newer = BackfillJob {
        id: format!("{tag}-newer ✓"),
        from: 0,
        to: 99,
        model: None,
        next: 0,
        published: 0,
        skipped: 0,
        state: BackfillState::Running,
        created_ms: now + 10,
        updated_ms: now + 10,
    };
    // Saved newest first, so listing order cannot be insertion order by accident.
    store.save_backfill(&newer).await?;
    store.save_backfill(&older).await?;
    same(
        &store.backfill(&older.id).await?,
        &Some(older.clone()),
        "loaded job",
    )?;
    same(
        &store.backfill(&newer.id).await?,
        &Some(newer.clone()),
        "loaded job without a model",
    )?;

    let progressed = BackfillJob {
        next: u64::MAX,
        published: 1 << 40,
        skipped: 17,
        state: BackfillState::Done,
        updated_ms: now + 20,
        model: None,
        ..older.clone()
    };
    store.save_backfill(&progressed).await?;
    same(
        &store.backfill(&older.id).await?,
        &Some(progressed.clone()),
        "job after replacing it",
    )?;
    let cancelled = BackfillJob {
        state: BackfillState::Cancelled,
        ..newer
    };
    store.save_backfill(&cancelled).await?;

    let ours: Vec<BackfillJob> = store
        .backfills()
        .await?
        .into_iter()
        .filter(|j| j.id.starts_with(&tag))
        .collect();
    same(
        &ours,
        &vec![progressed, cancelled],
        "listed jobs, oldest first",
    )?;
    ensure!(
        store.backfill(&format!("{tag}-missing")).await?.is_none(),
        "a job never saved was found"
    );
    Ok(())
}

/// Paging through the whole store yields every image written exactly once, with all
/// its results under every version, whatever else the store holds.
pub async fn export_covers_every_image_once<S: ResultStore + ExportStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    const PAGE: usize = 64;
    const MAX_PAGES: usize = 1_000_000;
    let mut g = Gen::new();
    let (v1, v2) = (g.version("export-a")?, g.version("export-b")?);
    let ids = g.ids(150);
    let mut want: HashMap<ImageId, ImageResults> = HashMap::new();
    let (mut dets, mut codes, mut fails) = (Vec::new(), Vec::new(), Vec::new());
    for (i, id) in ids.iter().enumerate() {
        let mut r = ImageResults {
            image_id: *id,
            detections: Vec::new(),
            codes: Vec::new(),
            failures: Vec::new(),
        };
        // Some images have only a detection, a code or a failure; some have it all.
        if i % 4 != 1 {
            r.detections.push(g.detection_record(*id, &v1));
        }
        if i % 4 == 0 {
            r.detections.push(g.whole_image_record(*id, &v2));
        }
        if i % 4 != 2 {
            r.codes.push(g.code_record(*id, &v1, 64)?);
        }
        if i % 4 == 3 {
            r.codes.push(g.code_record(*id, &v2, 64)?);
        }
        if i % 4 == 2 || i % 4 == 0 {
            r.failures.push(g.failure(*id, &v2, Stage::Fetch));
            r.failures.push(g.failure(*id, &v2, Stage::Decode));
        }
        dets.extend(r.detections.iter().cloned());
        codes.extend(r.codes.iter().cloned());
        fails.extend(r.failures.iter().cloned());
        want.insert(*id, normalise(r));
    }
    store.put_detections(&dets).await?;
    store.put_codes(&codes).await?;
    store.put_failures(&fails).await?;

    let mut seen: HashMap<ImageId, usize> = HashMap::new();
    let mut cursor: Option<ExportCursor> = None;
    for pages in 0.. {
        ensure!(
            pages < MAX_PAGES,
            "export did not end after {MAX_PAGES} pages"
        );
        let (page, next) = store.export_page(cursor.as_ref(), PAGE).await?;
        ensure!(
            page.len() <= PAGE,
            "export page of {} images, limit {PAGE}",
            page.len()
        );
        for r in page {
            if let Some(w) = want.get(&r.image_id) {
                *seen.entry(r.image_id).or_default() += 1;
                same(&normalise(r), w, "exported results")?;
            }
        }
        match next {
            Some(c) => {
                ensure!(
                    cursor.as_ref() != Some(&c),
                    "export cursor did not move: {c:?}"
                );
                cursor = Some(c);
            }
            None => break,
        }
    }
    let missing = ids.iter().filter(|id| !seen.contains_key(id)).count();
    let repeated = seen.values().filter(|n| **n > 1).count();
    ensure!(
        missing == 0 && repeated == 0,
        "export of {} images: {missing} missing, {repeated} more than once",
        ids.len()
    );
    Ok(())
}

/// Orders a result's lists, which the export contract leaves to the store.
fn normalise(mut r: ImageResults) -> ImageResults {
    r.detections
        .sort_by(|a, b| a.model_version.cmp(&b.model_version));
    r.codes
        .sort_by(|a, b| a.model_version.cmp(&b.model_version));
    r.failures
        .sort_by(|a, b| (&a.model_version, a.stage).cmp(&(&b.model_version, b.stage)));
    r
}

/// Every image's results, read page by page, sorted by image ID and with each image's
/// lists in one order: what a copy or a round trip must leave unchanged.
pub async fn all_exports<S: ExportStore + ?Sized>(
    store: &S,
) -> Result<Vec<ImageResults>, StoreError> {
    let mut out = Vec::new();
    let mut cursor: Option<ExportCursor> = None;
    loop {
        let (page, next) = store.export_page(cursor.as_ref(), 1_000).await?;
        out.extend(page);
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let mut out: Vec<ImageResults> = out.into_iter().map(normalise).collect();
    out.sort_by_key(|r| r.image_id);
    Ok(out)
}
