//! Which driver errors are worth retrying, and the back-off loop that retries them.
//!
//! The driver's own retry policy is switched off (fallthrough) so that this is the one
//! place that decides: the driver retries at once, with no delay, which only adds load
//! to a cluster that is already timing out.

use std::future::Future;
use std::hash::RandomState;
use std::time::Duration;

use scylla::errors::{
    DbError, ExecutionError, PrepareError, RequestAttemptError, SchemaAgreementError,
    UseKeyspaceError,
};

use crate::config::RetryConfig;
use imgfeat_core::backoff::backoff_delay;

/// What went wrong with a request, in the terms that decide what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// A client or server timeout: replicas may just be slow.
    Timeout,
    /// Too few replicas alive, or a node still bootstrapping.
    Unavailable,
    /// The coordinator shed load or rate-limited us.
    Overloaded,
    /// No connection, or a broken one.
    Connection,
    /// The server failed the request for its own reasons (read/write failure, server
    /// error): retrying at once rarely helps, but a later attempt may.
    ServerFailure,
    /// The request itself is wrong: syntax, invalid, unauthorized, bad values.
    Rejected,
    /// The response made no sense to the driver.
    Protocol,
}

impl ErrorKind {
    /// Worth an immediate retry with back-off, if the statement is idempotent.
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout
                | ErrorKind::Unavailable
                | ErrorKind::Overloaded
                | ErrorKind::Connection
        )
    }

    /// Whether the failure is about the request (never fixed by retrying) rather than
    /// the cluster's health.
    pub fn is_permanent(self) -> bool {
        matches!(self, ErrorKind::Rejected | ErrorKind::Protocol)
    }
}

pub fn classify_db(err: &DbError) -> ErrorKind {
    match err {
        DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => ErrorKind::Timeout,
        DbError::Unavailable { .. } | DbError::IsBootstrapping => ErrorKind::Unavailable,
        DbError::Overloaded | DbError::RateLimitReached { .. } => ErrorKind::Overloaded,
        // The driver re-prepares on its own; if this still surfaces a retry will do it.
        DbError::Unprepared { .. } => ErrorKind::Connection,
        DbError::SyntaxError
        | DbError::Invalid
        | DbError::AlreadyExists { .. }
        | DbError::FunctionFailure { .. }
        | DbError::AuthenticationError
        | DbError::Unauthorized
        | DbError::ConfigError
        | DbError::TruncateError => ErrorKind::Rejected,
        DbError::ProtocolError => ErrorKind::Protocol,
        DbError::ReadFailure { .. } | DbError::WriteFailure { .. } | DbError::ServerError => {
            ErrorKind::ServerFailure
        }
        _ => ErrorKind::ServerFailure,
    }
}

pub fn classify_attempt(err: &RequestAttemptError) -> ErrorKind {
    match err {
        RequestAttemptError::DbError(db, _) => classify_db(db),
        RequestAttemptError::BrokenConnectionError(_) => ErrorKind::Connection,
        RequestAttemptError::UnableToAllocStreamId => ErrorKind::Overloaded,
        RequestAttemptError::SerializationError(_)
        | RequestAttemptError::CqlRequestSerialization(_) => ErrorKind::Rejected,
        _ => ErrorKind::Protocol,
    }
}

pub fn classify_prepare(err: &PrepareError) -> ErrorKind {
    match err {
        PrepareError::ConnectionPoolError(_) => ErrorKind::Connection,
        PrepareError::AllAttemptsFailed { first_attempt } => classify_attempt(first_attempt),
        _ => ErrorKind::Protocol,
    }
}

pub fn classify(err: &ExecutionError) -> ErrorKind {
    match err {
        ExecutionError::BadQuery(_) => ErrorKind::Rejected,
        // No node to send to: all down, or `local_dc` names no live data centre.
        ExecutionError::EmptyPlan => ErrorKind::Unavailable,
        ExecutionError::PrepareError(e) => classify_prepare(e),
        ExecutionError::ConnectionPoolError(_) => ErrorKind::Connection,
        ExecutionError::LastAttemptError(e) => classify_attempt(e),
        ExecutionError::RequestTimeout(_) => ErrorKind::Timeout,
        ExecutionError::UseKeyspaceError(UseKeyspaceError::RequestTimeout(_)) => ErrorKind::Timeout,
        ExecutionError::UseKeyspaceError(UseKeyspaceError::RequestError(e)) => classify_attempt(e),
        ExecutionError::UseKeyspaceError(_) => ErrorKind::Rejected,
        ExecutionError::SchemaAgreementError(SchemaAgreementError::Timeout(_)) => {
            ErrorKind::Timeout
        }
        ExecutionError::SchemaAgreementError(_) | ExecutionError::MetadataError(_) => {
            ErrorKind::Connection
        }
        _ => ErrorKind::Protocol,
    }
}

