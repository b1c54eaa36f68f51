//! The results store on ScyllaDB/Cassandra: the same ports as the embedded store, so
//! stages and tests cannot tell them apart.

use std::collections::{BTreeSet, HashSet};
use std::ops::ControlFlow;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use imgfeat_core::ports::{
    BackfillJob, BackfillStore, CodePage, ResultStore, ScanCursor, StoreError,
};
use imgfeat_core::{CodeRecord, DetectionRecord, FailureRecord, ImageId, ModelVersion, now_ms};
use scylla::client::session::Session;
use scylla::deserialize::row::DeserializeRow;
use scylla::response::PagingState;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;

use crate::config::{CqlConfig, ttl_value};
use crate::errors::{invalid, store_error};
use crate::retry::{classify, classify_prepare, with_retries};
use crate::rows::{self, id_from_cql, id_to_cql};
use crate::scan;
use crate::schema::{self, MigrationReport};
use crate::session::{self, ConnectOptions};
use crate::statements::Prepared;

/// Results in a CQL keyspace. Cheap to share behind an `Arc`; the driver session inside
/// multiplexes every request over its own connection pool.
pub struct CqlStore {
    session: Arc<Session>,
    st: Prepared,
    cfg: CqlConfig,
}

impl std::fmt::Debug for CqlStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CqlStore")
            .field("keyspace", &self.cfg.keyspace)
            .field("nodes", &self.cfg.nodes)
            .finish_non_exhaustive()
    }
}

impl CqlStore {
    /// One server page of the code scan at `pos`: this version's codes on it, and where
    /// the scan goes on (`None`: the ring is done).
    async fn code_server_page(
        &self,
        version: &ModelVersion,
        pos: &scan::Position,
        limit: usize,
    ) -> Result<(Vec<CodeRecord>, Option<scan::Position>), StoreError> {
        let mut st = self.st.scan_code_range.clone();
        st.set_page_size(i32::try_from(limit.max(1)).unwrap_or(i32::MAX));
        let bounds = scan::token_range(pos.range, scan::RANGES);
        let paging = if pos.paging.is_empty() {
            PagingState::start()
        } else {
            PagingState::new_from_raw_bytes(pos.paging.as_slice())
        };
        let what = "scan codes";
        let (res, next) = with_retries(&self.cfg.retries, true, what, classify, || {
            self.session
                .execute_single_page(&st, bounds, paging.clone())
        })
        .await
        .map_err(|e| store_error(what, &e))?;
        let rows = res.into_rows_result().map_err(|e| invalid(what, e))?;
        let mut codes = Vec::new();
        for row in rows
            .rows::<(i64, String, i32, Vec<u8>)>()
            .map_err(|e| invalid(what, e))?
        {
            let (id, v, bits, code) = row.map_err(|e| invalid(what, e))?;
            if v == version.as_str() {
                codes.push(rows::code_from_row(id_from_cql(id), (v, bits, code))?);
            }
        }
        let next = match next.into_paging_control_flow() {
            ControlFlow::Continue(p) => Some(scan::Position {
                range: pos.range,
                paging: p.as_bytes_slice().map(|b| b.to_vec()).unwrap_or_default(),
            }),
            ControlFlow::Break(()) if pos.range + 1 < scan::RANGES => Some(scan::Position {
                range: pos.range + 1,
                paging: Vec::new(),
            }),
            ControlFlow::Break(()) => None,
        };
        Ok((codes, next))
    }
    /// Connects, creates or migrates the schema (or, with `auto_migrate = false`, checks
    /// that it is current), and prepares every statement once.
    pub async fn connect(cfg: &CqlConfig) -> Result<CqlStore, StoreError> {
        let session = Arc::new(open_session(cfg).await?);
        if cfg.auto_migrate {
            let report = schema::migrate(&session, cfg).await?;
            tracing::info!(keyspace = %cfg.keyspace, applied = ?report.applied, current = report.current, "CQL schema ready");
        } else {
            schema::check_current(&schema::applied_versions(&session, cfg).await?)?;
        }
        Self::with_session(session, cfg).await
    }

