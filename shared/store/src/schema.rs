//! Connection settings and versioned schema migrations.
//!
//! The schema version lives in `PRAGMA user_version`; migration `i` (0-based) moves a
//! file from version `i` to `i + 1`. Migrations run at open inside one IMMEDIATE
//! transaction, so two processes opening a new file at once cannot both migrate it, and
//! a crash mid-migration leaves the old version intact. Never edit a released migration:
//! append a new one.
//!
//! Image IDs are u64 but SQLite integers are i64: every `image_id` column holds the ID
//! bit-cast to i64 ([`crate::rows::id_to_sql`]), so IDs >= 2^63 are stored as negative
//! numbers and round-trip exactly. Range queries that need u64 order split at 0.

use std::time::Duration;

use imgfeat_core::ports::StoreError;
use rusqlite::{Connection, TransactionBehavior};

use crate::error;

/// `PRAGMA application_id` of imgfeat stores ("imgf"), so a foreign SQLite file is
/// refused instead of having our tables added to it.
pub(crate) const APPLICATION_ID: i32 = 0x696d_6766;

const MIGRATIONS: &[&str] = &[
    // 1: results, failures, backfill jobs, path registry.
    r#"
    -- The crop lives in the detection row, as its last column: the record is written and
    -- read as one unit, and SQLite skips a BLOB's overflow pages for queries that do not
    -- select it. The main_* columns are NULL when the whole image was used.
    CREATE TABLE detections (
        image_id        INTEGER NOT NULL,
        model_version   TEXT    NOT NULL,
        image_width     INTEGER NOT NULL,
        image_height    INTEGER NOT NULL,
        crop_x          INTEGER NOT NULL,
        crop_y          INTEGER NOT NULL,
        crop_width      INTEGER NOT NULL,
        crop_height     INTEGER NOT NULL,
        main_x1         REAL,
        main_y1         REAL,
        main_x2         REAL,
        main_y2         REAL,
        main_score      REAL,
        main_class_id   INTEGER,
        main_label      TEXT,
        detections_json TEXT    NOT NULL,
        crop_jpeg       BLOB    NOT NULL,
        PRIMARY KEY (image_id, model_version),
        CHECK ((main_label IS NULL) = (main_score IS NULL))
    );

    -- Keyed by version first: `coded` and `candidate_codes` ask per version, the hot path
    -- of backfill skips and search. Rows are small, hence WITHOUT ROWID.
    CREATE TABLE codes (
        model_version TEXT    NOT NULL,
        image_id      INTEGER NOT NULL,
        bits          INTEGER NOT NULL,
        code          BLOB    NOT NULL,
        PRIMARY KEY (model_version, image_id)
    ) WITHOUT ROWID;
    CREATE INDEX codes_by_image ON codes (image_id);

    CREATE TABLE failures (
        image_id      INTEGER NOT NULL,
        model_version TEXT    NOT NULL,
        stage         TEXT    NOT NULL,
        kind          TEXT    NOT NULL,
        message       TEXT    NOT NULL,
        attempts      INTEGER NOT NULL,
        at_ms         INTEGER NOT NULL,
        PRIMARY KEY (image_id, model_version, stage)
    ) WITHOUT ROWID;

    CREATE TABLE backfill_jobs (
        id            TEXT    NOT NULL PRIMARY KEY,
        range_from    INTEGER NOT NULL,
        range_to      INTEGER NOT NULL,
        model_version TEXT,
        next_id       INTEGER NOT NULL,
        published     INTEGER NOT NULL,
        skipped       INTEGER NOT NULL,
        state         TEXT    NOT NULL,
        created_ms    INTEGER NOT NULL,
        updated_ms    INTEGER NOT NULL
    );

    -- Folder indexer: a file path and the image ID it was given. `assigned` is 1 when the
    -- store chose the ID (the stem was not a number), 0 when it is the numeric stem.
    CREATE TABLE image_paths (
        path     TEXT    NOT NULL PRIMARY KEY,
        image_id INTEGER NOT NULL UNIQUE,
        assigned INTEGER NOT NULL
    );
    CREATE INDEX image_paths_assigned ON image_paths (assigned, image_id);
    "#,
    // 2: a change counter per code version, bumped by every write to `codes` in the
    // writing transaction itself, so a saved search index knows for certain whether it is
    // still current: same generation, same codes.
    r#"
    CREATE TABLE code_generations (
        model_version TEXT    NOT NULL PRIMARY KEY,
        generation    INTEGER NOT NULL
    ) WITHOUT ROWID;
    INSERT INTO code_generations (model_version, generation)
        SELECT model_version, 1 FROM codes GROUP BY model_version;
    CREATE TRIGGER codes_insert_bumps_generation AFTER INSERT ON codes BEGIN
        INSERT INTO code_generations (model_version, generation) VALUES (NEW.model_version, 1)
        ON CONFLICT (model_version) DO UPDATE SET generation = generation + 1;
    END;
    CREATE TRIGGER codes_update_bumps_generation AFTER UPDATE ON codes BEGIN
        INSERT INTO code_generations (model_version, generation) VALUES (NEW.model_version, 1)
        ON CONFLICT (model_version) DO UPDATE SET generation = generation + 1;
        INSERT INTO code_generations (model_version, generation) VALUES (OLD.model_version, 1)
        ON CONFLICT (model_version) DO UPDATE SET generation = generation + 1;
    END;
    CREATE TRIGGER codes_delete_bumps_generation AFTER DELETE ON codes BEGIN
        INSERT INTO code_generations (model_version, generation) VALUES (OLD.model_version, 1)
        ON CONFLICT (model_version) DO UPDATE SET generation = generation + 1;
    END;
    "#,
    // 3: near-duplicates of new uploads, found by the search shards: one row per
    // neighbour, so that shards add theirs without overwriting each other's.
    r#"
    CREATE TABLE near_duplicates (
        image_id      INTEGER NOT NULL,
        model_version TEXT    NOT NULL,
        neighbour_id  INTEGER NOT NULL,
        distance      INTEGER NOT NULL,
        PRIMARY KEY (image_id, model_version, neighbour_id)
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

/// Per-connection settings. WAL lets readers run beside the one writer; FULL sync makes a
/// commit durable before `put_*` returns, which the pipeline relies on to ack messages.
pub(crate) fn configure(
    conn: &Connection,
    busy_timeout: Duration,
    read_only: bool,
) -> Result<(), StoreError> {
    conn.busy_timeout(busy_timeout)
        .map_err(|e| error::sql("setting busy_timeout", e))?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(|e| error::sql("setting synchronous=FULL", e))?;
    if read_only {
        conn.pragma_update(None, "query_only", true)
            .map_err(|e| error::sql("setting query_only", e))?;
    }
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Reads the file's header, so that a file that is not SQLite is refused with a clear
/// message before anything else touches it.
pub(crate) fn probe(conn: &Connection, shown: &str) -> Result<(), StoreError> {
    conn.query_row("SELECT count(*) FROM sqlite_schema", [], |r| {
        r.get::<_, i64>(0)
    })
    .map(|_| ())
    .map_err(|e| not_a_store(shown, e))
}

/// Switches the file to WAL (persistent in the file, so only the writer does it).
pub(crate) fn enable_wal(conn: &Connection, shown: &str) -> Result<(), StoreError> {
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(|e| not_a_store(shown, e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Unavailable(format!(
            "SQLite refused WAL journal mode (got {mode})"
        )));
    }
    Ok(())
}

/// Brings the file to [`SCHEMA_VERSION`], refusing files of a newer schema or of another
/// application. Running it on an up-to-date file changes nothing.
pub(crate) fn migrate(conn: &mut Connection, shown: &str) -> Result<u32, StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| not_a_store(shown, e))?;
    let version: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| not_a_store(shown, e))?;
    let app_id: i32 = tx
        .pragma_query_value(None, "application_id", |r| r.get(0))
        .map_err(|e| not_a_store(shown, e))?;
    let version = u32::try_from(version)
        .map_err(|_| error::invalid(format!("{shown}: schema version {version} is not valid")))?;

    if version > SCHEMA_VERSION {
        return Err(error::invalid(format!(
            "{shown} has schema version {version}, newer than this build of imgfeat \
             understands ({SCHEMA_VERSION}); use a newer imgfeat or another file"
        )));
    }
    if app_id != APPLICATION_ID {
        let tables: i64 = tx
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| not_a_store(shown, e))?;
        if app_id != 0 || tables > 0 {
            return Err(error::invalid(format!(
                "{shown} is an SQLite database of another application \
                 (application_id {app_id:#x}, {tables} schema objects); refusing to use it \
                 as an imgfeat store"
            )));
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .map_err(|e| error::sql("setting application_id", e))?;
    }

    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let to = i + 1;
        tx.execute_batch(sql)
            .map_err(|e| error::sql(&format!("migrating schema to version {to}"), e))?;
        tracing::info!(
            store = shown,
            version = to,
            "applied store schema migration"
        );
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(|e| error::sql("recording schema version", e))?;
    }
    tx.commit()
        .map_err(|e| error::sql("committing schema migration", e))?;
    Ok(SCHEMA_VERSION)
}

/// The first read of a file that is not SQLite fails with NOTADB; say that plainly.
fn not_a_store(shown: &str, err: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(e, _) = &err
        && matches!(
            e.code,
            rusqlite::ErrorCode::NotADatabase | rusqlite::ErrorCode::DatabaseCorrupt
        )
    {
        return error::invalid(format!(
            "{shown} is not an SQLite database or is corrupt ({err}); \
             refusing to use it as an imgfeat store"
        ));
    }
    error::sql(&format!("opening {shown}"), err)
}
