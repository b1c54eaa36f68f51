//! The schema as numbered migrations, and the idempotent routine that brings a keyspace
//! up to date.
//!
//! Every DDL statement is `IF NOT EXISTS` (or `DROP ... IF EXISTS`), so a migration interrupted half-way is simply
//! run again; its version row is written only after every statement succeeded and the
//! cluster agrees on the schema. Types are plain CQL types both Cassandra 4.x and ScyllaDB
//! accept (no UDTs, no SAI, no materialized views, no Scylla-only options).

use std::collections::BTreeSet;

use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, RequestAttemptError};
use scylla::statement::unprepared::Statement;

use crate::config::{CqlConfig, RetryConfig};
use crate::errors::store_error;
use crate::retry::{classify, with_retries};
use imgfeat_core::ports::StoreError;

/// One step of the schema. Its statements use `{ks}` for the keyspace.
#[derive(Debug)]
pub struct Migration {
    pub version: i32,
    pub description: &'static str,
    pub statements: &'static [&'static str],
}

/// Tracks which migrations ran. Not a migration itself: it must exist to read versions.
pub const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS {ks}.schema_migrations (\
     version int PRIMARY KEY, description text, applied_ms bigint) \
     WITH comment = 'imgfeat schema versions applied'";

/// The schema, oldest first. Append only: never edit a migration that has shipped.
///
/// `image_id` is the u64 image ID bit-cast to `bigint`: IDs over `i64::MAX` read back as
/// negative numbers in cqlsh, but round-trip exactly through this store.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "results, crops, codes with buckets, failures, backfills, settings",
        statements: &[
            // Facts fixed when the keyspace is first created (e.g. how codes are bucketed).
            "CREATE TABLE IF NOT EXISTS {ks}.store_settings (\
         name text PRIMARY KEY, value text)",
            // Detections and crops are apart so that reading boxes never drags pixels along.
            "CREATE TABLE IF NOT EXISTS {ks}.detections (\
         image_id bigint, model_version text, image_width int, image_height int, \
         detections text, main_object text, stored_ms bigint, \
         PRIMARY KEY ((image_id), model_version))",
            "CREATE TABLE IF NOT EXISTS {ks}.crops (\
         image_id bigint, model_version text, crop_jpeg blob, stored_ms bigint, \
         PRIMARY KEY ((image_id), model_version))",
            "CREATE TABLE IF NOT EXISTS {ks}.codes (\
         image_id bigint, model_version text, bits int, code blob, stored_ms bigint, \
         PRIMARY KEY ((image_id), model_version))",
            // Multi-index hashing: one row per (code chunk, image), so the images sharing a
            // chunk with a probe are one partition read away.
            "CREATE TABLE IF NOT EXISTS {ks}.code_buckets (\
         model_version text, chunk_index int, chunk blob, image_id bigint, \
         PRIMARY KEY ((model_version, chunk_index, chunk), image_id))",
            "CREATE TABLE IF NOT EXISTS {ks}.failures (\
         image_id bigint, model_version text, stage text, kind text, message text, \
         attempts int, at_ms bigint, \
         PRIMARY KEY ((image_id), model_version, stage))",
            "CREATE TABLE IF NOT EXISTS {ks}.backfills (\
         id text PRIMARY KEY, range_from bigint, range_to bigint, model_version text, \
         next_id bigint, published bigint, skipped bigint, job_state text, \
         created_ms bigint, updated_ms bigint)",
        ],
    },
    Migration {
        version: 2,
        description: "drop the radius-3 code buckets: search loads codes by a token-range scan",
        // The buckets guaranteed only distance <= 3 while copies sit 10-15 bits apart, and
        // nothing outside tests read them; the search service holds its own index, loaded by
        // scanning `codes`. Dropping the table also ends a write per chunk on every code.
        statements: &["DROP TABLE IF EXISTS {ks}.code_buckets"],
    },
    Migration {
        version: 3,
        description: "near-duplicates of new uploads, one row per neighbour",
        // Partitioned by (image, version): every search shard upserts the neighbours it
        // holds into the same partition without reading it, and one read returns them.
        statements: &["CREATE TABLE IF NOT EXISTS {ks}.near_duplicates (\
         image_id bigint, model_version text, neighbour_id bigint, distance int, \
         found_ms bigint, \
         PRIMARY KEY ((image_id, model_version), neighbour_id))"],
    },
];

pub fn latest_version() -> i32 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

pub fn render(template: &str, keyspace: &str) -> String {
    template.replace("{ks}", keyspace)
}

