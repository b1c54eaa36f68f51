//! Checks of [`ResultStore`]: round trips, upsert semantics, version isolation, lookups.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use imgfeat_core::ports::{ResultStore, ScanCursor};
use imgfeat_core::{CodeRecord, FailureRecord, ImageId, Stage};

use super::fixtures::Gen;
use super::{Violation, ensure, same};

fn sorted_failures(mut f: Vec<FailureRecord>) -> Vec<FailureRecord> {
    f.sort_by(|a, b| (a.model_version.as_str(), a.stage).cmp(&(b.model_version.as_str(), b.stage)));
    f
}

/// Detections and crops read back field for field: a detected main object, the whole
/// image with an empty list, unicode labels, a large crop, IDs on both sides of 2^63.
pub async fn detection_round_trip<S: ResultStore + ?Sized>(store: &S) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("det")?;
    let ids = [
        g.high_id(),
        g.low_id(),
        g.high_id(),
        g.low_id(),
        g.high_id(),
        g.low_id(),
    ];
    let mut records = vec![
        g.detection_record(ids[0], &v),
        g.detection_record(ids[1], &v),
        g.whole_image_record(ids[2], &v),
        g.whole_image_record(ids[3], &v),
    ];
    // Nothing confident, but the list is kept.
    let mut unsure = g.detection_record(ids[4], &v);
    unsure.main.detection = None;
    records.push(unsure);
    let mut big = g.detection_record(ids[5], &v);
    big.crop_jpeg = g.bytes(256 * 1024);
    records.push(big);

    store.put_detections(&records).await?;
    for r in &records {
        let got = store.detection(r.image_id, &v).await?;
        same(
            &got.as_ref(),
            &Some(r),
            &format!("detection of {}", r.image_id),
        )?;
    }
    let other = g.version("det-other")?;
    ensure!(
        store
            .detection(records[0].image_id, &other)
            .await?
            .is_none(),
        "a detection was found under a version never written"
    );
    ensure!(
        store.detection(g.high_id(), &v).await?.is_none(),
        "a detection was found for an image never written"
    );
    Ok(())
}

/// Codes of several lengths (padding bits included) read back exactly.
pub async fn code_round_trip<S: ResultStore + ?Sized>(store: &S) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("code")?;
    let mut records = Vec::new();
    for (i, bits) in [64, 1, 10, 63, 128, 256, 4096].into_iter().enumerate() {
        let id = g.id(i);
        records.push(g.code_record(id, &v, bits)?);
    }
    store.put_codes(&records).await?;
    for r in &records {
        let got = store.code(r.image_id, &v).await?;
        same(&got.as_ref(), &Some(r), &format!("code of {}", r.image_id))?;
    }
    ensure!(
        store.code(g.low_id(), &v).await?.is_none(),
        "a code was found for an image never written"
    );
    Ok(())
}

/// Failures of every stage read back with kind, message, attempts and time; `failures`
/// returns those of every version of the image and only of that image.
pub async fn failure_round_trip<S: ResultStore + ?Sized>(store: &S) -> Result<(), Violation> {
    let mut g = Gen::new();
    let (v1, v2) = (g.version("fail-a")?, g.version("fail-b")?);
    let id = g.high_id();
    let neighbour = g.low_id();
    let mut want: Vec<FailureRecord> = Stage::ALL.iter().map(|s| g.failure(id, &v1, *s)).collect();
    want[0].at_ms = u64::MAX;
    want[1].attempts = u32::MAX;
    want[2].reason.message = String::new();
    want.push(g.failure(id, &v2, Stage::Decode));
    let theirs = g.failure(neighbour, &v1, Stage::Decode);

    store.put_failures(&want).await?;
    store.put_failures(std::slice::from_ref(&theirs)).await?;
    same(
        &sorted_failures(store.failures(id).await?),
        &sorted_failures(want),
        &format!("failures of {id}"),
    )?;
    same(
        &store.failures(neighbour).await?,
        &vec![theirs],
        "failures of the neighbour",
    )?;
    ensure!(
        store.failures(g.low_id()).await?.is_empty(),
        "failures were found for an image never written"
    );
    Ok(())
}

