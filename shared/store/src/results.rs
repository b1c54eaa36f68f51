//! [`ResultStore`] for [`SqliteStore`]: each batch is one transaction of cached upserts.

use std::collections::HashSet;

use async_trait::async_trait;
use imgfeat_core::ports::{CodePage, ResultStore, ScanCursor, StoreError};
use imgfeat_core::{CodeRecord, DetectionRecord, FailureRecord, ImageId, ModelVersion};
use rusqlite::{OptionalExtension, params};

use crate::error;
use crate::rows::{self, DetectionRow, RawCode, RawDetection, RawFailure, id_from_sql, id_to_sql};
use crate::sqlite::{SqliteStore, commit, write_tx};

/// IDs per `coded` query: well under SQLite's 32766 parameter limit, and one cached
/// statement serves every chunk because short chunks are padded with a repeated ID.
const CODED_CHUNK: usize = 500;

const DELETE_FAILURES_OF_VERSION: &str =
    "DELETE FROM failures WHERE image_id = ?1 AND model_version = ?2";

#[async_trait]
impl ResultStore for SqliteStore {
    async fn put_detections(&self, records: &[DetectionRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let rows = records
            .iter()
            .map(DetectionRow::from_record)
            .collect::<Result<Vec<_>, _>>()?;
        self.write("put_detections", move |conn| {
            let op = "put_detections";
            let tx = write_tx(conn, op)?;
            {
                let mut stmt = tx
                    .prepare_cached(rows::UPSERT_DETECTION)
                    .map_err(|e| error::sql(op, e))?;
                for row in &rows {
                    row.upsert(&mut stmt).map_err(|e| error::sql(op, e))?;
                }
            }
            commit(tx, op)
        })
        .await
    }

    async fn put_codes(&self, records: &[CodeRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.write("put_codes", move |conn| {
            let op = "put_codes";
            let tx = write_tx(conn, op)?;
            {
                let mut upsert = tx
                    .prepare_cached(rows::UPSERT_CODE)
                    .map_err(|e| error::sql(op, e))?;
                let mut clear = tx
                    .prepare_cached(DELETE_FAILURES_OF_VERSION)
                    .map_err(|e| error::sql(op, e))?;
                for r in &records {
                    let id = id_to_sql(r.image_id);
                    let version = r.model_version.as_str();
                    upsert
                        .execute(params![
                            version,
                            id,
                            i64::from(r.code.bits()),
                            r.code.as_bytes()
                        ])
                        .map_err(|e| error::sql(op, e))?;
                    clear
                        .execute(params![id, version])
                        .map_err(|e| error::sql(op, e))?;
                }
            }
            commit(tx, op)
        })
        .await
    }

    async fn put_failures(&self, records: &[FailureRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let records = records.to_vec();
        self.write("put_failures", move |conn| {
            let op = "put_failures";
            let tx = write_tx(conn, op)?;
            {
                let mut stmt = tx
                    .prepare_cached(rows::UPSERT_FAILURE)
                    .map_err(|e| error::sql(op, e))?;
                for r in &records {
                    rows::upsert_failure(&mut stmt, r).map_err(|e| error::sql(op, e))?;
                }
            }
            commit(tx, op)
        })
        .await
    }

    async fn detection(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<DetectionRecord>, StoreError> {
        let version = version.as_str().to_owned();
        self.read("detection", move |conn| {
            let sql = format!(
                "SELECT {} FROM detections WHERE image_id = ?1 AND model_version = ?2",
                rows::DETECTION_COLUMNS
            );
            let raw = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![id_to_sql(id), version], RawDetection::read)
                        .optional()
                })
                .map_err(|e| error::sql("reading a detection", e))?;
            raw.map(RawDetection::into_record).transpose()
        })
        .await
    }

    async fn code(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<CodeRecord>, StoreError> {
        let version = version.as_str().to_owned();
        self.read("code", move |conn| {
            let sql = format!(
                "SELECT {} FROM codes WHERE model_version = ?1 AND image_id = ?2",
                rows::CODE_COLUMNS
            );
            let raw = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_row(params![version, id_to_sql(id)], RawCode::read)
                        .optional()
                })
                .map_err(|e| error::sql("reading a code", e))?;
            raw.map(RawCode::into_record).transpose()
        })
        .await
    }

    async fn failures(&self, id: ImageId) -> Result<Vec<FailureRecord>, StoreError> {
        self.read("failures", move |conn| failures_of(conn, id))
            .await
    }

