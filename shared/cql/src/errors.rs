//! Driver errors mapped onto the ports' errors, through the one classification in
//! [`crate::retry`], so "retry later" and "give up" mean the same everywhere.

use imgfeat_core::ImageId;
use imgfeat_core::ports::{SourceError, StoreError};
use scylla::errors::ExecutionError;

use crate::retry::classify;

pub fn store_error(what: &str, err: &ExecutionError) -> StoreError {
    if classify(err).is_permanent() {
        StoreError::Invalid(format!("{what}: {err}"))
    } else {
        StoreError::Unavailable(format!("{what}: {err}"))
    }
}

/// The source port has no "invalid request" error: a statement the server refuses
/// (dropped table, revoked grant) is an outage of the source for this image, and the
/// pipeline retries it and dead-letters it after its attempts run out.
pub fn source_error(id: ImageId, err: &ExecutionError) -> SourceError {
    SourceError::Unavailable(format!("image {id}: {err}"))
}

/// A row that does not decode into a record: never fixed by retrying.
pub fn invalid(what: &str, err: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(format!("{what}: {err}"))
}