/// Runs `op` until it succeeds, fails in a way retrying cannot fix, or runs out of
/// attempts. Statements not marked idempotent are never retried: a write that timed out
/// may have been applied.
pub async fn with_retries<T, E, F, Fut>(
    cfg: &RetryConfig,
    idempotent: bool,
    what: &str,
    classify: impl Fn(&E) -> ErrorKind,
    mut op: F,
) -> Result<T, E>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let jitter = RandomState::new();
    let mut attempt = 1u32;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(err) => {
                let kind = classify(&err);
                if !idempotent || !kind.is_retryable() || attempt >= cfg.max_attempts {
                    return Err(err);
                }
                let fraction = imgfeat_core::backoff::jitter(&jitter, attempt);
                let delay = backoff_delay(
                    attempt,
                    Duration::from_millis(cfg.base_backoff_ms),
                    Duration::from_millis(cfg.max_backoff_ms),
                    fraction,
                );
                tracing::warn!(
                    what,
                    attempt,
                    ?kind,
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "CQL request failed, retrying"
                );
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use scylla::errors::{BadQuery, BrokenConnectionErrorKind, WriteType};
    use scylla::statement::Consistency;

    use super::*;

    fn db(e: DbError) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(e, "msg".into()))
    }

    #[test]
    fn timeouts_unavailability_and_overload_are_retried() {
        let retried = [
            db(DbError::ReadTimeout {
                consistency: Consistency::LocalQuorum,
                received: 1,
                required: 2,
                data_present: false,
            }),
            db(DbError::WriteTimeout {
                consistency: Consistency::LocalQuorum,
                received: 1,
                required: 2,
                write_type: WriteType::Simple,
            }),
            db(DbError::Unavailable {
                consistency: Consistency::LocalQuorum,
                required: 2,
                alive: 1,
            }),
            db(DbError::Overloaded),
            db(DbError::IsBootstrapping),
            ExecutionError::RequestTimeout(Duration::from_secs(1)),
            ExecutionError::EmptyPlan,
            ExecutionError::LastAttemptError(RequestAttemptError::BrokenConnectionError(
                BrokenConnectionErrorKind::ChannelError.into(),
            )),
            ExecutionError::LastAttemptError(RequestAttemptError::UnableToAllocStreamId),
        ];
        for e in retried {
            let kind = classify(&e);
            assert!(kind.is_retryable(), "{e}: {kind:?}");
            assert!(!kind.is_permanent(), "{e}: {kind:?}");
        }
    }

    #[test]
    fn bad_requests_are_never_retried() {
        let refused = [
            db(DbError::SyntaxError),
            db(DbError::Invalid),
            db(DbError::Unauthorized),
            db(DbError::AuthenticationError),
            db(DbError::ConfigError),
            db(DbError::AlreadyExists {
                keyspace: "k".into(),
                table: "t".into(),
            }),
            ExecutionError::BadQuery(BadQuery::PartitionKeyExtraction),
            ExecutionError::PrepareError(PrepareError::AllAttemptsFailed {
                first_attempt: RequestAttemptError::DbError(DbError::SyntaxError, "x".into()),
            }),
        ];
        for e in refused {
            let kind = classify(&e);
            assert_eq!(kind, ErrorKind::Rejected, "{e}");
            assert!(!kind.is_retryable() && kind.is_permanent());
        }
    }

    #[test]
    fn server_failures_are_transient_but_not_retried_at_once() {
        let kind = classify(&db(DbError::ServerError));
        assert_eq!(kind, ErrorKind::ServerFailure);
        assert!(!kind.is_retryable() && !kind.is_permanent());
    }

    #[derive(Debug)]
    struct Fake(ErrorKind);
    impl std::fmt::Display for Fake {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{:?}", self.0)
        }
    }

    async fn run(idempotent: bool, errors: Vec<ErrorKind>) -> (Result<u32, ErrorKind>, u32) {
        let cfg = RetryConfig {
            max_attempts: 3,
            base_backoff_ms: 1,
            max_backoff_ms: 2,
        };
        let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let res = with_retries(
            &cfg,
            idempotent,
            "test",
            |e: &Fake| e.0,
            || {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) as usize;
                let out = errors.get(n).map_or(Ok(n as u32), |k| Err(Fake(*k)));
                async move { out }
            },
        )
        .await;
        (
            res.map_err(|e| e.0),
            calls.load(std::sync::atomic::Ordering::SeqCst),
        )
    }

    #[tokio::test]
    async fn the_loop_retries_transient_errors_of_idempotent_statements_only() {
        assert_eq!(
            run(true, vec![ErrorKind::Timeout, ErrorKind::Unavailable]).await,
            (Ok(2), 3)
        );
        assert_eq!(
            run(true, vec![ErrorKind::Timeout; 5]).await,
            (Err(ErrorKind::Timeout), 3)
        );
        assert_eq!(
            run(true, vec![ErrorKind::Rejected]).await,
            (Err(ErrorKind::Rejected), 1)
        );
        assert_eq!(
            run(false, vec![ErrorKind::Timeout]).await,
            (Err(ErrorKind::Timeout), 1)
        );
    }
}