    async fn coded(
        &self,
        ids: &[ImageId],
        version: &ModelVersion,
    ) -> Result<HashSet<ImageId>, StoreError> {
        if ids.is_empty() {
            return Ok(HashSet::new());
        }
        let ids: Vec<i64> = ids.iter().map(|id| id_to_sql(*id)).collect();
        let version = version.as_str().to_owned();
        self.read("coded", move |conn| {
            let op = "checking which images are coded";
            let placeholders = vec!["?"; CODED_CHUNK].join(", ");
            let sql = format!(
                "SELECT image_id FROM codes WHERE model_version = ? AND image_id IN ({placeholders})"
            );
            let mut stmt = conn.prepare_cached(&sql).map_err(|e| error::sql(op, e))?;
            let mut found = HashSet::new();
            for chunk in ids.chunks(CODED_CHUNK) {
                let pad = chunk[chunk.len() - 1];
                let args = std::iter::once(rusqlite::types::Value::Text(version.clone())).chain(
                    (0..CODED_CHUNK).map(|i| {
                        rusqlite::types::Value::Integer(chunk.get(i).copied().unwrap_or(pad))
                    }),
                );
                let mut rows = stmt
                    .query(rusqlite::params_from_iter(args))
                    .map_err(|e| error::sql(op, e))?;
                while let Some(row) = rows.next().map_err(|e| error::sql(op, e))? {
                    let id: i64 = row.get(0).map_err(|e| error::sql(op, e))?;
                    found.insert(id_from_sql(id));
                }
            }
            Ok(found)
        })
        .await
    }

    /// Keyset pages in image ID order over the `(model_version, image_id)` key: each page
    /// is one index range read, however deep into the version it starts.
    async fn code_page(
        &self,
        version: &ModelVersion,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<CodePage, StoreError> {
        let version = version.as_str().to_owned();
        let after = after.map(sql_cursor).transpose()?;
        let limit = limit.max(1);
        self.read("code_page", move |conn| {
            let op = "scanning codes";
            // Two texts rather than `?2 IS NULL OR ...`, which would keep SQLite from
            // seeking straight to the cursor in the key.
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let raws = match after {
                Some(after) => {
                    let sql = format!(
                        "SELECT {} FROM codes WHERE model_version = ?1 AND image_id > ?2 \
                         ORDER BY image_id LIMIT ?3",
                        rows::CODE_COLUMNS
                    );
                    let mut stmt = conn.prepare_cached(&sql).map_err(|e| error::sql(op, e))?;
                    stmt.query_map(params![version, after, limit], RawCode::read)
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                }
                None => {
                    let sql = format!(
                        "SELECT {} FROM codes WHERE model_version = ?1 \
                         ORDER BY image_id LIMIT ?2",
                        rows::CODE_COLUMNS
                    );
                    let mut stmt = conn.prepare_cached(&sql).map_err(|e| error::sql(op, e))?;
                    stmt.query_map(params![version, limit], RawCode::read)
                        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
                }
            }
            .map_err(|e| error::sql(op, e))?;
            let codes: Vec<CodeRecord> = raws
                .into_iter()
                .map(RawCode::into_record)
                .collect::<Result<_, _>>()?;
            let next = match codes.last() {
                Some(last) if i64::try_from(codes.len()).is_ok_and(|n| n == limit) => {
                    Some(ScanCursor(id_to_sql(last.image_id).to_be_bytes().to_vec()))
                }
                _ => None,
            };
            Ok(CodePage { codes, next })
        })
        .await
    }
}

/// The last image ID of the previous page, as SQLite orders it (signed).
fn sql_cursor(cursor: &ScanCursor) -> Result<i64, StoreError> {
    let bytes: [u8; 8] = cursor.0.as_slice().try_into().map_err(|_| {
        StoreError::Invalid(format!(
            "a code scan cursor of the embedded store is 8 bytes, got {}",
            cursor.0.len()
        ))
    })?;
    Ok(i64::from_be_bytes(bytes))
}

pub(crate) fn failures_of(
    conn: &rusqlite::Connection,
    id: ImageId,
) -> Result<Vec<FailureRecord>, StoreError> {
    let op = "reading failures";
    let sql = format!(
        "SELECT {} FROM failures WHERE image_id = ?1 ORDER BY model_version, stage",
        rows::FAILURE_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| error::sql(op, e))?;
    let raws = stmt
        .query_map(params![id_to_sql(id)], RawFailure::read)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error::sql(op, e))?;
    raws.into_iter().map(RawFailure::into_record).collect()
}

pub(crate) fn detections_of(
    conn: &rusqlite::Connection,
    id: ImageId,
) -> Result<Vec<DetectionRecord>, StoreError> {
    let op = "reading detections";
    let sql = format!(
        "SELECT {} FROM detections WHERE image_id = ?1 ORDER BY model_version",
        rows::DETECTION_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| error::sql(op, e))?;
    let raws = stmt
        .query_map(params![id_to_sql(id)], RawDetection::read)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error::sql(op, e))?;
    raws.into_iter().map(RawDetection::into_record).collect()
}

pub(crate) fn codes_of(
    conn: &rusqlite::Connection,
    id: ImageId,
) -> Result<Vec<CodeRecord>, StoreError> {
    let op = "reading codes";
    let sql = format!(
        "SELECT {} FROM codes WHERE image_id = ?1 ORDER BY model_version",
        rows::CODE_COLUMNS
    );
    let mut stmt = conn.prepare_cached(&sql).map_err(|e| error::sql(op, e))?;
    let raws = stmt
        .query_map(params![id_to_sql(id)], RawCode::read)
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(|e| error::sql(op, e))?;
    raws.into_iter().map(RawCode::into_record).collect()
}