/// Writing the same records twice leaves one row each, unchanged.
pub async fn upserts_are_idempotent<S: ResultStore + ?Sized>(store: &S) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("idem")?;
    let id = g.high_id();
    let det = g.detection_record(id, &v);
    let fail = g.failure(id, &v, Stage::Detect);
    let code = g.code_record(id, &v, 64)?;
    for _ in 0..2 {
        store.put_detections(std::slice::from_ref(&det)).await?;
        store.put_failures(&[fail.clone(), fail.clone()]).await?;
    }
    same(
        &store.detection(id, &v).await?,
        &Some(det.clone()),
        "detection after two puts",
    )?;
    same(
        &store.failures(id).await?,
        &vec![fail],
        "failures after two puts",
    )?;
    for _ in 0..2 {
        store.put_codes(&[code.clone(), code.clone()]).await?;
    }
    same(
        &store.code(id, &v).await?,
        &Some(code.clone()),
        "code after two puts",
    )?;
    let all = all_code_pages(store, &v, 10).await?;
    same(&all, &vec![code], "codes of the version after two puts")?;
    same(
        &store.detection(id, &v).await?,
        &Some(det),
        "detection after the code",
    )?;
    Ok(())
}

/// A later put of the same key replaces every field of the earlier one.
pub async fn last_write_wins<S: ResultStore + ?Sized>(store: &S) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("lww")?;
    let (a, b) = (g.high_id(), g.low_id());

    // detection -> whole image, and back
    let first = g.detection_record(a, &v);
    let second = g.whole_image_record(a, &v);
    store.put_detections(std::slice::from_ref(&first)).await?;
    store.put_detections(std::slice::from_ref(&second)).await?;
    same(
        &store.detection(a, &v).await?,
        &Some(second),
        "detection after a rewrite",
    )?;
    let first = g.whole_image_record(b, &v);
    let second = g.detection_record(b, &v);
    store.put_detections(std::slice::from_ref(&first)).await?;
    store.put_detections(std::slice::from_ref(&second)).await?;
    same(
        &store.detection(b, &v).await?,
        &Some(second),
        "detection after a rewrite",
    )?;

    let c1 = g.code_record(a, &v, 64)?;
    let c2 = g.code_record(a, &v, 64)?;
    store.put_codes(std::slice::from_ref(&c1)).await?;
    store.put_codes(std::slice::from_ref(&c2)).await?;
    same(&store.code(a, &v).await?, &Some(c2), "code after a rewrite")?;

    let f1 = g.failure(b, &v, Stage::Fetch);
    let mut f2 = g.failure(b, &v, Stage::Fetch);
    f2.attempts = f1.attempts + 1;
    store.put_failures(std::slice::from_ref(&f1)).await?;
    store.put_failures(std::slice::from_ref(&f2)).await?;
    same(
        &store.failures(b).await?,
        &vec![f2],
        "failures after a rewrite",
    )?;
    Ok(())
}

/// The same image under two versions keeps two independent results.
pub async fn model_versions_are_isolated<S: ResultStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let (v1, v2, unused) = (
        g.version("iso-a")?,
        g.version("iso-b")?,
        g.version("iso-c")?,
    );
    let id = g.high_id();
    let (d1, d2) = (g.detection_record(id, &v1), g.whole_image_record(id, &v2));
    let (c1, c2) = (g.code_record(id, &v1, 64)?, g.code_record(id, &v2, 64)?);
    store.put_detections(&[d1.clone(), d2.clone()]).await?;
    store.put_codes(&[c1.clone(), c2.clone()]).await?;
    same(
        &store.detection(id, &v1).await?,
        &Some(d1),
        "detection of v1",
    )?;
    same(
        &store.detection(id, &v2).await?,
        &Some(d2),
        "detection of v2",
    )?;
    same(&store.code(id, &v1).await?, &Some(c1.clone()), "code of v1")?;
    same(&store.code(id, &v2).await?, &Some(c2), "code of v2")?;
    ensure!(
        store.detection(id, &unused).await?.is_none() && store.code(id, &unused).await?.is_none(),
        "a result was found under a version never written"
    );
    ensure!(
        store.coded(&[id], &unused).await?.is_empty(),
        "coded reports an image under a version never written"
    );
    same(
        &all_code_pages(store, &v1, 10).await?,
        &vec![c1],
        "the scan of v1",
    )?;
    Ok(())
}

