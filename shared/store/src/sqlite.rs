//! The embedded store: one SQLite file, one writer connection and a few reader connections.
//!
//! Why this shape: SQLite allows one writer at a time per file anyway, so a single writer
//! connection behind a mutex serialises writes without SQLITE_BUSY churn inside the
//! process, and keeps every statement cache warm. In WAL mode readers never block the
//! writer nor each other, so `code`, `coded`, code scans and exports run on their
//! own connections (query_only) and are not stuck behind a large batch commit.
//! Every call runs on tokio's blocking pool, never on the async workers.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use imgfeat_core::ports::StoreError;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::{error, schema};

/// Tuning of [`SqliteStore::open_with`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// How long a statement waits for another process's lock before the call fails
    /// with `StoreError::Unavailable`.
    pub busy_timeout: Duration,
    /// Reader connections beside the writer (at least 1).
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            busy_timeout: Duration::from_secs(5),
            readers: 2,
        }
    }
}

/// Results, failures, backfill jobs and the path registry in one SQLite file.
/// Cheap to clone: clones share the connections.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Vec<Mutex<Connection>>,
    next_reader: AtomicUsize,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("readers", &self.inner.readers.len())
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating it and its parent directories if needed) the store at `path` and
    /// brings its schema up to date. Blocks: call it at start-up or from a blocking task.
    pub fn open(path: &Path) -> Result<SqliteStore, StoreError> {
        Self::open_with(path, &SqliteOptions::default())
    }

    pub fn open_with(path: &Path, options: &SqliteOptions) -> Result<SqliteStore, StoreError> {
        let shown = path.display().to_string();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Unavailable(format!("creating directory {}: {e}", parent.display()))
            })?;
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let open = |read_only: bool| -> Result<Connection, StoreError> {
            let conn = Connection::open_with_flags(path, flags)
                .map_err(|e| error::sql(&format!("opening {shown}"), e))?;
            schema::probe(&conn, &shown)?;
            schema::configure(&conn, options.busy_timeout, read_only)?;
            Ok(conn)
        };

        let mut writer = open(false)?;
        schema::enable_wal(&writer, &shown)?;
        let version = schema::migrate(&mut writer, &shown)?;
        let readers = (0..options.readers.max(1))
            .map(|_| open(true).map(Mutex::new))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(
            store = %shown,
            schema_version = version,
            readers = readers.len(),
            "opened SQLite result store"
        );
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                writer: Mutex::new(writer),
                readers,
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs `f` on the writer connection on the blocking pool.
    pub(crate) async fn write<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.on_blocking_pool(op, Access::Write, f).await
    }

    /// Runs `f` on a reader connection on the blocking pool: a free one if any, else the
    /// next in turn.
    pub(crate) async fn read<T, F>(&self, op: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.on_blocking_pool(op, Access::Read, f).await
    }

    async fn on_blocking_pool<T, F>(
        &self,
        op: &'static str,
        access: Access,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut conn = match access {
                Access::Write => lock(&inner.writer),
                Access::Read => inner.reader(),
            };
            let out = f(&mut conn);
            tracing::trace!(
                op,
                ?access,
                elapsed_us = started.elapsed().as_micros() as u64,
                "store access"
            );
            out
        })
        .await
        .map_err(error::join)?
    }

    /// Synchronous access for the blocking path-registry API.
    pub(crate) fn write_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut lock(&self.inner.writer))
    }

    pub(crate) fn read_blocking<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut self.inner.reader())
    }
}

impl Inner {
    fn reader(&self) -> MutexGuard<'_, Connection> {
        for r in &self.readers {
            if let Ok(guard) = r.try_lock() {
                return guard;
            }
        }
        let i = self.next_reader.fetch_add(1, Ordering::Relaxed) % self.readers.len();
        lock(&self.readers[i])
    }
}

/// A panic while holding a connection cannot leave a half-done transaction behind
/// (rusqlite rolls back on drop), so a poisoned lock is still safe to use.
/// Which connection a store operation runs on.
#[derive(Debug, Clone, Copy)]
enum Access {
    Write,
    Read,
}

fn lock(m: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A write transaction that takes the file's write lock up front, so it waits on
/// busy_timeout at BEGIN instead of failing mid-way when another process writes.
pub(crate) fn write_tx<'c>(
    conn: &'c mut Connection,
    op: &str,
) -> Result<Transaction<'c>, StoreError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| error::sql(&format!("{op}: beginning transaction"), e))
}

pub(crate) fn commit(tx: Transaction<'_>, op: &str) -> Result<(), StoreError> {
    tx.commit()
        .map_err(|e| error::sql(&format!("{op}: committing"), e))
}
