//! The embedded result store of imgfeat: results, failures, backfill jobs and the folder
//! indexer's path registry in one SQLite file ([`SqliteStore`]). The conformance suite
//! every store passes is the dev-only crate `imgfeat-store-conformance`
//! (`tests/conformance`).

mod backfill;
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