    /// Wraps a session opened elsewhere; the schema must already be current.
    pub async fn with_session(
        session: Arc<Session>,
        cfg: &CqlConfig,
    ) -> Result<CqlStore, StoreError> {
        cfg.validate()
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let st = Prepared::prepare(&session, &cfg.keyspace)
            .await
            .map_err(|e| {
                let msg = format!("preparing statements: {e}");
                if classify_prepare(&e).is_permanent() {
                    StoreError::Invalid(msg)
                } else {
                    StoreError::Unavailable(msg)
                }
            })?;
        Ok(CqlStore {
            session,
            st,
            cfg: cfg.clone(),
        })
    }

    /// Creates or migrates the schema and returns what it did (`imgfeat store migrate`).
    pub async fn migrate(cfg: &CqlConfig) -> Result<MigrationReport, StoreError> {
        let session = open_session(cfg).await?;
        schema::migrate(&session, cfg).await
    }

    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    pub fn config(&self) -> &CqlConfig {
        &self.cfg
    }

    pub(crate) fn statements(&self) -> &Prepared {
        &self.st
    }

    pub(crate) async fn exec(
        &self,
        what: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<QueryResult, StoreError> {
        with_retries(
            &self.cfg.retries,
            st.get_is_idempotent(),
            what,
            classify,
            || self.session.execute_unpaged(st, &values),
        )
        .await
        .map_err(|e| store_error(what, &e))
    }

    /// Every row of a statement, page by page, each page retried on its own.
    pub(crate) async fn rows<R>(
        &self,
        what: &str,
        st: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, StoreError>
    where
        R: for<'f, 'm> DeserializeRow<'f, 'm>,
    {
        let mut out = Vec::new();
        let mut paging = PagingState::start();
        loop {
            let (res, next) = with_retries(
                &self.cfg.retries,
                st.get_is_idempotent(),
                what,
                classify,
                || {
                    self.session
                        .execute_single_page(st, &values, paging.clone())
                },
            )
            .await
            .map_err(|e| store_error(what, &e))?;
            let rows = res.into_rows_result().map_err(|e| invalid(what, e))?;
            for row in rows.rows::<R>().map_err(|e| invalid(what, e))? {
                out.push(row.map_err(|e| invalid(what, e))?);
            }
            match next.into_paging_control_flow() {
                ControlFlow::Break(()) => return Ok(out),
                ControlFlow::Continue(p) => paging = p,
            }
        }
    }

    async fn put_detection(&self, rec: &DetectionRecord) -> Result<(), StoreError> {
        let now = now_ms();
        let det = rows::detection_values(rec, now, ttl_value(self.cfg.ttl.detections))?;
        let crop = rows::crop_values(rec, now, ttl_value(self.cfg.ttl.crops));
        // Crop first: a visible detection row then always has its crop.
        self.exec("put crop", &self.st.insert_crop, crop).await?;
        self.exec("put detection", &self.st.insert_detection, det)
            .await?;
        Ok(())
    }

    async fn put_code(&self, rec: &CodeRecord) -> Result<(), StoreError> {
        let ttl = ttl_value(self.cfg.ttl.codes);
        let values = rows::code_values(rec, now_ms(), ttl)?;
        let id = id_to_cql(rec.image_id);
        let version = rec.model_version.as_str();
        self.exec("put code", &self.st.insert_code, values).await?;
        self.exec("clear failures", &self.st.clear_failures, (id, version))
            .await?;
        Ok(())
    }

    async fn codes_of(
        &self,
        ids: impl IntoIterator<Item = ImageId>,
        version: &ModelVersion,
    ) -> Result<Vec<CodeRecord>, StoreError> {
        let found: Vec<Option<CodeRecord>> = futures::stream::iter(ids)
            .map(|id| self.code(id, version))
            .buffer_unordered(self.cfg.max_concurrency)
            .try_collect()
            .await?;
        let mut out: Vec<CodeRecord> = found.into_iter().flatten().collect();
        out.sort_by_key(|r| r.image_id);
        Ok(out)
    }

    /// Everything stored for one image, for exports.
    pub(crate) async fn image_results(
        &self,
        id: ImageId,
    ) -> Result<imgfeat_core::ports::ImageResults, StoreError> {
        let key = (id_to_cql(id),);
        let (dets, crops, codes, failures) = futures::try_join!(
            self.rows::<rows::DetectionRow>("export detections", &self.st.select_detections, key),
            self.rows::<rows::CropRow>("export crops", &self.st.select_crops, key),
            self.rows::<rows::CodeRow>("export codes", &self.st.select_codes, key),
            self.failures(id),
        )?;
        let mut crops: std::collections::HashMap<String, Option<Vec<u8>>> =
            crops.into_iter().collect();
        let detections = dets
            .into_iter()
            .map(|row| {
                let crop = crops.remove(&row.0).flatten();
                rows::detection_from_row(id, row, crop)
            })
            .collect::<Result<_, _>>()?;
        let codes = codes
            .into_iter()
            .map(|row| rows::code_from_row(id, row))
            .collect::<Result<_, _>>()?;
        Ok(imgfeat_core::ports::ImageResults {
            image_id: id,
            detections,
            codes,
            failures,
        })
    }
}

async fn open_session(cfg: &CqlConfig) -> Result<Session, StoreError> {
    cfg.validate()
        .map_err(|e| StoreError::Invalid(e.to_string()))?;
    let opts = ConnectOptions {
        nodes: &cfg.nodes,
        local_dc: cfg.local_dc.as_deref(),
        username: cfg.username.as_deref(),
        password: cfg.password.as_deref(),
        tls: cfg.tls.as_ref(),
        consistency: cfg.consistency,
        request_timeout: cfg.request_timeout(),
        connect_timeout: cfg.connect_timeout(),
    };
    session::open(&opts).await.map_err(|e| match e {
        // A CA file that can't be read is the configuration's fault: say so at start-up
        // instead of retrying it as an outage.
        session::OpenError::Tls(e) => StoreError::Invalid(e.to_string()),
        session::OpenError::Connect(e) => {
            StoreError::Unavailable(format!("connecting to {:?}: {e}", cfg.nodes))
        }
    })
}

#[async_trait]
impl ResultStore for CqlStore {
    async fn put_detections(&self, records: &[DetectionRecord]) -> Result<(), StoreError> {
        // Indices, not references: stream closures over borrowed items trip the
        // higher-ranked lifetime check of `async_trait`'s Send futures.
        futures::stream::iter(0..records.len())
            .map(|i| self.put_detection(&records[i]))
            .buffer_unordered(self.cfg.max_concurrency)
            .try_collect::<()>()
            .await
    }

    async fn put_codes(&self, records: &[CodeRecord]) -> Result<(), StoreError> {
        futures::stream::iter(0..records.len())
            .map(|i| self.put_code(&records[i]))
            .buffer_unordered(self.cfg.max_concurrency)
            .try_collect::<()>()
            .await
    }

    async fn put_failures(&self, records: &[FailureRecord]) -> Result<(), StoreError> {
        let ttl = ttl_value(self.cfg.ttl.failures);
        futures::stream::iter(0..records.len())
            .map(|i| async move {
                let values = rows::failure_values(&records[i], ttl)?;
                self.exec("put failure", &self.st.insert_failure, values)
                    .await
                    .map(|_| ())
            })
            .buffer_unordered(self.cfg.max_concurrency)
            .try_collect::<()>()
            .await
    }

    async fn detection(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<DetectionRecord>, StoreError> {
        let key = (id_to_cql(id), version.as_str());
        let (det, crop) = futures::try_join!(
            self.rows::<rows::DetectionRow>("get detection", &self.st.select_detection, key),
            self.rows::<rows::CropRow>("get crop", &self.st.select_crop, key),
        )?;
        let crop = crop.into_iter().next().and_then(|(_, c)| c);
        det.into_iter()
            .next()
            .map(|row| rows::detection_from_row(id, row, crop))
            .transpose()
    }

    async fn code(
        &self,
        id: ImageId,
        version: &ModelVersion,
    ) -> Result<Option<CodeRecord>, StoreError> {
        let key = (id_to_cql(id), version.as_str());
        let found: Vec<rows::CodeRow> = self.rows("get code", &self.st.select_code, key).await?;
        found
            .into_iter()
            .next()
            .map(|row| rows::code_from_row(id, row))
            .transpose()
    }

    async fn failures(&self, id: ImageId) -> Result<Vec<FailureRecord>, StoreError> {
        let found: Vec<rows::FailureRow> = self
            .rows("get failures", &self.st.select_failures, (id_to_cql(id),))
            .await?;
        found
            .into_iter()
            .map(|row| rows::failure_from_row(id, row))
            .collect()
    }

    /// One single-partition read per ID, a bounded number in flight: an `IN` over
    /// thousands of partitions would load one coordinator with all of them.
    async fn coded(
        &self,
        ids: &[ImageId],
        version: &ModelVersion,
    ) -> Result<HashSet<ImageId>, StoreError> {
        let unique: BTreeSet<ImageId> = ids.iter().copied().collect();
        Ok(self
            .codes_of(unique, version)
            .await?
            .into_iter()
            .map(|r| r.image_id)
            .collect())
    }

    /// One server page of one token slice: rows of every version come back and those of
    /// other versions are dropped here, since filtering on the clustering key server-side
    /// would need `ALLOW FILTERING`. A page may so be short or empty while the scan goes on.
    async fn code_page(
        &self,
        version: &ModelVersion,
        after: Option<&ScanCursor>,
        limit: usize,
    ) -> Result<CodePage, StoreError> {
        let mut pos = scan::Position::from_cursor(after)?;
        // Codes are partitioned by image, so a version's codes sit among every other
        // version's and the scan reads them all. A server page can hold none of this
        // version's; the scan goes on to the next page rather than hand back an empty
        // one, so that an empty page always means the end (the port's contract).
        loop {
            let (codes, next) = self.code_server_page(version, &pos, limit).await?;
            match next {
                Some(next) if codes.is_empty() => pos = next,
                next => {
                    return Ok(CodePage {
                        codes,
                        next: next.map(|p| p.to_cursor()),
                    });
                }
            }
        }
    }
}

#[async_trait]
impl BackfillStore for CqlStore {
    async fn save_backfill(&self, job: &BackfillJob) -> Result<(), StoreError> {
        self.exec(
            "save backfill",
            &self.st.upsert_backfill,
            rows::backfill_values(job),
        )
        .await
        .map(|_| ())
    }

    async fn backfill(&self, id: &str) -> Result<Option<BackfillJob>, StoreError> {
        let found: Vec<rows::BackfillRow> = self
            .rows("get backfill", &self.st.select_backfill, (id,))
            .await?;
        found
            .into_iter()
            .next()
            .map(rows::backfill_from_row)
            .transpose()
    }

    async fn backfills(&self) -> Result<Vec<BackfillJob>, StoreError> {
        let found: Vec<rows::BackfillRow> = self
            .rows("list backfills", &self.st.select_backfills, ())
            .await?;
        let mut jobs = found
            .into_iter()
            .map(rows::backfill_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        jobs.sort_by(|a, b| (a.created_ms, &a.id).cmp(&(b.created_ms, &b.id)));
        Ok(jobs)
    }
}
