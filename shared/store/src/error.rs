//! Sorting SQLite's failures into the two classes the pipeline acts on: transient ones
//! (retry with back-off, never lose the message) and permanent ones (record and move on).

use imgfeat_core::ports::StoreError;
use rusqlite::ErrorCode;

/// Maps a rusqlite error to a [`StoreError`], naming what was being done.
pub(crate) fn sql(context: &str, err: rusqlite::Error) -> StoreError {
    let transient = match &err {
        rusqlite::Error::SqliteFailure(e, _) => is_transient(e.code),
        _ => false,
    };
    if transient {
        tracing::warn!(context, error = %err, "store temporarily unavailable");
        StoreError::Unavailable(format!("{context}: {err}"))
    } else {
        StoreError::Invalid(format!("{context}: {err}"))
    }
}

/// Codes where waiting, freeing disk or a restarted disk can make the same request succeed.
fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::CannotOpen
            | ErrorCode::OutOfMemory
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OperationInterrupted
            | ErrorCode::PermissionDenied
    )
}

/// Stored data that does not decode into a record.
pub(crate) fn invalid(msg: impl Into<String>) -> StoreError {
    StoreError::Invalid(msg.into())
}

/// A blocking task that did not finish: cancelled at runtime shutdown (retry elsewhere)
/// or panicked (a bug, retrying the same input will not help).
pub(crate) fn join(err: tokio::task::JoinError) -> StoreError {
    if err.is_cancelled() {
        StoreError::Unavailable(format!("store task cancelled: {err}"))
    } else {
        tracing::error!(error = %err, "store task panicked");
        StoreError::Invalid(format!("store task panicked: {err}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn busy_locked_and_io_are_transient_corruption_is_not() {
        use rusqlite::ffi;
        for code in [ffi::SQLITE_BUSY, ffi::SQLITE_LOCKED, ffi::SQLITE_IOERR] {
            assert!(matches!(
                sql("x", failure(code)),
                StoreError::Unavailable(_)
            ));
        }
        for code in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_CONSTRAINT,
        ] {
            assert!(matches!(sql("x", failure(code)), StoreError::Invalid(_)));
        }
        assert!(matches!(
            sql("x", rusqlite::Error::InvalidColumnIndex(3)),
            StoreError::Invalid(_)
        ));
    }
}
