//! [`BackfillStore`] for [`SqliteStore`]: one row per job, replaced whole on every save.

use async_trait::async_trait;
use imgfeat_core::ports::{BackfillJob, BackfillStore, StoreError};
use rusqlite::{OptionalExtension, params};

use crate::error;
use crate::rows::{self, RawBackfill};
use crate::sqlite::{SqliteStore, commit, write_tx};

#[async_trait]
impl BackfillStore for SqliteStore {
    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError> {
        let job = job.clone();
        self.write("save_backfill", move |conn| {
            let op = "saving a backfill job";
            let tx = write_tx(conn, op)?;
            {
                let mut stmt = tx
                    .prepare_cached(rows::UPSERT_BACKFILL)
                    .map_err(|e| error::sql(op, e))?;
                rows::upsert_backfill(&mut stmt, &job).map_err(|e| error::sql(op, e))?;
            }
            commit(tx, op)
        })
        .await
    }

    async fn backfill(&self, id: &str) -> Result<Option<BackfillJob>, StoreError> {
        let id = id.to_owned();
        self.read("backfill", move |conn| {
            let sql = format!(
                "SELECT {} FROM backfill_jobs WHERE id = ?1",
                rows::BACKFILL_COLUMNS
            );
            let raw = conn
                .prepare_cached(&sql)
                .and_then(|mut s| s.query_row(params![id], RawBackfill::read).optional())
                .map_err(|e| error::sql("reading a backfill job", e))?;
            raw.map(RawBackfill::into_job).transpose()
        })
        .await
    }

    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError> {
        self.read("backfills", move |conn| {
            let op = "listing backfill jobs";
            let sql = format!(
                "SELECT {} FROM backfill_jobs ORDER BY created_ms, id",
                rows::BACKFILL_COLUMNS
            );
            let raws = conn
                .prepare_cached(&sql)
                .and_then(|mut s| {
                    s.query_map([], RawBackfill::read)?
                        .collect::<Result<Vec<_>, _>>()
                })
                .map_err(|e| error::sql(op, e))?;
            raws.into_iter().map(RawBackfill::into_job).collect()
        })
        .await
    }
}