/// `coded` answers for thousands of IDs with exactly those coded under that version.
pub async fn coded_returns_exactly_the_subset<S: ResultStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let (v, other) = (g.version("coded")?, g.version("coded-other")?);
    let ids = g.ids(3000);
    let mut want = HashSet::new();
    let mut records = Vec::new();
    let mut elsewhere = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        if i % 3 != 0 {
            want.insert(*id);
            records.push(g.code_record(*id, &v, 64)?);
        } else {
            elsewhere.push(g.code_record(*id, &other, 64)?);
        }
    }
    for batch in records.chunks(500) {
        store.put_codes(batch).await?;
    }
    store.put_codes(&elsewhere).await?;
    // Failures and detections are not codes.
    let uncoded = ids[0];
    store
        .put_failures(&[g.failure(uncoded, &v, Stage::Extract)])
        .await?;
    store
        .put_detections(&[g.detection_record(uncoded, &v)])
        .await?;

    let mut query = ids.clone();
    query.extend_from_slice(&ids[..10]);
    let got = store.coded(&query, &v).await?;
    ensure!(
        got == want,
        "coded returned {} IDs, want {}: {} missing, {} extra",
        got.len(),
        want.len(),
        want.difference(&got).count(),
        got.difference(&want).count()
    );
    let got_other = store.coded(&ids, &other).await?;
    ensure!(
        got_other.len() == elsewhere.len() && got_other.is_disjoint(&want),
        "coded under the other version returned {} IDs, want {}",
        got_other.len(),
        elsewhere.len()
    );
    let one = records[0].image_id;
    same(
        &store.coded(&[one], &v).await?,
        &HashSet::from([one]),
        "coded of one ID",
    )?;
    Ok(())
}

/// Every code of a version, page by page, exactly once, and nothing of another version:
/// IDs on both sides of 2^63 and at the ends of the u64 range, codes of 64, 128 and 256
/// bits, pages smaller than the version so that cursors are followed.
pub async fn code_pages_cover_the_version_once<S: ResultStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let (v, other) = (g.version("scan")?, g.version("scan-other")?);
    let mut want = Vec::new();
    for (i, bits) in [64, 128, 256].into_iter().cycle().take(40).enumerate() {
        let id = match i {
            0 => ImageId(0),
            1 => ImageId(u64::MAX),
            2 => ImageId(1 << 63),
            3 => ImageId((1 << 63) - 1),
            _ if i % 2 == 0 => g.high_id(),
            _ => g.low_id(),
        };
        want.push(g.code_record(id, &v, bits)?);
    }
    let theirs: Vec<CodeRecord> = (0..10)
        .map(|_| {
            let id = g.high_id();
            g.code_record(id, &other, 64)
        })
        .collect::<Result<_, _>>()?;
    store.put_codes(&want).await?;
    store.put_codes(&theirs).await?;

    for limit in [1, 7, 40, 1000] {
        let got = all_code_pages(store, &v, limit).await?;
        let by_id: HashMap<ImageId, &CodeRecord> = got.iter().map(|c| (c.image_id, c)).collect();
        ensure!(
            by_id.len() == got.len(),
            "a scan with pages of {limit} returned an image twice"
        );
        ensure!(
            got.len() == want.len(),
            "a scan with pages of {limit} returned {} codes of {}",
            got.len(),
            want.len()
        );
        for w in &want {
            match by_id.get(&w.image_id) {
                Some(c) => same(*c, w, "scanned code")?,
                None => {
                    return Err(Violation(format!(
                        "a scan with pages of {limit} missed image {}",
                        w.image_id
                    )));
                }
            }
        }
    }
    let got_other = all_code_pages(store, &other, 3).await?;
    let other_ids: HashSet<ImageId> = got_other.iter().map(|c| c.image_id).collect();
    ensure!(
        other_ids == theirs.iter().map(|c| c.image_id).collect(),
        "a scan of the other version is not exactly its own codes"
    );
    Ok(())
}

/// Follows a code scan to its end; refuses to loop forever on a cursor that repeats.
pub async fn all_code_pages<S: ResultStore + ?Sized>(
    store: &S,
    version: &imgfeat_core::ModelVersion,
    limit: usize,
) -> Result<Vec<CodeRecord>, Violation> {
    const MAX_PAGES: usize = 100_000;
    let mut out = Vec::new();
    let mut cursor: Option<ScanCursor> = None;
    for _ in 0..MAX_PAGES {
        let page = store.code_page(version, cursor.as_ref(), limit).await?;
        ensure!(
            page.codes.len() <= limit,
            "a page of {} codes was asked for {limit}",
            page.codes.len()
        );
        ensure!(
            !page.codes.is_empty() || page.next.is_none(),
            "an empty page of a code scan says there is more"
        );
        out.extend(page.codes);
        match page.next {
            Some(next) if Some(&next) == cursor.as_ref() => {
                return Err(Violation(
                    "a code scan returned the same cursor twice".into(),
                ));
            }
            Some(next) => cursor = Some(next),
            None => return Ok(out),
        }
    }
    Err(Violation(format!(
        "a code scan did not end after {MAX_PAGES} pages"
    )))
}