pub fn create_keyspace(cfg: &CqlConfig) -> String {
    format!(
        "CREATE KEYSPACE IF NOT EXISTS {} WITH replication = {} AND durable_writes = true",
        cfg.keyspace,
        cfg.replication.to_cql()
    )
}

/// The migrations still to run, given the versions already recorded.
pub fn pending(applied: &BTreeSet<i32>) -> Vec<&'static Migration> {
    MIGRATIONS
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .collect()
}

/// Whether a store may be used as is, when `connect` is told not to migrate.
pub fn check_current(applied: &BTreeSet<i32>) -> Result<(), StoreError> {
    let missing: Vec<i32> = pending(applied).iter().map(|m| m.version).collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "CQL schema is missing migrations {missing:?}: run `imgfeat store migrate`"
        )))
    }
}

/// What a migration run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// Versions applied by this run (empty when the schema was already current).
    pub applied: Vec<i32>,
    /// The newest version now recorded.
    pub current: i32,
}

/// Creates the keyspace and tables if missing and records each migration applied.
/// Safe to run any number of times, and from several processes (every step is
/// `IF NOT EXISTS`); large fleets still do best running it once, before the workers.
pub async fn migrate(session: &Session, cfg: &CqlConfig) -> Result<MigrationReport, StoreError> {
    let ks = &cfg.keyspace;
    ddl(session, &cfg.retries, &create_keyspace(cfg)).await?;
    ddl(session, &cfg.retries, &render(MIGRATIONS_TABLE, ks)).await?;
    let before = applied_versions(session, cfg).await?;
    let mut report = MigrationReport {
        applied: Vec::new(),
        current: before.iter().copied().max().unwrap_or(0),
    };
    if let Some(newer) = before.iter().find(|v| **v > latest_version()) {
        tracing::warn!(
            keyspace = %ks,
            version = newer,
            "CQL schema is newer than this build; carrying on (migrations only add)"
        );
    }
    for m in pending(&before) {
        tracing::info!(keyspace = %ks, version = m.version, description = m.description, "applying CQL migration");
        for template in m.statements {
            ddl(session, &cfg.retries, &render(template, ks)).await?;
        }
        await_agreement(session).await?;
        let record = Statement::new(format!(
            "INSERT INTO {ks}.schema_migrations (version, description, applied_ms) VALUES (?, ?, ?)"
        ));
        let now = i64::try_from(imgfeat_core::now_ms()).unwrap_or(i64::MAX);
        let values = (m.version, m.description, now);
        with_retries(&cfg.retries, true, "record migration", classify, || {
            session.query_unpaged(record.clone(), values)
        })
        .await
        .map_err(|e| store_error("record migration", &e))?;
        report.applied.push(m.version);
        report.current = report.current.max(m.version);
    }
    Ok(report)
}

/// The versions recorded in `schema_migrations` (a handful of rows, so a full read).
/// A keyspace or table that does not exist yet means nothing was applied: reading it
/// would fail with the server's "keyspace ... does not exist", which tells an operator
/// nothing about the way out ([`check_current`] does).
pub async fn applied_versions(
    session: &Session,
    cfg: &CqlConfig,
) -> Result<BTreeSet<i32>, StoreError> {
    if !migrations_table_exists(session, cfg).await? {
        return Ok(BTreeSet::new());
    }
    let mut q = Statement::new(format!(
        "SELECT version FROM {}.schema_migrations",
        cfg.keyspace
    ));
    q.set_is_idempotent(true);
    let res = with_retries(&cfg.retries, true, "read schema versions", classify, || {
        session.query_unpaged(q.clone(), ())
    })
    .await
    .map_err(|e| store_error("read schema versions", &e))?;
    let rows = res
        .into_rows_result()
        .map_err(|e| StoreError::Invalid(format!("schema_migrations: {e}")))?;
    let mut out = BTreeSet::new();
    for row in rows
        .rows::<(i32,)>()
        .map_err(|e| StoreError::Invalid(format!("schema_migrations: {e}")))?
    {
        let (v,) = row.map_err(|e| StoreError::Invalid(format!("schema_migrations: {e}")))?;
        out.insert(v);
    }
    Ok(out)
}

