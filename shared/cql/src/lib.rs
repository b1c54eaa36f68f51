//! ScyllaDB / Cassandra 4.x adapters for imgfeat: the results store ([`CqlStore`]:
//! `ResultStore`, `BackfillStore`, `ExportStore`, `DuplicateStore`), and the session, retry and row
//! conversions the blob-table image source in `imgfeat-sources` shares with it.
//!
//! Everything here is plain CQL both servers accept: prepared, idempotent statements;
//! no lightweight transactions, no `ALLOW FILTERING`, no secondary indexes.
//!
//! Without the default feature `driver` only [`config`] is built: the settings types,
//! so that a build with no CQL store (the embedded `imgfeat` CLI) still reads and
//! prints every setting without linking the driver and its TLS stack.

pub mod config;
#[cfg(all(test, feature = "driver"))]
mod cqlcheck;
#[cfg(feature = "driver")]
pub mod duplicates;
#[cfg(feature = "driver")]
pub mod errors;
#[cfg(feature = "driver")]
pub mod export;
#[cfg(feature = "driver")]
pub mod retry;
#[cfg(feature = "driver")]
pub mod rows;
#[cfg(feature = "driver")]
pub mod scan;
#[cfg(feature = "driver")]
pub mod schema;
#[cfg(feature = "driver")]
pub mod session;
#[cfg(feature = "driver")]
pub mod statements;
#[cfg(feature = "driver")]
pub mod store;
#[cfg(feature = "driver")]
pub mod tls;

pub use config::{ConsistencyLevel, CqlConfig, Replication, RetryConfig, TtlConfig};
#[cfg(feature = "driver")]
pub use schema::MigrationReport;
#[cfg(feature = "driver")]
pub use store::CqlStore;
