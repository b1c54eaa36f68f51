//! ScyllaDB / Cassandra 4.x adapters for imgfeat: the results store ([`CqlStore`]:
//! `ResultStore`, `BackfillStore`, `ExportStore`, `DuplicateStore`), and the session, retry and row
//! conversions the blob-table image source in `imgfeat-sources` shares with it.
//!
//! Everything here is plain CQL both servers accept: prepared, idempotent statements;
//! no lightweight transactions, no `ALLOW FILTERING`, no secondary indexes.

pub mod config;
#[cfg(test)]
mod cqlcheck;
pub mod duplicates;
pub mod errors;
pub mod export;
pub mod retry;
pub mod rows;
pub mod scan;
pub mod schema;
pub mod session;
pub mod statements;
pub mod store;
pub mod tls;

pub use config::{ConsistencyLevel, CqlConfig, Replication, RetryConfig, TtlConfig};
pub use schema::MigrationReport;
pub use store::CqlStore;