/// A stored code clears the failures of its (image, version), every stage, and leaves
/// other versions' and other images' failures alone, in the same put.
pub async fn codes_clear_failures_of_their_version_only<S: ResultStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let (v1, v2) = (g.version("clear-a")?, g.version("clear-b")?);
    let (id, neighbour) = (g.high_id(), g.low_id());
    let keep = g.failure(id, &v2, Stage::Fetch);
    let keep_neighbour = g.failure(neighbour, &v1, Stage::Extract);
    store
        .put_failures(&[
            g.failure(id, &v1, Stage::Detect),
            g.failure(id, &v1, Stage::Extract),
            keep.clone(),
            keep_neighbour.clone(),
        ])
        .await?;
    store.put_codes(&[g.code_record(id, &v1, 64)?]).await?;
    same(
        &store.failures(id).await?,
        &vec![keep],
        "failures after a code of v1",
    )?;
    same(
        &store.failures(neighbour).await?,
        &vec![keep_neighbour],
        "failures of another image",
    )?;
    Ok(())
}

/// Empty batches and queries succeed and change nothing.
pub async fn empty_batches_are_accepted<S: ResultStore + ?Sized>(
    store: &S,
) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("empty")?;
    store.put_detections(&[]).await?;
    store.put_codes(&[]).await?;
    store.put_failures(&[]).await?;
    ensure!(
        store.coded(&[], &v).await?.is_empty(),
        "coded of no IDs is not empty"
    );
    let page = store.code_page(&v, None, 10).await?;
    ensure!(
        page.codes.is_empty() && page.next.is_none(),
        "an unused version has codes to scan"
    );
    Ok(())
}

/// 1 000 codes in one put, all stored.
pub async fn large_code_batch<S: ResultStore + ?Sized>(store: &S) -> Result<(), Violation> {
    let mut g = Gen::new();
    let v = g.version("large")?;
    let records = g
        .ids(1000)
        .into_iter()
        .map(|id| g.code_record(id, &v, 64))
        .collect::<Result<Vec<_>, _>>()?;
    store.put_codes(&records).await?;
    let ids: Vec<ImageId> = records.iter().map(|r| r.image_id).collect();
    let coded = store.coded(&ids, &v).await?;
    ensure!(coded.len() == 1000, "{} of 1000 codes stored", coded.len());
    // Read back a spread of them; a bucketed store's candidates would not cover all.
    for r in records.iter().step_by(37) {
        same(
            &store.code(r.image_id, &v).await?,
            &Some(r.clone()),
            "code of the large batch",
        )?;
    }
    Ok(())
}

/// Eight tasks writing at once, interleaving codes, detections and failures, some to a
/// key they share: nothing is lost, nothing fails, the shared key holds one of the
/// values written.
pub async fn concurrent_writers<S: ResultStore + 'static>(store: Arc<S>) -> Result<(), Violation> {
    const TASKS: usize = 8;
    const BATCHES: usize = 12;
    const PER_BATCH: usize = 6;
    let mut g = Gen::new();
    let v = g.version("concurrent")?;
    let shared = g.high_id();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let store = Arc::clone(&store);
        let v = v.clone();
        let mut g = Gen::new();
        tasks.spawn(async move {
            let mut written = Vec::new();
            let mut shared_codes = Vec::new();
            for _ in 0..BATCHES {
                let mut batch = Vec::new();
                for i in 0..PER_BATCH {
                    let id = g.id(i);
                    batch.push(g.code_record(id, &v, 64)?);
                }
                let mine = g.code_record(shared, &v, 64)?;
                batch.push(mine.clone());
                shared_codes.push(mine);
                store.put_codes(&batch).await?;
                let id = g.id(t);
                store.put_detections(&[g.detection_record(id, &v)]).await?;
                let stage = Stage::ALL[t % Stage::ALL.len()];
                store.put_failures(&[g.failure(id, &v, stage)]).await?;
                batch.pop();
                written.extend(batch);
            }
            Ok::<_, Violation>((written, shared_codes))
        });
    }
    let mut written = Vec::new();
    let mut shared_codes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (w, s) = joined.map_err(|e| Violation(format!("writer task failed: {e}")))??;
        written.extend(w);
        shared_codes.extend(s);
    }
    let ids: Vec<ImageId> = written.iter().map(|r| r.image_id).collect();
    let coded = store.coded(&ids, &v).await?;
    ensure!(
        coded.len() == ids.len(),
        "{} of {} concurrently written codes stored",
        coded.len(),
        ids.len()
    );
    for r in written.iter().step_by(7) {
        same(
            &store.code(r.image_id, &v).await?,
            &Some(r.clone()),
            "concurrently written code",
        )?;
    }
    let last = store.code(shared, &v).await?;
    ensure!(
        last.as_ref().is_some_and(|c| shared_codes.contains(c)),
        "the shared key holds {last:?}, none of the values written"
    );
    Ok(())
}
