#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The store conformance suite against a real SqliteStore on disk, plus what only the
//! SQLite store promises: durability across reopen, schema versioning, refusing foreign
//! files, error classes, u64 export order and the path registry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use imgfeat_core::ports::{
    BackfillStore, CodePage, ExportCursor, ExportStore, ResultStore, ScanCursor, StoreError,
};
use imgfeat_core::{
    BinaryCode, CodeRecord, CropRect, ErrorClass, FailureKind, FailureReason, FailureRecord,
    ImageId, MainObject, ModelVersion, Stage,
};
use imgfeat_store::{
    FIRST_ASSIGNED_ID, PathIdConflict, SCHEMA_VERSION, SqliteOptions, SqliteStore,
};
use imgfeat_store_conformance as conformance;

fn temp_store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("results.sqlite")).unwrap();
    (dir, store)
}

fn db_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("results.sqlite")
}

fn version(s: &str) -> ModelVersion {
    ModelVersion::new(s).unwrap()
}

fn code(id: u64, v: &ModelVersion, byte: u8) -> CodeRecord {
    CodeRecord {
        image_id: ImageId(id),
        model_version: v.clone(),
        code: BinaryCode::from_bytes(64, vec![byte; 8]).unwrap(),
    }
}

// ---- the conformance suite, one test per check so a failure names its rule ----------

macro_rules! conformance_tests {
    ($($check:ident),+ $(,)?) => {$(
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $check() {
            let (_dir, store) = temp_store();
            conformance::$check(&store).await.unwrap();
        }
    )+};
}

conformance_tests!(
    detection_round_trip,
    code_round_trip,
    failure_round_trip,
    upserts_are_idempotent,
    last_write_wins,
    model_versions_are_isolated,
    coded_returns_exactly_the_subset,
    code_pages_cover_the_version_once,
    codes_clear_failures_of_their_version_only,
    empty_batches_are_accepted,
    large_code_batch,
    backfill_jobs_round_trip,
    export_covers_every_image_once,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers() {
    let (_dir, store) = temp_store();
    conformance::concurrent_writers(Arc::new(store))
        .await
        .unwrap();
}

/// The whole suite on one store, twice: the second run meets the first run's data, as a
/// shared CQL keyspace would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_all_passes_twice_on_the_same_store() {
    let (_dir, store) = temp_store();
    let store = Arc::new(store);
    for _ in 0..2 {
        if let Err(report) = conformance::check_all(Arc::clone(&store)).await {
            panic!("{report}");
        }
    }
}

// ---- durability and schema -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_survive_closing_and_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    // Parent directories are created.
    let path = dir.path().join("a/b/c/results.sqlite");
    let v = version("ext@1");
    let failure = FailureRecord {
        image_id: ImageId(7),
        model_version: v.clone(),
        stage: Stage::Decode,
        reason: FailureReason::new(FailureKind::Corrupt, "truncated"),
        attempts: 3,
        at_ms: 1,
    };
    {
        let store = SqliteStore::open(&path).unwrap();
        store.put_codes(&[code(u64::MAX, &v, 0xab)]).await.unwrap();
        store
            .put_failures(std::slice::from_ref(&failure))
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(
        store.code(ImageId(u64::MAX), &v).await.unwrap(),
        Some(code(u64::MAX, &v, 0xab))
    );
    assert_eq!(store.failures(ImageId(7)).await.unwrap(), vec![failure]);
}

fn pragma(path: &Path, name: &str) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, name, |r| r.get(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_again_migrates_nothing_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let v = version("ext@1");
    let first = SqliteStore::open(&path).unwrap();
    first.put_codes(&[code(1, &v, 1)]).await.unwrap();
    // A second handle while the first is open, then a third after both are gone.
    let second = SqliteStore::open(&path).unwrap();
    assert_eq!(
        second.code(ImageId(1), &v).await.unwrap(),
        Some(code(1, &v, 1))
    );
    drop((first, second));
    let third = SqliteStore::open(&path).unwrap();
    assert_eq!(
        third.code(ImageId(1), &v).await.unwrap(),
        Some(code(1, &v, 1))
    );
    assert_eq!(pragma(&path, "user_version"), i64::from(SCHEMA_VERSION));
    assert_eq!(pragma(&path, "application_id"), 0x696d_6766);
}

