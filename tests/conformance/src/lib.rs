//! The store conformance suite: what every implementation of the store ports must do,
//! as async checks generic over the ports, run by each store's own tests (SQLite here,
//! CQL in its crate) against a real store.
//!
//! Every check writes under fresh random image IDs and model versions and asserts only
//! on those, so it passes on a store that already holds data, including data of other
//! runs going on at the same time (a shared CQL keyspace). Checks return a
//! [`Violation`] instead of panicking, so [`check_all`] can report every broken rule at
//! once.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{path::Path, sync::Arc};
//! let store = Arc::new(imgfeat_store::SqliteStore::open(Path::new("results.sqlite"))?);
//! imgfeat_store_conformance::check_all(store).await?;
//! # Ok(())
//! # }
//! ```

mod duplicates;
mod fixtures;
mod jobs;
mod results;

use std::fmt;
use std::sync::Arc;

use imgfeat_core::ports::{BackfillStore, DuplicateStore, ExportStore, ResultStore, StoreError};

pub use duplicates::near_duplicates_round_trip;
pub use jobs::{all_exports, backfill_jobs_round_trip, export_covers_every_image_once};
pub use results::{
    all_code_pages, code_pages_cover_the_version_once, code_round_trip,
    coded_returns_exactly_the_subset, codes_clear_failures_of_their_version_only,
    concurrent_writers, detection_round_trip, empty_batches_are_accepted, failure_round_trip,
    large_code_batch, last_write_wins, model_versions_are_isolated, upserts_are_idempotent,
};

/// A rule of the store contract that the store broke, or a store error during a check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation(pub String);

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Violation {}

impl From<StoreError> for Violation {
    fn from(e: StoreError) -> Self {
        Violation(format!("store error: {e}"))
    }
}

/// The checks that failed in a [`check_all`] run.
#[derive(Debug)]
pub struct ConformanceReport {
    pub passed: Vec<&'static str>,
    pub failed: Vec<(&'static str, Violation)>,
}

impl fmt::Display for ConformanceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} of {} store conformance checks failed:",
            self.failed.len(),
            self.failed.len() + self.passed.len()
        )?;
        for (name, v) in &self.failed {
            writeln!(f, "- {name}: {v}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConformanceReport {}

/// Runs every check in turn and reports all that failed.
pub async fn check_all<S>(store: Arc<S>) -> Result<(), ConformanceReport>
where
    S: ResultStore + BackfillStore + ExportStore + DuplicateStore + 'static,
{
    let s = store.as_ref();
    let outcomes: Vec<(&'static str, Result<(), Violation>)> = vec![
        ("detection_round_trip", detection_round_trip(s).await),
        ("code_round_trip", code_round_trip(s).await),
        ("failure_round_trip", failure_round_trip(s).await),
        ("upserts_are_idempotent", upserts_are_idempotent(s).await),
        ("last_write_wins", last_write_wins(s).await),
        (
            "model_versions_are_isolated",
            model_versions_are_isolated(s).await,
        ),
        (
            "coded_returns_exactly_the_subset",
            coded_returns_exactly_the_subset(s).await,
        ),
        (
            "code_pages_cover_the_version_once",
            code_pages_cover_the_version_once(s).await,
        ),
        (
            "codes_clear_failures_of_their_version_only",
            codes_clear_failures_of_their_version_only(s).await,
        ),
        (
            "empty_batches_are_accepted",
            empty_batches_are_accepted(s).await,
        ),
        ("large_code_batch", large_code_batch(s).await),
        (
            "concurrent_writers",
            concurrent_writers(Arc::clone(&store)).await,
        ),
        (
            "backfill_jobs_round_trip",
            backfill_jobs_round_trip(s).await,
        ),
        (
            "export_covers_every_image_once",
            export_covers_every_image_once(s).await,
        ),
        (
            "near_duplicates_round_trip",
            near_duplicates_round_trip(s).await,
        ),
    ];
    let mut report = ConformanceReport {
        passed: Vec::new(),
        failed: Vec::new(),
    };
    for (name, outcome) in outcomes {
        match outcome {
            Ok(()) => report.passed.push(name),
            Err(v) => {
                tracing::error!(check = name, violation = %v, "store conformance check failed");
                report.failed.push((name, v));
            }
        }
    }
    if report.failed.is_empty() {
        Ok(())
    } else {
        Err(report)
    }
}

/// Fails the check with a formatted message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err($crate::Violation(format!($($msg)+)));
        }
    };
}
pub(crate) use ensure;

/// Fails the check unless `got == want`, showing both (shortened: crops are large).
pub(crate) fn same<T: PartialEq + fmt::Debug>(
    got: &T,
    want: &T,
    what: &str,
) -> Result<(), Violation> {
    if got == want {
        return Ok(());
    }
    Err(Violation(format!(
        "{what}: got {}, want {}",
        shorten(format!("{got:?}")),
        shorten(format!("{want:?}"))
    )))
}

fn shorten(s: String) -> String {
    const MAX: usize = 1500;
    if s.len() <= MAX {
        return s;
    }
    let cut = (0..=MAX)
        .rev()
        .find(|i| s.is_char_boundary(*i))
        .unwrap_or(0);
    format!("{}… ({} chars)", &s[..cut], s.len())
}
