//! The embedded result store of imgfeat: results, failures, backfill jobs and the folder
//! indexer's path registry in one SQLite file ([`SqliteStore`]). With the `testkit`
//! feature, for tests only: the conformance suite every
//! [`ResultStore`](imgfeat_core::ports::ResultStore) implementation must pass
//! (`conformance`).

mod backfill;
#[cfg(feature = "testkit")]
pub mod conformance;
pub mod copy;
mod duplicates;
mod error;
mod export;
mod generation;
mod paths;
mod results;
mod rows;
mod schema;
mod sqlite;

pub use paths::{FIRST_ASSIGNED_ID, PathIdConflict, numeric_stem};
pub use schema::SCHEMA_VERSION;
pub use sqlite::{SqliteOptions, SqliteStore};