#[test]
fn the_file_is_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let _store = SqliteStore::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn a_newer_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    drop(SqliteStore::open(&path).unwrap());
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("newer") && msg.contains(&format!("{}", SCHEMA_VERSION + 1)),
        "{msg}"
    );
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, b"JFIF this is a photo, not a database".repeat(200)).unwrap();
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("not an SQLite database"), "{err}");
    // And the file is left as it was.
    assert!(std::fs::read(&path).unwrap().starts_with(b"JFIF"));
}

#[test]
fn another_applications_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
        .unwrap();
    drop(conn);
    let err = SqliteStore::open(&path).unwrap_err();
    assert!(err.to_string().contains("another application"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_file_becomes_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    std::fs::write(&path, b"").unwrap();
    let store = SqliteStore::open(&path).unwrap();
    let v = version("ext@1");
    store.put_codes(&[code(3, &v, 3)]).await.unwrap();
    assert!(store.code(ImageId(3), &v).await.unwrap().is_some());
}

// ---- error classes -----------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_row_is_invalid_not_a_panic() {
    let (dir, store) = temp_store();
    let conn = rusqlite::Connection::open(db_path(&dir)).unwrap();
    conn.execute(
        "INSERT INTO failures VALUES (5, 'ext@1', 'teleport', 'corrupt', 'x', 1, 1)",
        [],
    )
    .unwrap();
    conn.execute("INSERT INTO codes VALUES ('ext@1', 5, 64, x'0102')", [])
        .unwrap();
    let err = store.failures(ImageId(5)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)) && err.to_string().contains("teleport"));
    let err = store.code(ImageId(5), &version("ext@1")).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_file_is_transient_and_writes_resume_after() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let options = SqliteOptions {
        busy_timeout: Duration::from_millis(100),
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open_with(&path, &options).unwrap();
    let v = version("ext@1");
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = store.put_codes(&[code(9, &v, 9)]).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert_eq!(err.class(), ErrorClass::Transient);
    // Readers are not blocked by another process's write lock (WAL).
    assert!(store.code(ImageId(9), &v).await.unwrap().is_none());
    other.execute_batch("COMMIT").unwrap();
    store.put_codes(&[code(9, &v, 9)]).await.unwrap();
    assert!(store.code(ImageId(9), &v).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_finite_detections_are_refused_before_writing() {
    let (_dir, store) = temp_store();
    let v = version("ssd@1");
    let mut record = imgfeat_core::DetectionRecord {
        image_id: ImageId(1),
        model_version: v.clone(),
        image_width: 10,
        image_height: 10,
        detections: vec![],
        main: MainObject {
            crop: CropRect::whole(10, 10),
            detection: Some(imgfeat_core::Detection {
                bbox: imgfeat_core::BoundingBox::whole(10, 10),
                score: f32::NAN,
                class_id: 0,
                label: "x".into(),
            }),
        },
        crop_jpeg: vec![1],
    };
    let err = store.put_detections(&[record.clone()]).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(store.detection(ImageId(1), &v).await.unwrap().is_none());
    record.main.detection = None;
    store.put_detections(&[record]).await.unwrap();
}

// ---- export --------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_pages_in_u64_order_across_the_sign_bit() {
    let (_dir, store) = temp_store();
    let v = version("ext@1");
    let ids = [
        0,
        1,
        i64::MAX as u64,
        1 << 63,
        (1 << 63) + 1,
        u64::MAX - 1,
        u64::MAX,
    ];
    // Written out of order, some only as failures.
    for (i, id) in ids.iter().rev().enumerate() {
        if i % 3 == 0 {
            store
                .put_failures(&[FailureRecord {
                    image_id: ImageId(*id),
                    model_version: v.clone(),
                    stage: Stage::Fetch,
                    reason: FailureReason::new(FailureKind::NotFound, "gone"),
                    attempts: 1,
                    at_ms: 2,
                }])
                .await
                .unwrap();
        } else {
            store.put_codes(&[code(*id, &v, i as u8)]).await.unwrap();
        }
    }
    for limit in [1, 2, 3, 7, 100] {
        let mut got = Vec::new();
        let mut cursor = None;
        loop {
            let (page, next) = store.export_page(cursor.as_ref(), limit).await.unwrap();
            assert!(page.len() <= limit);
            got.extend(page.iter().map(|r| r.image_id.0));
            match next {
                Some(c) => {
                    assert_eq!(c.0, page.last().unwrap().image_id.to_string());
                    cursor = Some(c);
                }
                None => break,
            }
        }
        assert_eq!(got, ids, "limit {limit}");
    }
    let past_the_end = ExportCursor(u64::MAX.to_string());
    let (page, next) = store.export_page(Some(&past_the_end), 10).await.unwrap();
    assert!(page.is_empty() && next.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_export_requests_are_invalid() {
    let (_dir, store) = temp_store();
    let bad = ExportCursor("not-a-number".into());
    assert!(matches!(
        store.export_page(Some(&bad), 10).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store.export_page(None, 0).await,
        Err(StoreError::Invalid(_))
    ));
}

// ---- path registry -------------------------------------------------------------------

fn strings(paths: &[&str]) -> Vec<String> {
    paths.iter().map(|p| p.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_stems_are_ids_and_other_paths_get_json_exact_ids_from_2_pow_52() {
    let (_dir, store) = temp_store();
    let got = store
        .register_paths(&strings(&[
            "shop/1234.jpg",
            "shop/cat.jpg",
            "18446744073709551615.png",
            "shop/dog.webp",
            "shop/cat.jpg",
        ]))
        .await
        .unwrap();
    assert_eq!(
        got,
        vec![
            Ok(ImageId(1234)),
            Ok(ImageId(FIRST_ASSIGNED_ID)),
            Ok(ImageId(u64::MAX)),
            Ok(ImageId(FIRST_ASSIGNED_ID + 1)),
            Ok(ImageId(FIRST_ASSIGNED_ID)),
        ]
    );
    assert_eq!(
        store.path_of(ImageId(FIRST_ASSIGNED_ID + 1)).await.unwrap(),
        Some("shop/dog.webp".to_string())
    );
    assert_eq!(
        store.path_of(ImageId(1234)).await.unwrap(),
        Some("shop/1234.jpg".to_string())
    );
    assert_eq!(store.path_of(ImageId(99)).await.unwrap(), None);
    // JSON readers keep 53 bits: an assigned ID survives a trip through a double.
    let id = FIRST_ASSIGNED_ID + 1;
    assert!(id < 1 << 53 && (id as f64) as u64 == id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assigned_ids_are_stable_across_reopen_and_keep_counting() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let first = {
        let store = SqliteStore::open(&path).unwrap();
        store
            .register_paths(&strings(&["a.jpg", "b.jpg"]))
            .await
            .unwrap()
    };
    let store = SqliteStore::open(&path).unwrap();
    let again = store
        .register_paths(&strings(&["b.jpg", "c.jpg", "a.jpg"]))
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![
            first[1].clone(),
            Ok(ImageId(FIRST_ASSIGNED_ID + 2)),
            first[0].clone()
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_paths_for_one_id_conflict_naming_the_first() {
    let (_dir, store) = temp_store();
    let taken = FIRST_ASSIGNED_ID + 1;
    let got = store
        .register_paths(&strings(&[
            "x/42.jpg",
            "y/42.png",
            "y/042.png",
            &format!("{taken}.jpg"),
            "a.jpg",
            "b.jpg",
            &format!("late/{FIRST_ASSIGNED_ID}.jpg"),
        ]))
        .await
        .unwrap();
    let conflict = |path: &str, id: u64, other: &str| {
        Err(PathIdConflict {
            path: path.into(),
            id: ImageId(id),
            other: other.into(),
        })
    };
    assert_eq!(got[0], Ok(ImageId(42)));
    assert_eq!(got[1], conflict("y/42.png", 42, "x/42.jpg"));
    assert_eq!(got[2], conflict("y/042.png", 42, "x/42.jpg"));
    assert_eq!(got[3], Ok(ImageId(taken)));
    // The numeric name took 2^63 + 1, so assignment skips it.
    assert_eq!(got[4], Ok(ImageId(FIRST_ASSIGNED_ID)));
    assert_eq!(got[5], Ok(ImageId(FIRST_ASSIGNED_ID + 2)));
    assert_eq!(
        got[6],
        conflict(
            &format!("late/{FIRST_ASSIGNED_ID}.jpg"),
            FIRST_ASSIGNED_ID,
            "a.jpg"
        )
    );
    let msg = got[1].clone().unwrap_err().to_string();
    assert!(
        msg.contains("y/42.png") && msg.contains("x/42.jpg") && msg.contains("42"),
        "{msg}"
    );
    // A conflicting path is not registered; the first keeps its ID.
    assert_eq!(
        store.path_of(ImageId(42)).await.unwrap().as_deref(),
        Some("x/42.jpg")
    );
    let again = store.register_paths(&strings(&["y/42.png"])).await.unwrap();
    assert_eq!(again[0], conflict("y/42.png", 42, "x/42.jpg"));
}

#[test]
fn the_blocking_registry_api_matches_the_async_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&db_path(&dir)).unwrap();
    let got = store
        .register_paths_blocking(&strings(&["p/q.jpg", "7.jpg"]))
        .unwrap();
    assert_eq!(got, vec![Ok(ImageId(FIRST_ASSIGNED_ID)), Ok(ImageId(7))]);
    assert_eq!(
        store.path_of_blocking(ImageId(7)).unwrap().as_deref(),
        Some("7.jpg")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registering_10_000_paths_takes_well_under_a_second() {
    let (_dir, store) = temp_store();
    let paths: Vec<String> = (0..10_000)
        .map(|i| {
            if i % 2 == 0 {
                format!("photos/{i}.jpg")
            } else {
                format!("photos/IMG_{i:05}.jpg")
            }
        })
        .collect();
    let started = Instant::now();
    let ids = store.register_paths(&paths).await.unwrap();
    let first = started.elapsed();
    let started = Instant::now();
    let again = store.register_paths(&paths).await.unwrap();
    let second = started.elapsed();
    eprintln!("register 10 000 paths: {first:?} new, {second:?} known");
    assert!(ids.iter().all(|r| r.is_ok()));
    assert_eq!(ids, again);
    assert!(first < Duration::from_secs(1), "{first:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writing_1000_codes_and_checking_them_is_fast() {
    let (_dir, store) = temp_store();
    let v = version("ext@1");
    let records: Vec<CodeRecord> = (0..1000u64)
        .map(|i| code(i.wrapping_mul(0x9e37_79b9_7f4a_7c15), &v, i as u8))
        .collect();
    let started = Instant::now();
    store.put_codes(&records).await.unwrap();
    let put = started.elapsed();
    let ids: Vec<ImageId> = records.iter().map(|r| r.image_id).collect();
    let started = Instant::now();
    let coded = store.coded(&ids, &v).await.unwrap();
    let check = started.elapsed();
    eprintln!("put 1 000 codes: {put:?}; coded() of 1 000 IDs: {check:?}");
    assert_eq!(coded.len(), 1000);
    assert!(put < Duration::from_secs(2), "{put:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_jobs_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = db_path(&dir);
    let job = imgfeat_core::ports::BackfillJob {
        id: "bf-1".into(),
        from: 10,
        to: 20,
        model: Some(version("ssd@2")),
        next: 15,
        published: 4,
        skipped: 1,
        state: imgfeat_core::ports::BackfillState::Running,
        created_ms: 1,
        updated_ms: 2,
    };
    SqliteStore::open(&path)
        .unwrap()
        .save_backfill(&job)
        .await
        .unwrap();
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.backfills().await.unwrap(), vec![job]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_code_pages_run_in_signed_id_order_with_every_length() {
    let (_dir, store) = temp_store();
    let (v, other) = (version("ext@1"), version("ext@2"));
    let mut want: Vec<CodeRecord> = (0..50u64).map(|i| code(i << 58, &v, i as u8)).collect();
    store.put_codes(&want).await.unwrap();
    store.put_codes(&[code(1, &other, 0)]).await.unwrap();
    let short = CodeRecord {
        image_id: ImageId(999),
        model_version: v.clone(),
        code: BinaryCode::from_bytes(16, vec![0, 0]).unwrap(),
    };
    store.put_codes(std::slice::from_ref(&short)).await.unwrap();
    want.push(short);
    let got = conformance::all_code_pages(&store, &v, 8).await.unwrap();
    // Keyset order is SQLite's signed order of the bit-cast IDs: 2^63 and up first.
    let keys: Vec<i64> = got.iter().map(|c| c.image_id.0.cast_signed()).collect();
    assert!(keys.is_sorted(), "{keys:?}");
    let mut got = got;
    got.sort_by_key(|c| c.image_id);
    want.sort_by_key(|c| c.image_id);
    assert_eq!(got, want);
    let bad = ScanCursor(vec![1, 2, 3]);
    let err = store.code_page(&v, Some(&bad), 8).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
}

// ---- the suite catches broken stores ---------------------------------------------------

/// A SqliteStore with one fault, to show the conformance checks can fail.
struct Faulty {
    inner: SqliteStore,
    fault: Fault,
}

#[derive(PartialEq)]
enum Fault {
    CodedDropsOne,
    ScanDropsThePageEnd,
    ScanRepeatsItsCursor,
    CropsLost,
}

#[async_trait::async_trait]
impl ResultStore for Faulty {
    async fn put_detections(
        &self,
        records: &[imgfeat_core::DetectionRecord],
    ) -> Result<(), StoreError> {
        let mut records = records.to_vec();
        if self.fault == Fault::CropsLost {
            records.iter_mut().for_each(|r| r.crop_jpeg.clear());
        }
        self.inner.put_detections(&records).await
    }
    async fn put_codes(&self, records: &[CodeRecord]) -> Result<(), StoreError> {
        self.inner.put_codes(records).await
    }
    async fn put_failures(&self, records: &[FailureRecord]) -> Result<(), StoreError> {
        self.inner.put_failures(records).await
    }
    async fn detection(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<imgfeat_core::DetectionRecord>, StoreError> {
        self.inner.detection(id, version).await
    }
    async fn code(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<CodeRecord>, StoreError> {
        self.inner.code(id, version).await
    }
    async fn failures(&self, id: ImageId) -> Result<Vec<FailureRecord>, StoreError> {
        self.inner.failures(id).await
    }
    async fn coded(
        &self,
        ids: &[ImageId],
        version: &ModelVersion,
    ) -> Result<std::collections::HashSet<ImageId>, StoreError> {
        let mut got = self.inner.coded(ids, version).await?;
        if self.fault == Fault::CodedDropsOne
            && let Some(first) = got.iter().next().copied()
        {
            got.remove(&first);
        }
        Ok(got)
    }
    async fn code_page(
        &self,
        version: &ModelVersion,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<CodePage, StoreError> {
        let mut page = self.inner.code_page(version, after, limit).await?;
        match self.fault {
            // An off-by-one cursor: the last code of every full page is never returned.
            Fault::ScanDropsThePageEnd if page.next.is_some() => {
                page.codes.pop();
            }
            Fault::ScanRepeatsItsCursor if after.is_some() => page.next = after.cloned(),
            _ => {}
        }
        Ok(page)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_suite_catches_broken_stores() {
    let (_dir, inner) = temp_store();
    let store = |fault| Faulty {
        inner: inner.clone(),
        fault,
    };
    let err = conformance::coded_returns_exactly_the_subset(&store(Fault::CodedDropsOne))
        .await
        .unwrap_err();
    assert!(err.0.contains("1 missing"), "{err}");
    let err = conformance::code_pages_cover_the_version_once(&store(Fault::ScanDropsThePageEnd))
        .await
        .unwrap_err();
    // Pages of 1 lose their only code, so an empty page says there is more: the first
    // rule the scan breaks (with larger pages it would be the count).
    assert!(
        err.0
            .contains("an empty page of a code scan says there is more"),
        "{err}"
    );
    let err = conformance::code_pages_cover_the_version_once(&store(Fault::ScanRepeatsItsCursor))
        .await
        .unwrap_err();
    assert!(err.0.contains("same cursor twice"), "{err}");
    let err = conformance::detection_round_trip(&store(Fault::CropsLost))
        .await
        .unwrap_err();
    assert!(err.0.contains("detection of"), "{err}");
}