/// Asks `system_schema`, which Cassandra 4 and ScyllaDB both keep, rather than reading
/// the table and guessing from the error text, whose wording differs between servers.
async fn migrations_table_exists(session: &Session, cfg: &CqlConfig) -> Result<bool, StoreError> {
    let mut q = Statement::new(MIGRATIONS_TABLE_LOOKUP);
    q.set_is_idempotent(true);
    let values = (cfg.keyspace.as_str(), "schema_migrations");
    let res = with_retries(&cfg.retries, true, "look up schema table", classify, || {
        session.query_unpaged(q.clone(), values)
    })
    .await
    .map_err(|e| store_error("look up schema table", &e))?;
    let rows = res
        .into_rows_result()
        .map_err(|e| StoreError::Invalid(format!("system_schema.tables: {e}")))?;
    Ok(rows.rows_num() > 0)
}

/// Keyspace names are stored lowercase there, as [`CqlConfig`] requires them to be.
pub const MIGRATIONS_TABLE_LOOKUP: &str = "SELECT table_name FROM system_schema.tables \
     WHERE keyspace_name = ? AND table_name = ?";

async fn ddl(session: &Session, retries: &RetryConfig, text: &str) -> Result<(), StoreError> {
    let mut q = Statement::new(text.to_string());
    q.set_is_idempotent(true);
    let res = with_retries(retries, true, "schema change", classify, || {
        session.query_unpaged(q.clone(), ())
    })
    .await;
    match res {
        Ok(_) => {}
        // `IF NOT EXISTS` racing another migrator on another coordinator can still
        // report this; the object exists, which is all we wanted.
        Err(ExecutionError::LastAttemptError(RequestAttemptError::DbError(
            DbError::AlreadyExists { .. },
            _,
        ))) => {}
        Err(e) => return Err(store_error("schema change", &e)),
    }
    await_agreement(session).await
}

/// DDL is applied per node; statements prepared before every node has the new tables
/// fail on the laggards, so each change waits until all nodes report one schema.
async fn await_agreement(session: &Session) -> Result<(), StoreError> {
    session
        .await_schema_agreement()
        .await
        .map(|_| ())
        .map_err(|e| StoreError::Unavailable(format!("schema agreement: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cqlcheck::assert_portable;

    #[test]
    fn migrations_are_numbered_in_order_from_one() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert!(!m.statements.is_empty());
        }
        assert_eq!(latest_version(), MIGRATIONS.len() as i32);
    }

    #[test]
    fn every_ddl_statement_is_idempotent_and_portable() {
        let cfg = CqlConfig::default();
        let mut all = vec![create_keyspace(&cfg), render(MIGRATIONS_TABLE, "imgfeat")];
        for m in MIGRATIONS {
            all.extend(m.statements.iter().map(|s| render(s, "imgfeat")));
        }
        for s in &all {
            let guarded = if s.starts_with("DROP ") {
                s.contains(" IF EXISTS ")
            } else {
                s.contains(" IF NOT EXISTS ")
            };
            assert!(guarded, "{s}");
            assert!(!s.contains("{ks}"), "{s}");
            assert_portable(s);
        }
        assert_portable(MIGRATIONS_TABLE_LOOKUP);
    }

    #[test]
    fn results_tables_are_partitioned_by_image_with_the_version_in_the_key() {
        for table in ["detections", "crops", "codes"] {
            let ddl = MIGRATIONS[0]
                .statements
                .iter()
                .find(|s| s.contains(&format!("{{ks}}.{table} (")))
                .unwrap();
            assert!(
                ddl.contains("PRIMARY KEY ((image_id), model_version))"),
                "{ddl}"
            );
        }
        let failures = MIGRATIONS[0]
            .statements
            .iter()
            .find(|s| s.contains("{ks}.failures ("))
            .unwrap();
        assert!(failures.contains("PRIMARY KEY ((image_id), model_version, stage))"));
    }

    #[test]
    fn keyspace_statement_renders_the_exact_cql() {
        assert_eq!(
            create_keyspace(&CqlConfig::default()),
            "CREATE KEYSPACE IF NOT EXISTS imgfeat WITH replication = \
             {'class': 'SimpleStrategy', 'replication_factor': 1} AND durable_writes = true"
        );
    }

    #[test]
    fn plans_only_what_is_missing() {
        assert_eq!(pending(&BTreeSet::new()).len(), MIGRATIONS.len());
        let all: BTreeSet<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert!(pending(&all).is_empty());
        assert!(check_current(&all).is_ok());
        let err = check_current(&BTreeSet::new()).unwrap_err();
        assert!(err.to_string().contains("imgfeat store migrate"), "{err}");
        // A newer schema (more versions than we know) is current for us.
        let mut newer = all.clone();
        newer.insert(latest_version() + 1);
        assert!(check_current(&newer).is_ok());
    }
}
